import Broker
import Embedding
import Foundation
import Pipeline
import PostgresNIO
import Search
import Stages
import Storage
import Testing
import TestSupport

/// The full pipeline with the real model: ingest → chunk (WordPiece) → embed → index.
let modelPipeline = try! PipelineDefinition.parse(
    """
    version: 1
    name: model-test
    defaults: {max_attempts: 3, retry_delays: [1s], delivery_limit: 5, prefetch: 50, batch_size: 25, concurrency: 1}
    stages:
      - name: ingest
      - name: chunk
        options: {measure: wordpiece, max_tokens: 254, overlap: 32}
      - name: embed
      - name: index
    """)

/// One embedder for the whole test process (loading it once keeps the suite fast).
let sharedModel = ModelResources(directory: ProcessInfo.processInfo.environment["INTELLIDOCS_MODEL_DIR"])

extension TestEnvironment {
    /// Imports files and runs every stage of `modelPipeline` in-process until they are all done.
    func importAndProcess(_ paths: [String], into organization: Organization) async throws -> [UUID] {
        let broker = try await broker("model-pipeline")
        do {
            let ids = try await importAndProcess(paths, into: organization, broker: broker)
            await broker.close()
            return ids
        } catch {
            await broker.close()
            throw error
        }
    }

    private func importAndProcess(_ paths: [String], into organization: Organization, broker: BrokerConnection) async throws -> [UUID] {
        try await Topology.apply(modelPipeline, broker: broker)
        let imported = try await Importer(
            database: database, blobs: blobs, publisher: JobPublisher(broker: broker), pipeline: modelPipeline, logger: logger
        ).run(paths: paths, organization: organization, format: .auto)
        let embedder = try sharedModel.embedder()
        let workers: [any Service] = [
            try StageWorker(stage: IngestStage(blobs: blobs), pipeline: modelPipeline, broker: broker, database: database, logger: logger),
            try StageWorker(stage: ChunkStage(options: modelPipeline.stage(named: "chunk")!.options, tokenizer: embedder.tokenizer), pipeline: modelPipeline, broker: broker, database: database, logger: logger),
            try StageWorker(stage: EmbedStage(embedder: embedder), pipeline: modelPipeline, broker: broker, database: database, logger: logger),
            try StageWorker(stage: IndexStage(), pipeline: modelPipeline, broker: broker, database: database, logger: logger),
        ]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in workers { group.addTask { try await worker.run() } }
            let state = try await wait(for: imported.documentIDs, orgID: organization.id, seconds: 300)
            #expect(state.failed == 0)
            group.cancelAll()
        }
        return imported.documentIDs
    }

    func searchService() throws -> SearchService {
        let embedder = try sharedModel.embedder()
        let index = VectorIndex(database: database, dimension: embedder.dimension, model: SentenceEmbedder.modelName)
        return SearchService(database: database, semantic: SemanticLeg(embedder: embedder, index: index, database: database))
    }
}

import Importing
import ServiceLifecycle

@Suite(.serialized)
struct SearchTests {
    static let documents: [String: String] = [
        "kiwi.txt": "The kiwi is a flightless bird native to New Zealand. Kiwi birds lay very large eggs relative to their body size.",
        "volcano.txt": "Mount Ruapehu is an active stratovolcano. Its eruptions send ash plumes across the central plateau.",
        "invoice.txt": "Invoice 2291: payment of 420 euros is due within thirty days to the supplier account.",
        "heart.txt": "Cardiac arrest happens when the heart suddenly stops pumping blood; defibrillation restores its rhythm.",
        "pasta.txt": "Boil the spaghetti in salted water for nine minutes, then toss it with garlic and olive oil.",
    ]

    static func corpus(_ texts: [String: String]) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("search-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, text) in texts { try text.write(toFile: "\(folder)/\(name)", atomically: true, encoding: .utf8) }
        return folder
    }

