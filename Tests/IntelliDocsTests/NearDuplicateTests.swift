import Foundation
import Search
import Similarity
import Storage
import Testing
import TestSupport

/// Near-duplicate detection: exact Jaccard over word shingles, MinHash LSH candidates, and the marks the
/// chunk stage leaves in PostgreSQL, per organisation, with search collapsing them.
@Suite(.serialized)
struct NearDuplicateTests {
    /// `count` words drawn deterministically from a small vocabulary, in sentences.
    static func text(count: Int, seed: UInt64) -> String {
        var generator = SeededGenerator(seed: seed)
        let words = [
            "harbour", "lantern", "granite", "orchard", "meadow", "copper", "violet", "thunder", "glacier", "saffron",
            "beacon", "falcon", "ember", "quartz", "willow", "cobalt", "juniper", "marble", "tundra", "zephyr",
            "canyon", "delta", "fjord", "lagoon", "mesa", "prairie", "reef", "savanna", "steppe", "tributary",
        ]
        var output: [String] = []
        for index in 0..<count {
            var word = words[Int.random(in: 0..<words.count, using: &generator)]
            if index % 12 == 0 { word = word.capitalized }
            output.append(index % 12 == 11 ? word + "." : word)
        }
        return output.joined(separator: " ")
    }

    /// `text` with the words at `positions` replaced by `word`.
    static func replacing(_ text: String, at positions: [Int], with word: String) -> String {
        var words = text.split(separator: " ").map(String.init)
        for position in positions { words[position] = word }
        return words.joined(separator: " ")
    }

    @Test func shinglesAndMinHashFindWhatIsSimilarAndNothingElse() {
        let original = Self.text(count: 300, seed: 7)
        let a = ShingleSet(text: original)
        // Case, punctuation and spacing do not matter.
        #expect(a.jaccard(ShingleSet(text: original.uppercased().replacingOccurrences(of: " ", with: "  \n"))) == 1)
        // One word changed touches five 5-word shingles of about 296.
        let oneWord = ShingleSet(text: Self.replacing(original, at: [150], with: "xylophone"))
        #expect(a.jaccard(oneWord) > 0.95 && a.jaccard(oneWord) < 1)
        // Every fifth word changed: every shingle differs.
        let distant = ShingleSet(text: Self.replacing(original, at: Array(stride(from: 0, to: 300, by: 5)), with: "xylophone"))
        #expect(a.jaccard(distant) < 0.1)
        let unrelated = ShingleSet(text: Self.text(count: 300, seed: 99))
        #expect(a.jaccard(unrelated) < 0.1)
        #expect(ShingleSet(text: "  ...  ").isEmpty)
        #expect(ShingleSet(text: "two words").hashes.count == 1)

        let hasher = MinHasher()
        let keys = hasher.bandKeys(of: hasher.signature(of: a))
        #expect(keys.count == 16)
        // Deterministic: another hasher (another process) computes the same keys.
        #expect(MinHasher().bandKeys(of: MinHasher().signature(of: a)) == keys)
        let nearKeys = hasher.bandKeys(of: hasher.signature(of: oneWord))
        #expect(zip(keys, nearKeys).contains { $0 == $1 }, "a 0.97-similar text must share a band")
        let unrelatedKeys = hasher.bandKeys(of: hasher.signature(of: unrelated))
        #expect(!zip(keys, unrelatedKeys).contains { $0 == $1 })
        #expect(hasher.signature(of: ShingleSet(text: "")).isEmpty)
    }

