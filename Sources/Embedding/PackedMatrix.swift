import CKernels

/// A weight matrix packed once for `intellidocs_gemm_packed` (ckernels.h). OpenBLAS repacks the weights
/// on every call, which in a search pass (a few queries, a hundred-odd tokens) was a fifth of the product
/// time; against weights packed at load the same products ran 1.15–1.6× faster on one core (m = 40–160
/// rows, the encoder's shapes: 250–260 against 160–220 GFLOP/s). For the thousands of rows of a document
/// batch the two are even, so those stay on OpenBLAS.
final class PackedMatrix: @unchecked Sendable {
    // @unchecked Sendable: written once in `init`, only read after.
    static let isAvailable = intellidocs_packed_gemm_available() != 0
    /// Output columns per panel: products must cover whole panels.
    static let panel = Int(INTELLIDOCS_PANEL)

    /// Output columns (`n`, the tensor's rows) and inputs per column (`k`).
    let columns: Int
    let depth: Int
    private let storage: UnsafeMutablePointer<Float>

    /// The packed copy of a `[n × k]` weight, or nil when the processor lacks AVX-512 or `n` is not a
    /// whole number of panels (the caller then keeps using OpenBLAS).
    convenience init?(_ tensor: Tensor) {
        guard tensor.shape.count == 2 else { return nil }
        self.init(weights: tensor.pointer, columns: tensor.shape[0], depth: tensor.shape[1])
    }

    /// Packs `columns × depth` row-major floats (one row per output column).
    init?(weights: UnsafePointer<Float>, columns: Int, depth: Int) {
        guard Self.isAvailable, columns > 0, depth > 0, columns % Self.panel == 0 else { return nil }
        self.columns = columns
        self.depth = depth
        storage = .allocate(capacity: columns * depth)
        intellidocs_pack_panels(weights, columns, depth, storage)
    }

    deinit {
        storage.deallocate()
    }

    /// Bytes held (for memory reports).
    var byteCount: Int { columns * depth * MemoryLayout<Float>.size }

    /// `c (+)= a · Wᵀ` for `m` rows and the output columns `range`, or false (nothing done) when `range`
    /// is not made of whole panels. `c` points at the first column of `range`.
    func multiply(
        rows m: Int, columns range: Range<Int>, a: UnsafePointer<Float>, lda: Int, accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int
    ) -> Bool {
        guard range.lowerBound % Self.panel == 0, range.count % Self.panel == 0, range.upperBound <= columns else { return false }
        intellidocs_gemm_packed(m, range.count, depth, a, lda, storage + range.lowerBound * depth, accumulate ? 1 : 0, c, ldc)
        return true
    }
}
