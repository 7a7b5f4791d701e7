import Foundation

/// Keeps Tesseract's OpenMP from oversubscribing the CPU.
///
/// Debian's Tesseract is built with OpenMP, and its LSTM code asks for several threads per page
/// (`#pragma omp parallel for num_threads(…)`). With one page per core already running in parallel, that
/// oversubscribes the machine: a dense page took 21–36 s instead of ~4 s (PLATFORM.md). The usual cure is
/// `OMP_THREAD_LIMIT=1` in the environment, but libgomp reads it only once, when it loads (before `main`),
/// so `setenv` inside the process is too late, and forgetting it in one deployment costs 5–8× silently.
///
/// Instead, IntelliDocs sets OpenMP's *max-active-levels* to 0 at run time: every parallel region then
/// runs with a team of one thread, whatever its `num_threads` clause says (OpenMP 5.1, §2.6.1: a region
/// is inactive when the number of active levels would exceed max-active-levels). This is the same effect
/// as `OMP_THREAD_LIMIT=1`, measured on this machine: 0.47 s for a page that took 3.7 s without either.
/// libgomp keeps the setting per thread in newer GCCs and globally in older ones, so the OCR pool calls this
/// on each of its threads before the first page.
///
/// The symbol is looked up in the already-loaded libgomp (a dependency of libtesseract) rather than
/// linked, so a Tesseract built without OpenMP simply has nothing to limit. `OMP_THREAD_LIMIT=1` in the
/// environment (`deploy/local/stack env` exports it) remains harmless and is still what the `tesseract`
/// command-line tool needs.
enum OpenMP {
    private typealias SetMaxActiveLevels = @convention(c) (Int32) -> Void

    /// `omp_set_max_active_levels`, if libgomp is loaded. The lookup is a pure read of the loader's
    /// tables, so the cached value is the same for every thread.
    private static let setMaxActiveLevels: SetMaxActiveLevels? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "omp_set_max_active_levels") else { return nil }
        return unsafeBitCast(symbol, to: SetMaxActiveLevels.self)
    }()

    /// Makes OpenMP parallel regions started from the calling thread run single-threaded.
    /// Returns false when no OpenMP runtime is loaded.
    @discardableResult
    static func runParallelRegionsSingleThreaded() -> Bool {
        guard let setMaxActiveLevels else { return false }
        setMaxActiveLevels(0)
        return true
    }
}