    @Test func chunkStageMarksNearDuplicatesPerOrganisationAndSearchCollapsesThem() async throws {
        try await TestEnvironment.with { env in
            let acme = try await env.organization("acme")
            let other = try await env.organization("other")
            let original = Self.text(count: 300, seed: 7)
            let first = try SearchTests.corpus(["original.txt": original])
            defer { try? FileManager.default.removeItem(atPath: first) }
            let originalID = try #require(try await env.importAndProcess([first], into: acme).first)

            let twin = Self.text(count: 200, seed: 11)
            let second = try SearchTests.corpus([
                "near.txt": Self.replacing(original, at: [100, 200], with: "xylophone"),
                "distant.txt": Self.replacing(original, at: Array(stride(from: 0, to: 300, by: 5)), with: "xylophone"),
                "unrelated.txt": Self.text(count: 300, seed: 99),
                // Same words, different case: different bytes (not an exact duplicate), Jaccard 1.
                "twin-a.txt": twin,
                "twin-b.txt": twin.uppercased(),
            ])
            defer { try? FileManager.default.removeItem(atPath: second) }
            _ = try await env.importAndProcess([second], into: acme)
            // The same text in another organisation is nobody's near duplicate there.
            let elsewhere = try SearchTests.corpus(["copy.txt": Self.replacing(original, at: [5], with: "xylophone")])
            defer { try? FileManager.default.removeItem(atPath: elsewhere) }
            let copyID = try #require(try await env.importAndProcess([elsewhere], into: other).first)

            var marks: [String: (original: UUID?, similarity: Float?)] = [:]
            var idsByName: [String: UUID] = [:]
            let rows = try await env.database.client.query(
                "SELECT id, external_id, near_duplicate_of, near_duplicate_similarity FROM documents", logger: env.logger)
            for try await (id, name, nearDuplicateOf, similarity) in rows.decode((UUID, String, UUID?, Float?).self) {
                marks[name] = (nearDuplicateOf, similarity)
                idsByName[name] = id
            }
            #expect(marks["near.txt"]?.original == originalID)
            let similarity = try #require(marks["near.txt"]?.similarity)
            #expect(similarity >= 0.9 && similarity < 1)
            #expect(marks["original.txt"]?.original == nil)
            #expect(marks["distant.txt"]?.original == nil)
            #expect(marks["unrelated.txt"]?.original == nil)
            #expect(marks["copy.txt"]?.original == nil)
            // Of two twins in one batch, exactly one points at the other: no cycle.
            let twinA = try #require(idsByName["twin-a.txt"]), twinB = try #require(idsByName["twin-b.txt"])
            let twinMarks = [marks["twin-a.txt"]?.original, marks["twin-b.txt"]?.original]
            #expect(twinMarks == [nil, twinA] || twinMarks == [twinB, nil], "\(twinMarks)")

            let stats = try await OrganizationStats.load(orgID: acme.id, database: env.database)
            #expect(stats.nearDuplicates == 2)
            #expect(try await OrganizationStats.load(orgID: other.id, database: env.database).nearDuplicates == 0)

            // Search: both copies match; collapsed, only the original stands for them, in every mode.
            let service = try env.searchService()
            let query = original.split(separator: " ").prefix(12).joined(separator: " ")
            let nearID = try #require(idsByName["near.txt"])
            for mode in SearchMode.allCases {
                let all = try await service.search(SearchRequest(query: query, mode: mode, limit: 10), orgID: acme.id)
                #expect(all.results.contains { $0.documentID == nearID }, "\(mode)")
                #expect(all.results.contains { $0.documentID == originalID }, "\(mode)")
                let collapsed = try await service.search(
                    SearchRequest(query: query, mode: mode, limit: 10, filters: SearchFilters(collapseNearDuplicates: true)), orgID: acme.id)
                #expect(!collapsed.results.contains { $0.documentID == nearID }, "\(mode)")
                #expect(collapsed.results.contains { $0.documentID == originalID }, "\(mode)")
                #expect(!collapsed.results.contains { $0.documentID == copyID })
            }

            // Deleting the original releases its near duplicate.
            try await env.database.client.query("DELETE FROM documents WHERE id = \(originalID) AND org_id = \(acme.id)", logger: env.logger)
            #expect(try await env.count("SELECT count(*) FROM documents WHERE near_duplicate_of IS NOT NULL AND org_id = \(acme.id)") == 1)
            #expect(try await env.count("SELECT count(*) FROM document_lsh WHERE document_id = \(originalID)") == 0)
        }
    }
}
