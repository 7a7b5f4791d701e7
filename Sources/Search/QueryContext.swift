public import Foundation
import Logging
import PostgresNIO
import Storage

/// An organisation's search-index versions as `search_stats` counts them: `version` grows with every
/// indexed batch, `deletions` with every delete. An in-memory index whose snapshot has both is fresh.
public struct IndexVersions: Sendable, Equatable {
    public var version: Int64
    public var deletions: Int64

    public init(version: Int64, deletions: Int64) {
        self.version = version
        self.deletions = deletions
    }

    /// The later of several readings (both counters only grow).
    static func latest(_ readings: [IndexVersions]) -> IndexVersions? {
        guard let first = readings.first else { return nil }
        return readings.dropFirst().reduce(first) {
            IndexVersions(version: max($0.version, $1.version), deletions: max($0.deletions, $1.deletions))
        }
    }
}

/// What one search reads from PostgreSQL once, before ranking, for both legs and the snippets: the
/// query's English lexemes, the organisation's index versions and, with filters, the documents they
/// allow. Each leg used to read these itself (versions twice, lexemes twice, filters twice), four round
/// trips per hybrid search before the results' texts; PostgreSQL's share of the CPU was about a fifth
/// of the whole at 300 searches/s on SciFact.
public struct QueryContext: Sendable {
    /// `to_tsvector('english', query)`'s distinct lexemes: the postings' own terms.
    public let lexemes: [String]
    public let versions: IndexVersions
    /// The documents the filters allow; nil without filters.
    public let allowed: Set<UUID>?

    /// One statement for lexemes and versions, a second one only when there are filters.
    static func read(query: String, orgID: UUID, filters: SearchFilters, database: Database) async throws -> QueryContext {
        let rows = try await database.client.execute(Statement(query: query, orgID: orgID), logger: database.logger)
        var lexemes: [String] = []
        var versions = IndexVersions(version: 0, deletions: 0)
        for try await (terms, version, deletions) in rows {
            lexemes = terms
            versions = IndexVersions(version: version ?? 0, deletions: deletions ?? 0)
        }
        let allowed =
            filters == SearchFilters() ? nil : try await SearchFilterQuery.allowedDocuments(orgID: orgID, filters: filters, database: database)
        return QueryContext(lexemes: lexemes, versions: versions, allowed: allowed)
    }

    /// Prepared once per connection: it runs for every search, and parsing and planning it each time was
    /// a good part of its cost in PostgreSQL.
    struct Statement: PostgresPreparedStatement {
        static let sql = """
            SELECT (SELECT coalesce(array_agg(DISTINCT lexeme), '{}') FROM unnest(to_tsvector('english', $1::text))),
                   s.version, s.deletions
            FROM (SELECT 1) AS one LEFT JOIN search_stats s ON s.org_id = $2
            """
        typealias Row = ([String], Int64?, Int64?)

        let query: String
        let orgID: UUID

        func makeBindings() -> PostgresBindings {
            var bindings = PostgresBindings()
            bindings.append(query)
            bindings.append(orgID)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }
}
