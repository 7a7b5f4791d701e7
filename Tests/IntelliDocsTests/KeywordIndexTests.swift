import Foundation
@testable import Search
import Storage
import Testing

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
            let index = KeywordIndex(database: env.database, staleServingMinimumPostings: 1, minimumReloadInterval: .seconds(3600))
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
}
