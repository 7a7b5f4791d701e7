import Foundation
import Logging
import PostgresNIO
import Storage

/// BM25 over an organisation's chunk postings (0003_search.sql). Query terms are English lexemes as
/// PostgreSQL's `english` configuration produces them (stemmed, stop-words dropped), the same function
/// that built the postings. Statistics (df, N, average length) are per organisation and exact.
struct KeywordRetriever: Sendable {
    let database: Database
    /// Anserini's BEIR defaults.
    var k1 = 0.9
    var b = 0.4
    /// Scores from memory while the organisation's snapshot is fresh (or, for a large organisation, being
    /// reloaded); SQL otherwise.
    var index: KeywordIndex?

    /// `context`: what the search already read (lexemes, versions, allowed documents); nil reads them here.
    func retrieve(_ query: String, orgID: UUID, filters: SearchFilters, limit: Int, context: QueryContext? = nil) async throws -> [ChunkHit] {
        if let index, let (snapshot, excluded) = try await index.usable(orgID, versions: context?.versions) {
            let lexemes: [String]
            let allowed: Set<UUID>?
            if let context {
                (lexemes, allowed) = (context.lexemes, context.allowed)
            } else {
                lexemes = try await Self.lexemes(of: query, database: database)
                allowed =
                    filters == SearchFilters() ? nil : try await SearchFilterQuery.allowedDocuments(orgID: orgID, filters: filters, database: database)
            }
            return index.search(snapshot, lexemes: lexemes, k1: k1, b: b, limit: limit, allowed: allowed, excluded: excluded)
        }
        return try await retrieveWithSQL(query, orgID: orgID, filters: filters, limit: limit)
    }

    /// The query's English lexemes, as PostgreSQL's `english` configuration makes them (the postings' own).
    static func lexemes(of query: String, database: Database) async throws -> [String] {
        let rows = try await database.client.query(
            "SELECT DISTINCT lexeme FROM unnest(to_tsvector('english', \(query)))", logger: database.logger)
        var lexemes: [String] = []
        for try await lexeme in rows.decode(String.self) { lexemes.append(lexeme) }
        return lexemes
    }

    func retrieveWithSQL(_ query: String, orgID: UUID, filters: SearchFilters, limit: Int) async throws -> [ChunkHit] {
        let rows = try await database.client.query(
            """
            WITH q AS (SELECT DISTINCT lexeme AS term FROM unnest(to_tsvector('english', \(query)))),
            s AS (
                SELECT chunks::float8 AS n, greatest(total_length::float8 / greatest(chunks, 1), 1) AS avgdl
                FROM search_stats WHERE org_id = \(orgID)
            ),
            w AS (
                SELECT t.term, ln(1 + (s.n - t.df + 0.5) / (t.df + 0.5)) AS idf
                FROM term_stats t JOIN q ON q.term = t.term CROSS JOIN s
                WHERE t.org_id = \(orgID)
            ),
            hits AS (
                SELECT p.document_id, p.chunk_index,
                       sum(w.idf * p.tf * (\(k1) + 1) / (p.tf + \(k1) * (1 - \(b) + \(b) * p.chunk_length / s.avgdl))) AS score
                FROM chunk_terms p JOIN w ON p.term = w.term CROSS JOIN s
                WHERE p.org_id = \(orgID)
                GROUP BY p.document_id, p.chunk_index
            )
            SELECT h.document_id, h.chunk_index, h.score::float8
            FROM hits h JOIN documents d ON d.id = h.document_id AND d.org_id = \(orgID)
            WHERE (cardinality(\(filters.documentIDs)::uuid[]) = 0 OR d.id = ANY(\(filters.documentIDs)::uuid[]))
              AND (cardinality(\(filters.tags)::text[]) = 0 OR d.tags @> \(filters.tags)::text[])
              AND (cardinality(\(filters.mimeTypes)::text[]) = 0 OR d.mime_type = ANY(\(filters.mimeTypes)::text[]))
              AND (\(filters.createdAfter)::timestamptz IS NULL OR d.created_at >= \(filters.createdAfter)::timestamptz)
              AND (\(filters.createdBefore)::timestamptz IS NULL OR d.created_at < \(filters.createdBefore)::timestamptz)
              AND (NOT \(filters.collapseNearDuplicates) OR d.near_duplicate_of IS NULL)
            ORDER BY h.score DESC, h.document_id, h.chunk_index
            LIMIT \(limit)
            """, logger: database.logger)
        var hits: [ChunkHit] = []
        for try await (document, chunk, score) in rows.decode((UUID, Int32, Double).self) {
            hits.append(ChunkHit(documentID: document, chunkIndex: Int(chunk), score: score))
        }
        return hits
    }
}