    /// The in-memory BM25 index ranks exactly like SQL (same postings, statistics and tie-break), applies
    /// filters, and never serves a stale snapshot: after a delete the query goes to SQL until it reloads.
    @Test func inMemoryKeywordIndexRanksLikeSQLAndIsNeverStale() async throws {
        try await TestEnvironment.with { env in
            let acme = try await env.organization("acme")
            let folder = try Self.corpus(Self.documents)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let ids = try await env.importAndProcess([folder], into: acme)
            let index = KeywordIndex(database: env.database)
            let memory = SearchService(database: env.database, keywordIndex: index)
            let sql = SearchService(database: env.database)
            try await memory.warmUp(orgID: acme.id)
            #expect(index.memoryBytes > 0)
            let queries = ["invoice 2291 payment", "kiwi bird eggs", "the volcano erupted", "heart", "payment of the invoice", "nothing-matches-this"]
            for query in queries {
                for filters in [SearchFilters(), SearchFilters(documentIDs: Array(ids.prefix(2)))] {
                    let fromMemory = try await memory.search(SearchRequest(query: query, mode: .keyword, limit: 10, filters: filters), orgID: acme.id)
                    let fromSQL = try await sql.search(SearchRequest(query: query, mode: .keyword, limit: 10, filters: filters), orgID: acme.id)
                    #expect(fromMemory.results.map(\.documentID) == fromSQL.results.map(\.documentID), "\(query)")
                    for (a, b) in zip(fromMemory.results, fromSQL.results) { #expect(abs(a.score - b.score) < 1e-6, "\(query)") }
                }
            }
            let kiwi = try #require(try await sql.search(SearchRequest(query: "kiwi", mode: .keyword), orgID: acme.id).results.first?.documentID)
            try await env.database.client.query("DELETE FROM documents WHERE id = \(kiwi) AND org_id = \(acme.id)", logger: env.logger)
            let afterDelete = try await memory.search(SearchRequest(query: "kiwi bird eggs", mode: .keyword), orgID: acme.id)
            #expect(!afterDelete.results.contains { $0.documentID == kiwi })
            try await memory.warmUp(orgID: acme.id)
            let reloaded = try await memory.search(SearchRequest(query: "kiwi bird eggs", mode: .keyword), orgID: acme.id)
            let again = try await sql.search(SearchRequest(query: "kiwi bird eggs", mode: .keyword), orgID: acme.id)
            #expect(reloaded.results.map(\.documentID) == again.results.map(\.documentID))
        }
    }

    @Test func metricsMatchHandComputedValues() {
        // Ranking d3, d1, d9, d2 against judgements d1 (2), d2 (1), d5 (1).
        let judgements = ["d1": 2, "d2": 1, "d5": 1]
        let ranking = ["d3", "d1", "d9", "d2"]
        let dcg = 2 / log2(3.0) + 1 / log2(5.0)
        let idcg = 2 / log2(2.0) + 1 / log2(3.0) + 1 / log2(4.0)
        #expect(abs(RetrievalMetrics.ndcg(ranking: ranking, judgements: judgements) - dcg / idcg) < 1e-12)
        #expect(abs(RetrievalMetrics.recall(ranking: ranking, judgements: judgements) - 2.0 / 3.0) < 1e-12)
        #expect(RetrievalMetrics.reciprocalRank(ranking: ranking, judgements: judgements) == 0.5)
        let summary = RetrievalMetrics.summarize(rankings: ["q1": ranking, "q2": ["x"]], qrels: ["q1": judgements, "q2": ["y": 1], "q3": ["z": 0]])
        #expect(summary.queries == 2)
        #expect(abs(summary.mrr10 - 0.25) < 1e-12)
    }

    @Test func rankingFiltersTenancyAndDeletes() async throws {
        try await TestEnvironment.with { env in
            let acme = try await env.organization("acme")
            let other = try await env.organization("other")
            let folder = try Self.corpus(Self.documents)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            let ids = try await env.importAndProcess([folder], into: acme)
            // The other organisation holds an overlapping copy plus one document of its own.
            let otherFolder = try Self.corpus(["kiwi-copy.txt": Self.documents["kiwi.txt"]! + " Copy.", "secret.txt": "Project zephyr budget is confidential."])
            defer { try? FileManager.default.removeItem(atPath: otherFolder) }
            let otherIDs = try await env.importAndProcess([otherFolder], into: other)
            let service = try env.searchService()

            // Exact terms: keyword finds the invoice first.
            let keyword = try await service.search(SearchRequest(query: "invoice 2291 payment", mode: .keyword), orgID: acme.id)
            #expect(keyword.results.first?.externalID == "invoice.txt")
            #expect(keyword.results.first?.snippet.contains("<mark>") == true)
            // A paraphrase with no shared words: only the vector leg finds it.
            let paraphrase = "a bird that cannot fly and lays huge eggs"
            let lexical = try await service.search(SearchRequest(query: "the heartbeat ceased", mode: .keyword), orgID: acme.id)
            #expect(!lexical.results.contains { $0.externalID == "heart.txt" })
            let semantic = try await service.search(SearchRequest(query: "the heartbeat ceased", mode: .semantic), orgID: acme.id)
            #expect(semantic.results.first?.externalID == "heart.txt")
            let hybrid = try await service.search(SearchRequest(query: paraphrase, mode: .hybrid), orgID: acme.id)
            #expect(hybrid.results.first?.externalID == "kiwi.txt")
            // Similar sentences score higher than unrelated ones.
            let volcano = try await service.search(SearchRequest(query: "eruption of a volcano", mode: .semantic, limit: 5), orgID: acme.id)
            #expect(volcano.results.first?.externalID == "volcano.txt")
            #expect((volcano.results.first?.score ?? 0) > (volcano.results.last?.score ?? 1))

            // A filter excludes the top hit inside the legs; the next document takes its place.
            let kiwiID = try #require(hybrid.results.first?.documentID)
            let others = ids.filter { $0 != kiwiID }
            let filtered = try await service.search(
                SearchRequest(query: paraphrase, mode: .hybrid, limit: 3, filters: SearchFilters(documentIDs: others)), orgID: acme.id)
            #expect(!filtered.results.contains { $0.documentID == kiwiID })
            #expect(filtered.results.count == 3)

            // Pagination: two pages of two cover the first four of one page of four.
            let all = try await service.search(SearchRequest(query: paraphrase, mode: .hybrid, limit: 4), orgID: acme.id)
            let first = try await service.search(SearchRequest(query: paraphrase, mode: .hybrid, limit: 2), orgID: acme.id)
            let second = try await service.search(SearchRequest(query: paraphrase, mode: .hybrid, limit: 2, cursor: first.nextCursor), orgID: acme.id)
            #expect((first.results + second.results).map(\.documentID) == all.results.map(\.documentID))

            // Tenancy: no result ever comes from the other organisation, in any mode.
            for mode in SearchMode.allCases {
                for query in ["kiwi bird eggs", "project zephyr budget", "confidential"] {
                    let response = try await service.search(SearchRequest(query: query, mode: mode, limit: 20), orgID: acme.id)
                    #expect(response.results.allSatisfy { ids.contains($0.documentID) }, "\(mode) leaked for \(query)")
                    let theirs = try await service.search(SearchRequest(query: query, mode: mode, limit: 20), orgID: other.id)
                    #expect(theirs.results.allSatisfy { otherIDs.contains($0.documentID) }, "\(mode) leaked into other for \(query)")
                }
            }

            // Concurrent searches of both organisations share embedding and scan passes (`SemanticBatcher`): each
            // still gets its own organisation's documents, the same ones as when asked alone.
            var cases: [(orgID: UUID, allowed: Set<UUID>, query: String, mode: SearchMode)] = []
            for (orgID, allowed) in [(acme.id, Set(ids)), (other.id, Set(otherIDs))] {
                for query in ["kiwi bird eggs", "project zephyr budget", "a bird that cannot fly"] {
                    for mode in [SearchMode.semantic, .hybrid] { cases.append((orgID, allowed, query, mode)) }
                }
            }
            var alone: [Set<UUID>] = []
            for c in cases {
                alone.append(Set(try await service.search(SearchRequest(query: c.query, mode: c.mode, limit: 20), orgID: c.orgID).results.map(\.documentID)))
            }
            let together = try await withThrowingTaskGroup(of: (Int, [UUID]).self) { group in
                for _ in 0..<4 {
                    for (position, c) in cases.enumerated() {
                        group.addTask {
                            let found = try await service.search(SearchRequest(query: c.query, mode: c.mode, limit: 20), orgID: c.orgID)
                            return (position, found.results.map(\.documentID))
                        }
                    }
                }
                var all: [(Int, [UUID])] = []
                for try await answer in group { all.append(answer) }
                return all
            }
            #expect(together.count == cases.count * 4)
            for (position, found) in together {
                let c = cases[position]
                #expect(found.allSatisfy(c.allowed.contains), "\(c.mode) leaked across organisations for \(c.query)")
                #expect(Set(found) == alone[position], "\(c.mode) answered \(c.query) differently when concurrent")
            }

            // BM25 statistics are exact, and stay exact after a delete; the deleted document never appears again.
            try await Self.expectExactStatistics(env)
            try await env.database.client.query("DELETE FROM documents WHERE id = \(kiwiID) AND org_id = \(acme.id)", logger: env.logger)
            try await Self.expectExactStatistics(env)
            for mode in SearchMode.allCases {
                let response = try await service.search(SearchRequest(query: "kiwi flightless bird eggs", mode: mode, limit: 20), orgID: acme.id)
                #expect(!response.results.contains { $0.documentID == kiwiID }, "\(mode) returned a deleted document")
            }
        }
    }

    /// term_stats and search_stats equal what the postings say, for every organisation.
    static func expectExactStatistics(_ env: TestEnvironment) async throws {
        let wrongTerms = try await env.count(
            """
            SELECT count(*) FROM (
                SELECT org_id, term, count(*)::int AS df FROM chunk_terms GROUP BY org_id, term
            ) truth FULL JOIN term_stats s USING (org_id, term)
            WHERE truth.df IS DISTINCT FROM s.df
            """)
        #expect(wrongTerms == 0)
        let wrongTotals = try await env.count(
            """
            SELECT count(*) FROM (
                SELECT org_id, count(DISTINCT (document_id, chunk_index)) AS chunks, sum(tf) AS total FROM chunk_terms GROUP BY org_id
            ) truth FULL JOIN search_stats s USING (org_id)
            WHERE coalesce(truth.chunks, 0) <> coalesce(s.chunks, 0) OR coalesce(truth.total, 0) <> coalesce(s.total_length, 0)
            """)
        #expect(wrongTotals == 0)
    }
}
