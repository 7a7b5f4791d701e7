public import Extraction
import Foundation
import NIOPosix
public import Pipeline
public import Storage

/// What ingest and `intellidocs ocr` make of a document's bytes, found by content: its kind, and per page
/// either text or "needs OCR".
///
/// - Text, Markdown, HTML: text pages (`TextExtractor`).
/// - DOCX: text pages from `word/document.xml` (`DOCXExtractor`).
/// - PDF: page by page, the text layer where it is usable (`text-layer`), otherwise a page to OCR.
/// - PNG, JPEG, GIF, WebP: one page to OCR; TIFF: one per page. Sizes come from the headers and are
///   checked against the pixel limit before any pixel is decoded.
///
/// Every limit, and every damaged or unsupported file, is a permanent failure with a reason for the
/// person who uploaded it. PDF and DOCX parsing block in C (poppler, libxml2), so they run on NIO's
/// blocking thread pool, never on the cooperative pool.
public struct DocumentReader: Sendable {
    public struct Page: Sendable, Equatable {
        public enum Content: Sendable, Equatable {
            case text(String, source: PageSource)
            case needsOCR
        }

        public let number: Int
        public let content: Content
    }

    public struct Document: Sendable {
        public let kind: DocumentKind
        public let mimeType: String
        public let pages: [Page]
    }

    public let limits: DocumentLimits
    /// False when the pipeline has no ocr stage: a page that needs OCR then fails its document with a
    /// reason instead of reaching the chunker empty.
    public let acceptsScans: Bool

    public init(limits: DocumentLimits = .default, acceptsScans: Bool = true) {
        self.limits = limits
        self.acceptsScans = acceptsScans
    }

    /// The reader for `pipeline`: the limits are the `ocr` stage's options (one place to set them, checked
    /// as early as ingest can), and scans are accepted only if the pipeline has an `ocr` stage.
    public init(pipeline: PipelineDefinition) throws(PipelineError) {
        let ocr = pipeline.stage(named: "ocr")
        self.init(limits: try OCRStage.Options(ocr?.options ?? [:]).limits, acceptsScans: ocr != nil)
    }

    /// Reads a document whose kind was sniffed already (ingest keeps its own handling of text kinds).
    public func read(_ bytes: [UInt8], as sniffed: SniffedType) async -> Result<Document, StageFailure> {
        let kind = sniffed.kind
        let pages: [Page]
        do {
            switch kind {
            case .plainText, .markdown, .html:
                pages = try TextExtractor.extract(bytes, kind: kind).map { Page(number: $0.number, content: .text($0.text, source: .text)) }
            case .docx:
                pages = try await Self.blocking { () throws(ExtractionError) in
                    try DOCXExtractor.extract(bytes).map { Page(number: $0.number, content: .text($0.text, source: .text)) }
                }
            case .pdf:
                let limits = self.limits
                pages = try await Self.blocking { () throws(ExtractionError) in
                    try PDFExtractor.pages(of: PDFData(bytes), limits: limits).map { page in
                        switch page.content {
                        case .textLayer(let text): Page(number: page.number, content: .text(text, source: .textLayer))
                        case .needsOCR: Page(number: page.number, content: .needsOCR)
                        }
                    }
                }
            case .png, .jpeg, .tiff, .gif, .webp:
                let header = try ImageHeader.read(bytes, kind: kind, limits: limits)
                pages = header.pages.indices.map { Page(number: $0 + 1, content: .needsOCR) }
            case .zip, .unknown:
                throw ExtractionError.unsupportedType(kind)
            }
        } catch let error as ExtractionError {
            return .failure(.permanent(error.message))
        } catch {
            return .failure(.transient("reading the document failed: \(error)"))
        }
        if !acceptsScans, let scanned = pages.first(where: { $0.content == .needsOCR }) {
            return .failure(.permanent(
                "page \(scanned.number) is a scan that needs OCR, but this pipeline has no ocr stage; add `- name: ocr` after ingest"))
        }
        return .success(Document(kind: kind, mimeType: sniffed.mimeType, pages: pages))
    }

    /// Runs blocking C work on NIO's shared blocking pool (one thread per core) and waits for it.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws(ExtractionError) -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive { try body() }
    }
}
