import Chunking
public import Embedding
import Foundation
public import Pipeline
public import PostgresNIO
import Storage

/// Chunk: splits each document's pages into chunks under a size budget, at paragraph, then sentence,
/// then word boundaries, with overlap. Deterministic, so a re-run writes the same chunks.
///
/// Options (pipeline file): `max_tokens` (default 200), `overlap` (default 30), `measure`: `wordpiece`
/// (exact: the embedding model's own tokenizer, so every chunk fits the model — use max_tokens ≤ 254, the
/// model's 256 positions less [CLS] and [SEP]) or `approximate` (default; a fast word/punctuation count
/// for pipelines without the model); `near_duplicates` (default `true`: mark documents whose text is at
/// least `near_duplicate_threshold`, default 0.9, similar to an older one; see `NearDuplicateDetector`).
public struct ChunkStage: Stage {
    public let name = "chunk"
    let chunker: Chunker
    let nearDuplicates: NearDuplicateDetector?

    public init(options: [String: String] = [:], tokenizer: WordPieceTokenizer? = nil) throws(PipelineError) {
        func number(_ key: String, default value: Int) throws(PipelineError) -> Int {
            guard let text = options[key] else { return value }
            guard let number = Int(text), number >= 0 else {
                throw PipelineError(code: .invalidDefinition, message: "chunk option \(key) must be a whole number, got '\(text)'")
            }
            return number
        }
        let known: Set = ["max_tokens", "overlap", "measure", "near_duplicates", "near_duplicate_threshold"]
        if let unknown = options.keys.sorted().first(where: { !known.contains($0) }) {
            throw PipelineError(
                code: .invalidDefinition, message: "chunk option '\(unknown)' is unknown (known: \(known.sorted().joined(separator: ", ")))")
        }
        let maxTokens = try number("max_tokens", default: 200)
        let overlap = try number("overlap", default: 30)
        guard maxTokens >= 16, overlap < maxTokens / 2 else {
            throw PipelineError(code: .invalidDefinition, message: "chunk options need max_tokens ≥ 16 and overlap < max_tokens / 2")
        }
        let measure: any ChunkSizeMeasure
        switch options["measure"] ?? "approximate" {
        case "approximate":
            measure = ApproximateTokenMeasure()
        case "wordpiece":
            guard let tokenizer else {
                throw PipelineError(
                    code: .invalidDefinition,
                    message: "chunk option measure: wordpiece needs the embedding model's vocabulary; set INTELLIDOCS_MODEL_DIR (deploy/local/stack up installs the model) or use measure: approximate")
            }
            guard maxTokens <= 254 else {
                throw PipelineError(code: .invalidDefinition, message: "with measure: wordpiece, max_tokens must be ≤ 254 (the model's 256 positions less [CLS] and [SEP])")
            }
            measure = WordPieceMeasure(tokenizer: tokenizer)
        case let other:
            throw PipelineError(code: .invalidDefinition, message: "chunk option measure must be wordpiece or approximate, got '\(other)'")
        }
        self.chunker = Chunker(options: ChunkingOptions(maxSize: maxTokens, overlap: overlap), measure: measure)
        switch options["near_duplicates"] ?? "true" {
        case "true", "on", "yes":
            let text = options["near_duplicate_threshold"] ?? "0.9"
            guard let threshold = Double(text), threshold > 0, threshold <= 1 else {
                throw PipelineError(code: .invalidDefinition, message: "chunk option near_duplicate_threshold must be a number in (0, 1], got '\(text)'")
            }
            self.nearDuplicates = NearDuplicateDetector(threshold: threshold)
        case "false", "off", "no":
            self.nearDuplicates = nil
        case let other:
            throw PipelineError(code: .invalidDefinition, message: "chunk option near_duplicates must be true or false, got '\(other)'")
        }
    }

    public struct Output: Sendable {
        let orgID: UUID
        let chunks: [ChunkRecord]
        let fingerprint: NearDuplicateDetector.Fingerprint?
    }

    public func prepare(_ jobs: [Job], context: StageContext) async -> [Result<Output, StageFailure>] {
        let content = ContentRepository(logger: context.logger)
        var pagesByDocument: [UUID: [PageRecord]] = [:]
        do {
            try await context.database.client.withConnection { connection in
                for (orgID, orgJobs) in Dictionary(grouping: jobs, by: \.orgID) {
                    for page in try await content.pages(documentIDs: orgJobs.map(\.documentID), orgID: orgID, on: connection) {
                        pagesByDocument[page.documentID, default: []].append(page)
                    }
                }
            }
        } catch {
            return jobs.map { _ in .failure(.transient("reading pages failed: \(error)")) }
        }
        return jobs.map { job in
            guard let pages = pagesByDocument[job.documentID], !pages.isEmpty else {
                return .failure(.permanent("the document has no pages to chunk (did ingest run?); reprocess it"))
            }
            let chunks = chunker.chunks(pages: pages.map { (number: $0.number, text: $0.text) })
            if chunks.isEmpty {
                return .failure(.permanent("the document's pages hold no text to chunk"))
            }
            return .success(Output(
                orgID: job.orgID,
                chunks: chunks.map {
                    ChunkRecord(
                        documentID: job.documentID, index: $0.index, page: $0.page, endPage: $0.endPage,
                        startOffset: $0.startOffset, endOffset: $0.endOffset, text: $0.text)
                },
                fingerprint: nearDuplicates?.fingerprint(pages: pages.map(\.text))))
        }
    }

    public func write(_ results: [(job: Job, output: Output)], on connection: PostgresConnection, context: StageContext) async throws {
        let content = ContentRepository(logger: context.logger)
        for (orgID, items) in Dictionary(grouping: results, by: \.output.orgID) {
            try await content.replaceChunks(
                items.flatMap(\.output.chunks), documentIDs: items.map(\.job.documentID), orgID: orgID, on: connection)
            if let nearDuplicates {
                try await nearDuplicates.record(
                    items.compactMap { item in item.output.fingerprint.map { (item.job.documentID, $0) } }, orgID: orgID,
                    on: connection, logger: context.logger)
            }
        }
    }
}

extension ChunkStage {
    public func produced(_ output: Output) -> (kind: String, count: Int)? { ("chunks", output.chunks.count) }
}

/// Counts a text the way the embedding model will see it: its WordPiece pieces.
struct WordPieceMeasure: ChunkSizeMeasure {
    let tokenizer: WordPieceTokenizer
    func size(of text: Substring) -> Int { tokenizer.countWordPieces(text) }
}
