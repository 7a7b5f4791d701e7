import COpenBLAS
import Foundation

/// OpenBLAS as the forward pass uses it: row-major `sgemm` and the library's thread count. The only file
/// of the module that calls C BLAS, apart from `VectorScoring`'s products; both go through `ensureKernel()`
/// first.
enum BLAS {
    /// Sets how many threads OpenBLAS itself starts per call. Process-wide: OpenBLAS has one setting.
    static func setThreadCount(_ count: Int) {
        ensureKernel()
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// The number of threads OpenBLAS uses per call.
    static var threadCount: Int {
        Int(openblas_get_num_threads())
    }

    /// The kernel OpenBLAS uses (for example "SkylakeX"), for benchmark reports.
    static var coreName: String {
        ensureKernel()
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Makes sure OpenBLAS runs the best kernels this processor has before anything is multiplied (see
    /// `KernelSelection`). Cheap after the first call: one check of a `static let`.
    @inline(__always)
    static func ensureKernel() {
        _ = KernelSelection.applied
    }

    /// `C[m×n] = alpha · A[m×k] · B + beta · C`, all row-major, where `B` is `[k×n]`, or `[n×k]` used
    /// transposed when `transposeB` (PyTorch stores a linear layer's weight as `[out×in]`, so `x · Wᵀ`
    /// is the transposed form). `lda`, `ldb`, `ldc` are row strides in elements, which lets one head's
    /// columns of a packed Q/K/V matrix be used in place. Callers run `ensureKernel()` once beforehand
    /// (the encoder does when it is built).
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

/// Gives OpenBLAS's AVX-512 kernels to processors that run them but did not get them.
///
/// OpenBLAS built with `DYNAMIC_ARCH` picks its kernels from the CPUID family when it loads. Debian 12's
/// 0.3.21 has no entry for AMD Zen 4 or Zen 5 and falls back to its Haswell (AVX2) kernels, although these
/// processors run AVX-512; OpenBLAS 0.3.22 and later pick the Cooperlake/SkylakeX kernels for them
/// (`driver/others/dynamic.c`). Some hosts also pin `OPENBLAS_CORETYPE=Haswell` in the environment (this
/// project's build machines do, for every program). On this project's AMD EPYC machine the difference is
/// large: single-thread `sgemm` of the encoder's shapes went from 114 to 214 GFLOP/s (160×384×1536), and
/// embedding search queries from 217 to 371 per second per core (`intellidocs bench embed --batch 8
/// --threads 1`). The vectors differ from the Haswell kernels' only by float rounding (the parity tests
/// hold either way).
///
/// `INTELLIDOCS_BLAS_KERNEL` decides:
/// - `auto` (the default): once, before the first BLAS call, when OpenBLAS runs an AVX2-class kernel
///   (Haswell or Zen) and the processor has the AVX-512 subsets the faster kernels use (`avx512f`, `cd`, `bw`,
///   `dq`, `vl` in `/proc/cpuinfo`, which Linux lists only when it also saves the AVX-512 registers),
///   OpenBLAS's own selection runs again with `OPENBLAS_CORETYPE` set to `Cooperlake` (with `avx512_bf16`) or
///   `SkylakeX`. A processor without AVX-512 keeps what it has, so this never picks an instruction the
///   processor lacks.
/// - `openblas`: leave OpenBLAS's choice alone (its detection, or `OPENBLAS_CORETYPE` if set).
///
/// The two functions are looked up rather than linked, so an OpenBLAS built for one processor only
/// (without them) is simply left alone. Benchmarks print the kernel in use (`openblas_kernel`).
enum KernelSelection {
    /// The kernel in use after the check; computed once, on first use, before any product.
    static let applied: String = apply()

    private typealias Hook = @convention(c) () -> Void

    private static func apply() -> String {
        func current() -> String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }
        let chosen = current()
        let setting = getenv("INTELLIDOCS_BLAS_KERNEL").map { String(cString: $0).lowercased() } ?? "auto"
        guard setting == "auto" || setting.isEmpty, ["haswell", "zen"].contains(chosen.lowercased()),
            let target = preferredKernel(flags: cpuFlags()),
            let quit = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gotoblas_dynamic_quit"),
            let initialise = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "gotoblas_dynamic_init")
        else { return chosen }
        setenv("OPENBLAS_CORETYPE", target, 1)
        unsafeBitCast(quit, to: Hook.self)()
        unsafeBitCast(initialise, to: Hook.self)()
        return current()
    }

    /// The kernel OpenBLAS 0.3.22+ would pick for a processor with these flags, if it is an AVX-512 one.
    static func preferredKernel(flags: Set<Substring>) -> String? {
        let required: [Substring] = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        guard required.allSatisfy(flags.contains) else { return nil }
        return flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"
    }

    /// The first processor's feature flags, as Linux reports them.
    static func cpuFlags() -> Set<Substring> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
            let colon = line.firstIndex(of: ":")
        else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " "))
    }
}
