public import Blobs
public import Extraction
import Foundation
import Logging
public import OCR
public import Pipeline
public import PostgresNIO
import Storage

/// OCR: reads the pages ingest left as "needs OCR" (scanned PDF pages, image pages), recognises them with
/// Tesseract and stores their text, mean confidence and source `ocr`. A document without such pages passes
/// straight through.
///
/// Each page is re-read from the original in the blob store: a PDF page is rendered at 300 DPI, an image
/// page decoded; then Leptonica straightens it and Tesseract reads it on one of the pool's threads, each
/// with its own engine loaded once (see `OCRPool` and `PageRecognizer`). All pages of a batch are queued at
/// once, so every core is busy even with one long document.
///
/// Options (pipeline file):
///
/// | option | default | meaning |
/// | --- | --- | --- |
/// | `languages` | `eng` | Tesseract languages, `eng+deu` (or `eng,deu`); each needs `tesseract-ocr-LANG` |
/// | `max_pages` | 500 | pages a PDF or TIFF may have (checked at ingest) |
/// | `max_pixels` | 50000000 | pixels per page image (header check at ingest; PDF pages render smaller to fit) |
/// | `page_timeout` | `60s` | time limit per page (`ms`, `s` or `m`) |
/// | `dpi` | 300 | resolution scanned PDF pages are rendered at |
/// | `threads` | cores | OCR threads in this worker |
///
/// A limit, a damaged page or a page over its time limit fails the document permanently with the page
/// number and the reason; the rest of the batch carries on.
public struct OCRStage: Stage {
    public let name = "ocr"
    let blobs: any BlobStore
    public let options: Options
    let pool: OCRPool

    /// The `ocr` stage's options, parsed and checked.
    public struct Options: Sendable, Equatable {
        public var languages = ["eng"]
        public var limits = DocumentLimits()
        public var pageTimeout: Duration = .seconds(60)
        public var threads = OCRPool.coreCount

        public init() {}

