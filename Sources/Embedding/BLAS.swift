import COpenBLAS

/// OpenBLAS as the forward pass uses it: row-major `sgemm` and the library's thread count. The only file
/// of the module that calls C BLAS.
enum BLAS {
    /// Sets how many threads OpenBLAS itself starts per call. Process-wide: OpenBLAS has one setting.
    static func setThreadCount(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// The number of threads OpenBLAS uses per call.
    static var threadCount: Int {
        Int(openblas_get_num_threads())
    }

    /// The kernel OpenBLAS picked for this processor (for example "Haswell"), for benchmark reports.
    static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// `C[m×n] = alpha · A[m×k] · B + beta · C`, all row-major, where `B` is `[k×n]`, or `[n×k]` used
    /// transposed when `transposeB` (PyTorch stores a linear layer's weight as `[out×in]`, so `x · Wᵀ`
    /// is the transposed form). `lda`, `ldb`, `ldc` are row strides in elements, which lets one head's
    /// columns of a packed Q/K/V matrix be used in place.
    @inline(__always)
    static func gemm(
        m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
