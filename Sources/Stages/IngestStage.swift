public import Blobs
import Extraction
import Foundation
public import Pipeline
public import PostgresNIO
import Storage

/// Ingest: reads each document's original bytes, finds its real type from the content, and stores its
/// text as pages. Text, Markdown, HTML and BEIR records are handled here; DOCX, PDF and images through
/// `DocumentReader`: a PDF page with a usable text layer is stored with source `text-layer`, a scanned
/// page or an image page as an empty placeholder that `needsOCR` (the ocr stage fills it in). A type this
/// pipeline cannot read, or a document over a limit, fails with a reason instead of blocking the batch.
public struct IngestStage: Stage {
    public let name = "ingest"
    let blobs: any BlobStore
    /// Largest original the stage reads into memory.
    let maxBytes: Int
    /// Reads DOCX, PDF and images, with the ocr stage's limits.
    let reader: DocumentReader

    /// The MIME type the importer gives a BEIR corpus line (`{"_id","title","text"}` JSON).
    public static let beirMimeType = "application/x-beir+json"

    public init(blobs: any BlobStore, maxBytes: Int = 256 << 20, reader: DocumentReader = DocumentReader()) {
        self.blobs = blobs
        self.maxBytes = maxBytes
        self.reader = reader
    }

    public struct Output: Sendable {
        let orgID: UUID
        let mimeType: String
        let pages: [PageRecord]
    }

    public func prepare(_ jobs: [Job], context: StageContext) async -> [Result<Output, StageFailure>] {
        let records: [UUID: DocumentRecord]
        do {
            records = try await loadDocuments(jobs, context: context)
        } catch {
            return jobs.map { _ in .failure(.transient("reading documents failed: \(error)")) }
        }
        var results: [Result<Output, StageFailure>] = []
        results.reserveCapacity(jobs.count)
        for job in jobs {
            guard let record = records[job.documentID] else {
                results.append(.failure(.permanent("document \(job.documentID) does not exist in its organisation (deleted?)")))
                continue
            }
            results.append(await extract(record))
        }
        return results
    }

    func extract(_ record: DocumentRecord) async -> Result<Output, StageFailure> {
        if record.sizeBytes == 0 {
            return .failure(.permanent("the file is empty (0 bytes); replace it with the real file and import it again"))
        }
        if record.sizeBytes > maxBytes {
            return .failure(.permanent("the file is \(record.sizeBytes) bytes, over the \(maxBytes)-byte limit"))
        }
        guard let key = BlobKey(hex: record.sha256) else {
            return .failure(.permanent("the document's content key is invalid; re-import it"))
        }
        let bytes: [UInt8]
        do {
            bytes = try await blobs.get(key)
        } catch {
            return .failure(error.code == .notFound ? .permanent(error.message) : .transient(error.message))
        }
        if record.mimeType == Self.beirMimeType {
            return beirPages(bytes, record: record)
        }
        let fileName = record.sourcePath.map { ($0 as NSString).lastPathComponent }
        let sniffed = TypeSniffer.sniff(bytes.prefix(8192), fileName: fileName)
        switch sniffed.kind {
        case .plainText, .markdown, .html:
            do {
                let pages = try TextExtractor.extract(bytes, kind: sniffed.kind)
                return makeOutput(record, mimeType: sniffed.mimeType, pages: pages.map { ($0.number, $0.text) })
            } catch {
                return .failure(.permanent(error.message))
            }
        case .unknown:
            // Not a known binary type: if it tries to be text, say exactly why it is not (bad encoding
            // at which byte, binary data); otherwise name the supported types.
            if bytes.prefix(8192).contains(0) {
                return .failure(.permanent(ExtractionError.binaryContent().message))
            }
            do {
                _ = try TextExtractor.decodeText(Array(bytes.prefix(1 << 20)))
            } catch {
                if error.code != .emptyFile { return .failure(.permanent(error.message)) }
            }
            let name = fileName ?? "the file"
            return .failure(.permanent(
                "\(name) is not a readable document (binary content, or an unknown type); supported: PDF, PNG, JPEG, TIFF, GIF, WebP, DOCX, text, Markdown, HTML"))
        case .pdf, .png, .jpeg, .tiff, .gif, .webp, .docx, .zip:
            return await reader.read(bytes, as: sniffed).map { document in
                Output(orgID: record.orgID, mimeType: document.mimeType, pages: document.pages.map { page in
                    switch page.content {
                    case .text(let text, let source):
                        PageRecord(documentID: record.id, number: page.number, text: text, source: source, confidence: nil)
                    case .needsOCR:
                        PageRecord.needingOCR(documentID: record.id, number: page.number)
                    }
                })
            }
        }
    }

    private func beirPages(_ bytes: [UInt8], record: DocumentRecord) -> Result<Output, StageFailure> {
        struct Line: Decodable { let title: String?; let text: String? }
        guard let line = try? JSONDecoder().decode(Line.self, from: Data(bytes)) else {
            return .failure(.permanent("the BEIR record is not valid JSON with title and text"))
        }
        let text = [line.title ?? "", line.text ?? ""].filter { !$0.isEmpty }.joined(separator: "\n\n")
        if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            return .failure(.permanent("the BEIR record has an empty title and text"))
        }
        return makeOutput(record, mimeType: Self.beirMimeType, pages: [(1, text)])
    }

    private func makeOutput(_ record: DocumentRecord, mimeType: String, pages: [(Int, String)]) -> Result<Output, StageFailure> {
        let kept = pages.filter { !$0.1.allSatisfy(\.isWhitespace) }
        if kept.isEmpty {
            return .failure(.permanent("the document contains no text"))
        }
        return .success(Output(
            orgID: record.orgID, mimeType: mimeType,
            pages: kept.map { PageRecord(documentID: record.id, number: $0.0, text: $0.1, source: .text, confidence: nil) }))
    }

    private func loadDocuments(_ jobs: [Job], context: StageContext) async throws -> [UUID: DocumentRecord] {
        let repository = DocumentRepository(context.database)
        var records: [UUID: DocumentRecord] = [:]
        try await context.database.client.withConnection { connection in
            for (orgID, orgJobs) in Dictionary(grouping: jobs, by: \.orgID) {
                for record in try await repository.get(orgJobs.map(\.documentID), orgID: orgID, on: connection) {
                    records[record.id] = record
                }
            }
        }
        return records
    }

    public func write(_ results: [(job: Job, output: Output)], on connection: PostgresConnection, context: StageContext) async throws {
        let content = ContentRepository(logger: context.logger)
        for (orgID, items) in Dictionary(grouping: results, by: \.output.orgID) {
            try await content.replacePages(
                items.flatMap(\.output.pages), documentIDs: items.map(\.job.documentID), orgID: orgID, on: connection)
            try await DocumentRepository.setMimeTypes(
                items.map { ($0.job.documentID, $0.output.mimeType) }, orgID: orgID, on: connection, logger: context.logger)
        }
    }
}

extension IngestStage {
    public func produced(_ output: Output) -> (kind: String, count: Int)? { ("pages", output.pages.count) }
}
