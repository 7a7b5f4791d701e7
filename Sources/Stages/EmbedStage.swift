import Dispatch
public import Embedding
import Foundation
public import Pipeline
public import PostgresNIO
import Storage

/// Embed: one all-MiniLM-L6-v2 vector per chunk, computed natively (Embedding room) and stored as float32
/// bytes with the model name and dimension, so a model change is detectable. A batch embeds the chunks of
/// all its documents together, so a busy queue makes large, efficient batches.
///
/// Options (pipeline file): `batch_size` (texts per forward pass, default 16: measured fastest on SciFact chunks).
public struct EmbedStage: Stage {
    public let name = "embed"
    let embedder: SentenceEmbedder
    let batchSize: Int
    /// The forward pass blocks its thread: it runs here, never on Swift's cooperative pool.
    let queue = DispatchQueue(label: "intellidocs.embed", qos: .userInitiated)

    public init(embedder: SentenceEmbedder, options: [String: String] = [:]) throws(PipelineError) {
        self.embedder = embedder
        if let text = options["batch_size"] {
            guard let value = Int(text), (1...512).contains(value) else {
                throw PipelineError(code: .invalidDefinition, message: "embed option batch_size must be 1...512, got '\(text)'")
            }
            batchSize = value
        } else {
            batchSize = 16
        }
    }

    public struct Output: Sendable {
        let orgID: UUID
        let chunkIndexes: [Int]
        /// `chunkIndexes.count × dimension` floats, row-major.
        let vectors: [Float]
    }

    public func prepare(_ jobs: [Job], context: StageContext) async -> [Result<Output, StageFailure>] {
        var chunksByDocument: [UUID: [(index: Int, text: String)]] = [:]
        do {
            try await context.database.client.withConnection { connection in
                for (orgID, orgJobs) in Dictionary(grouping: jobs, by: \.orgID) {
                    let rows = try await connection.query(
                        """
                        SELECT document_id, chunk_index, text FROM chunks
                        WHERE org_id IS NOT DISTINCT FROM \(orgID) AND document_id = ANY(\(orgJobs.map(\.documentID))::uuid[])
                        ORDER BY document_id, chunk_index
                        """, logger: context.logger)
                    for try await (document, index, text) in rows.decode((UUID, Int32, String).self) {
                        chunksByDocument[document, default: []].append((Int(index), text))
                    }
                }
            }
        } catch {
            return jobs.map { _ in .failure(.transient("reading chunks failed: \(error)")) }
        }
        let texts = jobs.flatMap { chunksByDocument[$0.documentID]?.map(\.text) ?? [] }
        let embedder = self.embedder
        let batchSize = self.batchSize
        let vectors: [[Float]] = await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: embedder.embed(texts, batchSize: batchSize)) }
        }
        var offset = 0
        return jobs.map { job in
            guard let chunks = chunksByDocument[job.documentID], !chunks.isEmpty else {
                return .failure(.permanent("the document has no chunks to embed (did chunk run?); reprocess it"))
            }
            let mine = vectors[offset..<offset + chunks.count]
            offset += chunks.count
            return .success(Output(orgID: job.orgID, chunkIndexes: chunks.map(\.index), vectors: mine.flatMap { $0 }))
        }
    }

    public func write(_ results: [(job: Job, output: Output)], on connection: PostgresConnection, context: StageContext) async throws {
        for (orgID, items) in Dictionary(grouping: results, by: \.output.orgID) {
            var documents: [UUID] = []
            var indexes: [Int32] = []
            var bytes: [UInt8] = []
            for item in items {
                for index in item.output.chunkIndexes {
                    documents.append(item.job.documentID)
                    indexes.append(Int32(index))
                }
                item.output.vectors.withUnsafeBytes { bytes.append(contentsOf: $0) }
            }
            try await VectorRepository(logger: context.logger).replace(
                documentIDs: items.map(\.job.documentID), rows: (documents, indexes), packed: bytes,
                model: SentenceEmbedder.modelName, dimension: embedder.dimension, orgID: orgID, on: connection)
            // Metered in the same transaction: chunks embedded count once per successful run.
            if !indexes.isEmpty {
                try await UsageRepository(logger: context.logger).record(UsageDelta(chunks: indexes.count), orgID: orgID, on: connection)
            }
        }
    }

    public func produced(_ output: Output) -> (kind: String, count: Int)? { ("vectors", output.chunkIndexes.count) }
}
