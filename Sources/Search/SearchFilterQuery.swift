import Foundation
import Logging
import PostgresNIO
import Storage

/// The filters of a search as a set of documents, for the legs that rank in memory.
enum SearchFilterQuery {
    /// The organisation's documents that pass the filters (applied before ranking, not after).
    static func allowedDocuments(orgID: UUID, filters: SearchFilters, database: Database) async throws -> Set<UUID> {
        let rows = try await database.client.query(
            """
            SELECT d.id FROM documents d
            WHERE d.org_id = \(orgID)
              AND (cardinality(\(filters.documentIDs)::uuid[]) = 0 OR d.id = ANY(\(filters.documentIDs)::uuid[]))
              AND (cardinality(\(filters.tags)::text[]) = 0 OR d.tags @> \(filters.tags)::text[])
              AND (cardinality(\(filters.mimeTypes)::text[]) = 0 OR d.mime_type = ANY(\(filters.mimeTypes)::text[]))
              AND (\(filters.createdAfter)::timestamptz IS NULL OR d.created_at >= \(filters.createdAfter)::timestamptz)
              AND (\(filters.createdBefore)::timestamptz IS NULL OR d.created_at < \(filters.createdBefore)::timestamptz)
              AND (NOT \(filters.collapseNearDuplicates) OR d.near_duplicate_of IS NULL)
            """, logger: database.logger)
        var ids = Set<UUID>()
        for try await id in rows.decode(UUID.self) { ids.insert(id) }
        return ids
    }
}
