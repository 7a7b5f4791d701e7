public import Foundation
import Logging
import PostgresNIO
public import Storage

/// One hit: a document, represented by its best-matching chunk.
public struct SearchResult: Sendable, Codable, Equatable {
    public let documentID: UUID
    public let externalID: String?
    public let title: String
    public let page: Int
    public let score: Double
    /// The best chunk's text around the matched terms, which are wrapped in `<mark>…</mark>`.
    public let snippet: String

    enum CodingKeys: String, CodingKey {
        case documentID = "document_id", externalID = "external_id", title, page, score, snippet
    }
}

/// Keyword search over an organisation's indexed chunks with PostgreSQL full-text search (English
/// stemming and stop-words). Any query term may match (OR), ranked by cover density with the document
/// title weighted; results are grouped by document, best chunk first.
public struct KeywordSearch: Sendable {
    let database: Database

    public init(database: Database) { self.database = database }

    public func search(_ query: String, orgID: UUID, limit: Int = 10) async throws -> [SearchResult] {
        let trimmed = query.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return [] }
        let limit = max(1, min(limit, 1000))
        let rows = try await database.client.query(
            """
            WITH q AS (
                SELECT nullif(replace(plainto_tsquery('english', \(trimmed))::text, ' & ', ' | '), '')::tsquery AS query
            ),
            hits AS (
                SELECT c.document_id, c.page_number, c.text, ts_rank_cd(c.tsv, q.query, 1) AS score
                FROM chunks c, q
                WHERE c.org_id = \(orgID) AND q.query IS NOT NULL AND c.tsv @@ q.query
            ),
            best AS (
                SELECT DISTINCT ON (document_id) document_id, page_number, text, score
                FROM hits ORDER BY document_id, score DESC
            ),
            top AS (
                SELECT * FROM best ORDER BY score DESC, document_id LIMIT \(limit)
            )
            SELECT t.document_id, d.external_id, d.title, t.page_number, t.score::float8,
                   ts_headline('english', t.text, q.query,
                               'StartSel=<mark>, StopSel=</mark>, MaxWords=25, MinWords=10, MaxFragments=2, FragmentDelimiter=" … "')
            FROM top t
            JOIN documents d ON d.id = t.document_id AND d.org_id = \(orgID)
            CROSS JOIN q
            ORDER BY t.score DESC, t.document_id
            """, logger: database.logger)
        var results: [SearchResult] = []
        for try await (id, external, title, page, score, snippet) in rows.decode((UUID, String?, String, Int32, Double, String).self) {
            results.append(SearchResult(
                documentID: id, externalID: external, title: title, page: Int(page), score: score, snippet: snippet))
        }
        return results
    }
}
