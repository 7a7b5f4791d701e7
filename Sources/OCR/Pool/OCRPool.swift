import Foundation
import Synchronization

/// A fixed set of dedicated OCR threads, each with its own Tesseract engines, loaded once and reused for
/// every page it recognises.
///
/// Why threads of its own: Tesseract, Leptonica and poppler block for seconds per page. On Swift's
/// cooperative pool that would starve every other task in the process (queue consumers, database
/// pings); here the caller's task suspends on a continuation while a pool thread does the work. One engine
/// per thread because a `TessBaseAPI` may not be shared between threads, and loading one per page costs
/// 0.05–0.25 s. The thread count defaults to the number of cores: Tesseract is CPU-bound, and its own
/// OpenMP threads are switched off (see `OpenMP`), so more threads than cores only adds memory (~100 MB an
/// engine).
///
/// Threads start on the first page and stop when the pool is shut down (or released); an engine is freed
/// by the thread that owns it, on the way out.
public final class OCRPool: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// Tesseract languages, e.g. `["eng"]` or `["eng", "deu"]`.
        public var languages: [String]
        /// OCR threads; at least 1.
        public var threads: Int
        /// Longest a single page may take, from decoding the image to the last word (a PDF page's rendering,
        /// which `DocumentLimits` bounds by its pixel count, comes before and is not counted).
        public var pageTimeout: Duration
        /// The tessdata folder, or nil for Tesseract's default (`TESSDATA_PREFIX` or its compiled-in path).
        public var dataPath: String?
        /// Turn pages that read badly upright with Tesseract's orientation detection (needs the `osd` data).
        public var detectOrientation: Bool
        /// Straighten skewed pages with Leptonica.
        public var deskew: Bool

        public init(
            languages: [String] = ["eng"], threads: Int = OCRPool.coreCount,
            pageTimeout: Duration = .seconds(60), dataPath: String? = nil, detectOrientation: Bool = true, deskew: Bool = true
        ) {
            self.languages = languages
            self.threads = threads
            self.pageTimeout = pageTimeout
            self.dataPath = dataPath
            self.detectOrientation = detectOrientation
            self.deskew = deskew
        }
    }

    /// The number of cores this process may use: the default thread count.
    public static var coreCount: Int { ProcessInfo.processInfo.activeProcessorCount }

    public let configuration: Configuration
    private let queue = WorkQueue()
    /// Recognition engines loaded so far, over all threads: at most one per thread, however many pages.
    let statistics = PoolStatistics()
    private let threads = Mutex<[Thread]>([])

    /// Checks that the trained data for every language (and `osd`, if orientation is on) is installed, so
    /// a misconfigured pipeline fails when the worker starts rather than on every document.
    public init(_ configuration: Configuration) throws(OCRError) {
        var configuration = configuration
        configuration.threads = max(1, configuration.threads)
        try TrainedData.check(configuration.languages + (configuration.detectOrientation ? ["osd"] : []), dataPath: configuration.dataPath)
        self.configuration = configuration
        PageImage.quietInformationalMessages
    }

    deinit { queue.close() }

    /// OCRs one page on a pool thread.
    ///
    /// `source` runs on the pool thread too, so producing the image (reading a file, rendering a PDF page)
    /// stays off the cooperative pool; an error it throws is rethrown here unchanged. Cancelling the
    /// calling task abandons a page still waiting and stops one being recognised at its next word.
    ///
    /// - Throws: `OCRError` (unreadable image, time limit, engine problems), `CancellationError`, or what
    ///   `source` threw.
    public func recognize(_ source: @escaping @Sendable () throws -> OCRImage) async throws -> OCRResult {
        startThreadsIfNeeded()
        let cancellation = CancellationFlag()
        let recognizer = PageRecognizer(detectOrientation: configuration.detectOrientation, deskew: configuration.deskew)
        let timeLimit = configuration.pageTimeout
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<OCRResult, any Error>) in
                let accepted = queue.submit { engines in
                    guard !cancellation.isCancelled else {
                        continuation.resume(throwing: CancellationError())
                        return
                    }
                    do {
                        let image = try source()
                        let result = try recognizer.recognize(
                            image, engines: engines.forRecognizer, timeLimit: timeLimit, cancellation: cancellation)
                        continuation.resume(returning: result)
                    } catch {
                        if cancellation.isCancelled { continuation.resume(throwing: CancellationError()) }
                        else { continuation.resume(throwing: error) }
                    }
                }
                if !accepted { continuation.resume(throwing: OCRError.shutDown()) }
            }
        } onCancel: {
            cancellation.cancel()
        }
    }

    /// Finishes the pages already queued, then stops the threads and frees their engines; waits for that.
    /// Pages submitted afterwards fail with `shutDown`.
    public func shutdown() async {
        queue.close()
        let running = threads.withLock { $0 }
        while running.contains(where: { !$0.isFinished }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    private func startThreadsIfNeeded() {
        threads.withLock { threads in
            guard threads.isEmpty else { return }
            let (queue, configuration, statistics) = (self.queue, self.configuration, self.statistics)
            for index in 0..<configuration.threads {
                let thread = Thread {
                    OpenMP.runParallelRegionsSingleThreaded()
                    // The engines belong to this thread alone and are freed when it returns.
                    let engines = ThreadEngines(configuration, statistics: statistics)
                    while let work = queue.next() { work(engines) }
                }
                thread.name = "ocr-\(index + 1)"
                thread.stackSize = 8 << 20
                thread.start()
                threads.append(thread)
            }
        }
    }
}

/// The engines of one pool thread, created on first use (a thread that only renders or meets only blank
/// pages never loads OSD). Never leaves its thread.
final class ThreadEngines {
    private let configuration: OCRPool.Configuration
    private let statistics: PoolStatistics
    private var recognizer: TesseractEngine?
    private var orientation: OrientationDetector?

    init(_ configuration: OCRPool.Configuration, statistics: PoolStatistics) {
        self.configuration = configuration
        self.statistics = statistics
    }

    var forRecognizer: PageRecognizer.Engines {
        PageRecognizer.Engines(
            recognizer: { () throws(OCRError) in
                if let recognizer = self.recognizer { return recognizer }
                let engine = try TesseractEngine(languages: self.configuration.languages.joined(separator: "+"), dataPath: self.configuration.dataPath)
                self.recognizer = engine
                self.statistics.recognizersLoaded.add(1, ordering: .relaxed)
                return engine
            },
            orientation: { () throws(OCRError) in
                if let orientation = self.orientation { return orientation }
                let detector = try OrientationDetector(dataPath: self.configuration.dataPath)
                self.orientation = detector
                return detector
            })
    }
}

/// Counters for tests and diagnostics.
final class PoolStatistics: Sendable {
    let recognizersLoaded = Atomic<Int>(0)
}

/// The pool's queue of pages: a FIFO guarded by a condition variable, which idle threads wait on.
///
/// `@unchecked Sendable` is safe: `items` and `closed` are only touched with `condition` locked.
final class WorkQueue: @unchecked Sendable {
    /// A unit of work; receives the engines of the thread that runs it.
    typealias Work = (ThreadEngines) -> Void

    private let condition = NSCondition()
    private var items: [Work] = []
    private var head = 0
    private var closed = false

    /// Queues `work`; false (and `work` is not kept) when the queue is closed.
    func submit(_ work: @escaping Work) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !closed else { return false }
        items.append(work)
        condition.signal()
        return true
    }

    /// The next work item, waiting for one; nil once the queue is closed and drained.
    func next() -> Work? {
        condition.lock()
        defer { condition.unlock() }
        while head == items.count && !closed { condition.wait() }
        guard head < items.count else { return nil }
        let work = items[head]
        head += 1
        if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return work
    }

    /// Stops accepting work; threads finish what is queued, then `next()` returns nil.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}

/// Finds Tesseract's `.traineddata` files before any engine is loaded.
enum TrainedData {
    /// Where Debian and source builds put tessdata, after an explicit path and `TESSDATA_PREFIX`.
    static func searchPath(dataPath: String?) -> [String] {
        var folders: [String] = []
        if let dataPath { folders.append(dataPath) }
        if let prefix = ProcessInfo.processInfo.environment["TESSDATA_PREFIX"] {
            folders += [prefix, (prefix as NSString).appendingPathComponent("tessdata")]
        }
        folders += [
            "/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata", "/usr/share/tessdata",
            "/usr/local/share/tessdata",
        ]
        return folders
    }

    static func check(_ languages: [String], dataPath: String?) throws(OCRError) {
        let folders = searchPath(dataPath: dataPath)
        for language in languages {
            let found = folders.contains { FileManager.default.isReadableFile(atPath: "\($0)/\(language).traineddata") }
            if !found { throw .languageUnavailable(language, searched: folders) }
        }
    }
}
