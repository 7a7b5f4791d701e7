import Embedding
import Foundation
import Pipeline
import PostgresNIO
import Stages
import Storage
import Testing
import TestSupport

/// The embed stage and token-exact chunking with the real model.
@Suite(.serialized)
struct EmbedStageTests {
    @Test func everyChunkFitsTheModelAndHasExactlyOneVectorEvenWhenRedelivered() async throws {
        try await TestEnvironment.with { env in
            let org = try await env.organization("vectors")
            // Long, Unicode-heavy and whitespace-odd texts, to push the chunker against its budget.
            let long = (0..<400).map { "Übermäßig naïve façade №\($0) — 東京 タワー 🚀 co-operation; e.g. x²+y²." }.joined(separator: " ")
            let odd = String(repeating: "word\t\t  \u{00A0}\u{2003}", count: 900) + "\n\n\n" + String(repeating: "a", count: 3000)
            let folder = try SearchTests.corpus(["long.txt": long, "odd.txt": odd, "short.txt": "One short sentence."])
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let ids = try await env.importAndProcess([folder], into: org)
            #expect(ids.count == 3)

            // One vector per chunk, of the model's dimension and name.
            let chunks = try await env.count("SELECT count(*) FROM chunks WHERE org_id = \(org.id)")
            #expect(chunks > 10)
            #expect(try await env.count("SELECT count(*) FROM chunk_vectors WHERE org_id = \(org.id)") == chunks)
            #expect(try await env.count(
                "SELECT count(*) FROM chunk_vectors WHERE org_id = \(org.id) AND (dimension <> 384 OR model <> 'all-MiniLM-L6-v2')") == 0)

            // Every chunk fits the model's 256 positions, [CLS] and [SEP] included, without truncation.
            let tokenizer = try sharedModel.embedder().tokenizer
            let rows = try await env.database.client.query("SELECT text FROM chunks WHERE org_id = \(org.id)", logger: env.logger)
            for try await text in rows.decode(String.self) {
                #expect(tokenizer.encode(text, maxLength: 100_000).count <= 256)
            }

            // Redelivery: the stage's prepare and write run again for the same documents; nothing doubles.
            let stage = try EmbedStage(embedder: sharedModel.embedder())
            let context = StageContext(database: env.database, logger: env.logger, definition: modelPipeline.stage(named: "embed")!)
            let jobs = ids.map { Job(orgID: org.id, documentID: $0, stage: "embed") }
            let outputs = await stage.prepare(jobs, context: context)
            let prepared = try zip(jobs, outputs).map { ($0, try $1.get()) }
            for _ in 0..<2 {
                try await env.database.client.withTransaction(logger: env.logger) { connection in
                    try await stage.write(prepared.map { (job: $0.0, output: $0.1) }, on: connection, context: context)
                }
            }
            #expect(try await env.count("SELECT count(*) FROM chunk_vectors WHERE org_id = \(org.id)") == chunks)
        }
    }
}