        public init(_ options: [String: String]) throws(PipelineError) {
            func fail(_ message: String) -> PipelineError { PipelineError(code: .invalidDefinition, message: "ocr option \(message)") }
            func number(_ key: String, in range: ClosedRange<Int>) throws(PipelineError) -> Int? {
                guard let text = options[key] else { return nil }
                guard let value = Int(text.replacingOccurrences(of: "_", with: "")), range.contains(value) else {
                    throw fail("\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
                }
                return value
            }
            let known: Set = ["languages", "max_pages", "max_pixels", "page_timeout", "dpi", "threads"]
            if let unknown = options.keys.sorted().first(where: { !known.contains($0) }) {
                throw fail("'\(unknown)' is unknown (known: \(known.sorted().joined(separator: ", ")))")
            }
            if let text = options["languages"] {
                let names = text.split(whereSeparator: { "+, ".contains($0) }).map(String.init)
                guard !names.isEmpty, names.allSatisfy({ $0.range(of: "^[A-Za-z0-9_]+$", options: .regularExpression) != nil }) else {
                    throw fail("languages must be Tesseract language names like eng or eng+deu, got '\(text)'")
                }
                languages = names
            }
            if let value = try number("max_pages", in: 1...100_000) { limits.maxPages = value }
            if let value = try number("max_pixels", in: 1_000_000...1_000_000_000) { limits.maxPixels = value }
            if let value = try number("dpi", in: 150...600) { limits.renderDPI = Double(value) }
            if let value = try number("threads", in: 1...256) { threads = value }
            if let text = options["page_timeout"] {
                guard let timeout = Self.duration(text) else {
                    throw fail("page_timeout must be a time like 60s, 500ms or 2m, got '\(text)'")
                }
                pageTimeout = timeout
            }
        }

        static func duration(_ text: String) -> Duration? {
            for (suffix, milliseconds) in [("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)] where text.hasSuffix(suffix) {
                guard let value = Double(text.dropLast(suffix.count)), value > 0 else { return nil }
                return .milliseconds(Int64((value * milliseconds).rounded(.up)))
            }
            return nil
        }

        public var poolConfiguration: OCRPool.Configuration {
            OCRPool.Configuration(languages: languages, threads: threads, pageTimeout: pageTimeout)
        }
    }

    /// Parses the options and prepares the pool (its threads start with the first page).
    ///
    /// - Throws: `invalidDefinition` for a bad option or a language whose trained data is not installed,
    ///   so a misconfigured worker stops at start instead of failing every document.
    public init(blobs: any BlobStore, options: [String: String]) throws(PipelineError) {
        let parsed = try Options(options)
        let pool: OCRPool
        do {
            pool = try OCRPool(parsed.poolConfiguration)
        } catch {
            throw PipelineError(code: .invalidDefinition, message: "ocr stage: \(error.message)")
        }
        self.init(blobs: blobs, options: parsed, pool: pool)
    }

    public init(blobs: any BlobStore, options: Options, pool: OCRPool) {
        self.blobs = blobs
        self.options = options
        self.pool = pool
    }

    public struct Output: Sendable {
        let orgID: UUID
        let pages: [OCRPageText]
    }

    public func prepare(_ jobs: [Job], context: StageContext) async -> [Result<Output, StageFailure>] {
        let content = ContentRepository(logger: context.logger)
        let repository = DocumentRepository(context.database)
        var pending: [UUID: [Int]] = [:]
        var records: [UUID: DocumentRecord] = [:]
        do {
            try await context.database.client.withConnection { connection in
                for (orgID, orgJobs) in Dictionary(grouping: jobs, by: \.orgID) {
                    let ids = orgJobs.map(\.documentID)
                    pending.merge(try await content.pagesNeedingOCR(documentIDs: ids, orgID: orgID, on: connection)) { $1 }
                    let scanned = ids.filter { pending[$0] != nil }
                    if scanned.isEmpty { continue }
                    for record in try await repository.get(scanned, orgID: orgID, on: connection) { records[record.id] = record }
                }
            }
        } catch {
            return jobs.map { _ in .failure(.transient("reading pages failed: \(error)")) }
        }
        let (blobs, pool, limits, logger) = (self.blobs, self.pool, options.limits, context.logger)
        return await withTaskGroup(of: (Int, Result<Output, StageFailure>).self) { group in
            for (index, job) in jobs.enumerated() {
                guard let numbers = pending[job.documentID] else {
                    // Nothing to OCR: pass straight through.
                    group.addTask { (index, .success(Output(orgID: job.orgID, pages: []))) }
                    continue
                }
                let record = records[job.documentID]
                group.addTask {
                    guard let record else {
                        return (index, .failure(.permanent("document \(job.documentID) does not exist in its organisation (deleted?)")))
                    }
                    let result = await Self.recognize(record, pages: numbers, blobs: blobs, pool: pool, limits: limits)
                    if case .success(let pages) = result {
                        logger.debug("ocr done", metadata: [
                            "document_id": "\(job.documentID)", "pages": "\(pages.count)",
                            "seconds": "\(pages.reduce(0) { $0 + $1.result.seconds })",
                            "turned_pages": "\(pages.filter { $0.result.quarterTurns != 0 }.count)",
                        ])
                    }
                    return (index, result.map { ocr in
                        Output(orgID: job.orgID, pages: ocr.map {
                            OCRPageText(documentID: job.documentID, number: $0.number, text: $0.result.text, confidence: Float($0.result.confidence))
                        })
                    })
                }
            }
            var results = [Result<Output, StageFailure>?](repeating: nil, count: jobs.count)
            for await (index, result) in group { results[index] = result }
            return results.map { $0! }
        }
    }

    /// Fetches the original and OCRs the given pages of it.
    static func recognize(
        _ record: DocumentRecord, pages: [Int], blobs: any BlobStore, pool: OCRPool, limits: DocumentLimits
    ) async -> Result<[RecognizedPage], StageFailure> {
        guard let key = BlobKey(hex: record.sha256) else {
            return .failure(.permanent("the document's content key is invalid; re-import it"))
        }
        let bytes: [UInt8]
        do {
            bytes = try await blobs.get(key)
        } catch {
            return .failure(error.code == .notFound ? .permanent(error.message) : .transient(error.message))
        }
        let fileName = record.sourcePath.map { ($0 as NSString).lastPathComponent }
        let kind = TypeSniffer.sniff(bytes, fileName: fileName).kind
        return await ScannedPages(bytes: bytes, kind: kind, limits: limits).recognize(pages, pool: pool)
    }

    public func write(_ results: [(job: Job, output: Output)], on connection: PostgresConnection, context: StageContext) async throws {
        let content = ContentRepository(logger: context.logger)
        let usage = UsageRepository(logger: context.logger)
        for (orgID, items) in Dictionary(grouping: results, by: \.output.orgID) {
            let pages = items.flatMap(\.output.pages)
            try await content.storeOCRText(pages, orgID: orgID, on: connection)
            // Metered in the same transaction: pages OCR'd count once per successful run.
            if !pages.isEmpty { try await usage.record(UsageDelta(pages: pages.count), orgID: orgID, on: connection) }
        }
    }
}

/// One page read by OCR.
public struct RecognizedPage: Sendable {
    public let number: Int
    public let result: OCRResult
}

/// The pages of one document that need OCR, and how to turn each into an image on an OCR thread. Shared
/// by the ocr stage and `intellidocs ocr`.
public struct ScannedPages: Sendable {
    let bytes: [UInt8]
    let kind: DocumentKind
    let limits: DocumentLimits

