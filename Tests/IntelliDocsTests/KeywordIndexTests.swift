import Foundation
@testable import Search
import Storage
import Testing
import TestSupport

/// A large organisation's in-memory BM25 keeps serving while it reloads after a change (SQL would take
/// seconds per query there), without ever showing a deleted document; here "large" is lowered to one
/// posting so six documents count.
struct KeywordIndexTests {
    @Test func aStaleSnapshotOfALargeOrganisationServesWithoutDeletedDocuments() async throws {
        try await TestEnvironment.with { env in
            let acme = try await env.organization("acme")
            let folder = try SearchTests.corpus(SearchTests.documents)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            _ = try await env.importAndProcess([folder], into: acme)
            let index = KeywordIndex(
                database: env.database, staleServingMinimumPostings: 1, minimumReloadInterval: .seconds(3600), mergesChanges: false)
            let memory = SearchService(database: env.database, keywordIndex: index)
            let sql = SearchService(database: env.database)
            try await memory.warmUp(orgID: acme.id)
            let loaded = try #require(try await index.usable(acme.id))
            #expect(loaded.excluded.isEmpty)

            // The warm-up was a load: the next one is an hour away, so the stale snapshot must serve.
            let kiwi = try #require(try await sql.search(SearchRequest(query: "kiwi", mode: .keyword), orgID: acme.id).results.first?.documentID)
            try await env.database.client.query("DELETE FROM documents WHERE id = \(kiwi) AND org_id = \(acme.id)", logger: env.logger)
            #expect(try await index.usable(acme.id)?.excluded == [kiwi])
            let volcano = try #require(
                try await sql.search(SearchRequest(query: "volcano eruptions", mode: .keyword), orgID: acme.id).results.first?.documentID)
            try await env.database.client.query("DELETE FROM documents WHERE id = \(volcano) AND org_id = \(acme.id)", logger: env.logger)
            let stale = try #require(try await index.usable(acme.id))
            #expect(stale.excluded == [kiwi, volcano])
            #expect(try await index.fresh(acme.id) == nil)
            for query in ["volcano eruptions ash", "kiwi bird eggs", "invoice payment"] {
                let fromMemory = try await memory.search(SearchRequest(query: query, mode: .keyword, limit: 10), orgID: acme.id)
                let fromSQL = try await sql.search(SearchRequest(query: query, mode: .keyword, limit: 10), orgID: acme.id)
                #expect(!fromMemory.results.contains { $0.documentID == volcano || $0.documentID == kiwi }, "\(query)")
                // Until the reload, statistics are the previous snapshot's: the same documents, scores may differ.
                #expect(Set(fromMemory.results.map(\.documentID)) == Set(fromSQL.results.map(\.documentID)), "\(query)")
            }
            // A small organisation (the default threshold) never serves stale: SQL answers until it reloads.
            let small = KeywordIndex(database: env.database)
            try await small.warm(acme.id)
            let invoice = try #require(
                try await sql.search(SearchRequest(query: "invoice", mode: .keyword), orgID: acme.id).results.first?.documentID)
            try await env.database.client.query("DELETE FROM documents WHERE id = \(invoice) AND org_id = \(acme.id)", logger: env.logger)
            #expect(try await small.usable(acme.id) == nil)
        }
    }

    /// Deletions and newly indexed documents are merged in memory, with exact statistics: the same results
    /// and scores as SQL's BM25, within moments and without reading every posting again, even for a large
    /// organisation whose reloads are throttled. A change the index log does not name takes a full load.
    @Test func changesAreMergedInMemoryWithExactStatistics() async throws {
        try await TestEnvironment.with { env in
            let acme = try await env.organization("acme")
            let folder = try SearchTests.corpus(SearchTests.documents)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            _ = try await env.importAndProcess([folder], into: acme)
            let index = KeywordIndex(
                database: env.database, staleServingMinimumPostings: 1, minimumReloadInterval: .seconds(3600), minimumMergeInterval: .zero)
            let memory = SearchService(database: env.database, keywordIndex: index)
            let sql = SearchService(database: env.database)
            try await memory.warmUp(orgID: acme.id)
            #expect(index.fullLoads.load(ordering: .relaxed) == 1)

            /// Queries bring the index up to date themselves (a large organisation serves its old snapshot meanwhile).
            func freshWithinFiveSeconds() async throws -> KeywordIndex.Snapshot {
                for _ in 0..<100 {
                    _ = try await index.usable(acme.id)
                    if let fresh = try await index.fresh(acme.id) { return fresh }
                    try await Task.sleep(for: .milliseconds(50))
                }
                throw TestFailure("the keyword index did not catch up within 5 s")
            }
            let queries = ["volcano eruptions ash", "kiwi bird eggs", "invoice payment", "the"]

            func expectSameAsSQL(_ note: String) async throws {
                for query in queries {
                    let fromMemory = try await memory.search(SearchRequest(query: query, mode: .keyword, limit: 10), orgID: acme.id).results
                    let fromSQL = try await sql.search(SearchRequest(query: query, mode: .keyword, limit: 10), orgID: acme.id).results
                    #expect(fromMemory.map(\.documentID) == fromSQL.map(\.documentID), "\(note): \(query)")
                    for (a, b) in zip(fromMemory, fromSQL) { #expect(abs(a.score - b.score) < 1e-9, "\(note): \(query)") }
                }
            }

            // A deleted document, while reloads are an hour away: queries bring the index up to date themselves.
            let kiwi = try #require(try await sql.search(SearchRequest(query: "kiwi", mode: .keyword), orgID: acme.id).results.first?.documentID)
            try await env.database.client.query("DELETE FROM documents WHERE id = \(kiwi) AND org_id = \(acme.id)", logger: env.logger)
            let pruned = try await freshWithinFiveSeconds()
            #expect(!pruned.chunks.contains { $0.documentID == kiwi })
            #expect(index.fullLoads.load(ordering: .relaxed) == 1)
            try await expectSameAsSQL("after a deleted document")

            // Postings removed while their document stays, and the index log no longer naming anything (as if
            // trimmed): the merge's counts disagree with PostgreSQL's, so a full load.
            let volcano = try #require(
                try await sql.search(SearchRequest(query: "eruptions ash", mode: .keyword), orgID: acme.id).results.first?.documentID)
            try await env.database.client.query("DELETE FROM index_log WHERE org_id = \(acme.id)", logger: env.logger)
            try await env.database.client.query(
                "DELETE FROM chunk_terms WHERE document_id = \(volcano) AND org_id = \(acme.id)", logger: env.logger)
            try await index.warm(acme.id)
            #expect(index.fullLoads.load(ordering: .relaxed) == 2)
            try await expectSameAsSQL("after removed postings")

            // Newly indexed documents are merged from the index log, new terms included.
            let more = try SearchTests.corpus([
                "extra.txt": "Kiwi birds lay very large eggs for their body size.",
                "zephyr.txt": "Zephyrine quokkas photograph beautifully at dawn.",
            ])
            defer { try? FileManager.default.removeItem(atPath: more) }
            let added = try await env.importAndProcess([more], into: acme)
            let merged = try await freshWithinFiveSeconds()
            #expect(index.fullLoads.load(ordering: .relaxed) == 2)
            #expect(added.allSatisfy { id in merged.chunks.contains { $0.documentID == id } })
            #expect(merged.terms["quokka"] != nil)
            try await expectSameAsSQL("after an import")
            let quokka = try await memory.search(SearchRequest(query: "quokkas", mode: .keyword), orgID: acme.id)
            #expect(quokka.results.first.map { added.contains($0.documentID) } == true)
        }
    }
}