    public init(bytes: [UInt8], kind: DocumentKind, limits: DocumentLimits) {
        self.bytes = bytes
        self.kind = kind
        self.limits = limits
    }

    /// OCRs `numbers` (1-based) in parallel on the pool. The first failing page (in page order) fails the
    /// whole document, and its remaining pages are cancelled.
    public func recognize(_ numbers: [Int], pool: OCRPool) async -> Result<[RecognizedPage], StageFailure> {
        let source: @Sendable (Int) -> @Sendable () throws -> OCRImage
        switch kind {
        case .pdf:
            let data = PDFData(bytes)
            let limits = self.limits
            source = { number in
                {
                    let raster = try PDFExtractor.render(data, page: number, limits: limits)
                    return .gray(width: raster.width, height: raster.height, pixels: raster.pixels, dpi: raster.dpi)
                }
            }
        case .png, .jpeg, .tiff, .gif, .webp:
            // Ingest checked the header already; check again, since limits may have changed since.
            do {
                let header = try ImageHeader.read(bytes, kind: kind, limits: limits)
                if let missing = numbers.first(where: { $0 > header.pages.count }) {
                    return .failure(.permanent("page \(missing) is missing from the image (it has \(header.pages.count))"))
                }
            } catch {
                return .failure(.permanent(error.message))
            }
            let bytes = self.bytes
            source = { number in { .encoded(bytes, page: number - 1) } }
        default:
            return .failure(.permanent("\(kind.mimeType) documents have no pages to OCR; reprocess the document"))
        }
        return await withTaskGroup(of: (Int, Result<OCRResult, StageFailure>).self) { group in
            for number in numbers {
                let image = source(number)
                group.addTask {
                    do {
                        // Await first, then build the tuple: in release builds Swift 6.3.1 loses a tuple
                        // element evaluated before an `await` in the same expression (the page number came
                        // back as garbage).
                        let page = try await pool.recognize(image)
                        return (number, .success(page))
                    } catch {
                        return (number, .failure(Self.failure(error, page: number)))
                    }
                }
            }
            var results: [RecognizedPage] = []
            var failures: [(Int, StageFailure)] = []
            for await (number, result) in group {
                switch result {
                case .success(let page): results.append(RecognizedPage(number: number, result: page))
                case .failure(let failure):
                    failures.append((number, failure))
                    if failure.kind == .permanent { group.cancelAll() }
                }
            }
            // Pages cancelled because another failed report a transient "cancelled": name the real cause.
            let real = failures.filter { $0.1.reason != Self.cancelledReason }
            if let (_, failure) = (real.isEmpty ? failures : real).min(by: { $0.0 < $1.0 }) { return .failure(failure) }
            return .success(results.sorted { $0.number < $1.number })
        }
    }

    static let cancelledReason = "OCR was cancelled (the worker is stopping); the job is retried"

    /// Maps a page's error to a stage failure: bad input and limits are permanent, the rest transient.
    static func failure(_ error: any Error, page: Int) -> StageFailure {
        switch error {
        case let error as ExtractionError:
            return .permanent("page \(page): \(error.message)")
        case let error as OCRError:
            return error.isPermanent ? .permanent("page \(page): \(error.message)") : .transient("page \(page): \(error.message)")
        case is CancellationError:
            return .transient(cancelledReason)
        default:
            return .transient("page \(page): \(error)")
        }
    }
}
