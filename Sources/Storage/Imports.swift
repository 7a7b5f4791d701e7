public import Foundation
import Logging
import PostgresNIO

/// Import runs. The key identifies "the same import" (organisation, sources, format), so running an
/// interrupted import again resumes it rather than counting its own files as duplicates.
public struct ImportRepository: Sendable {
    let database: Database
    public init(_ database: Database) { self.database = database }

    /// Returns the running import with this key, or starts a new one.
    public func begin(orgID: UUID, key: String) async throws -> (id: UUID, resumed: Bool) {
        let id = UUID()
        let rows = try await database.client.query(
            """
            WITH inserted AS (
                INSERT INTO imports (id, org_id, import_key) VALUES (\(id), \(orgID), \(key))
                ON CONFLICT (org_id, import_key) WHERE status = 'running' DO NOTHING
                RETURNING id
            )
            SELECT id, false FROM inserted
            UNION ALL
            SELECT id, true FROM imports WHERE org_id = \(orgID) AND import_key = \(key) AND status = 'running'
            LIMIT 1
            """, logger: database.logger)
        for try await (found, resumed) in rows.decode((UUID, Bool).self) { return (found, resumed) }
        throw StorageError(code: .query, message: "could not start the import; try again")
    }

    /// Every file was registered and published: a later run with the same key is a new import.
    public func complete(_ id: UUID, orgID: UUID, filesFound: Int) async throws {
        try await database.client.query(
            """
            UPDATE imports SET status = 'completed', finished_at = now(), files_found = \(filesFound)
            WHERE id = \(id) AND org_id = \(orgID)
            """, logger: database.logger)
    }

    /// Per-stage counts of succeeded stage runs among `documentIDs` (progress of `import --wait`).
    public func stageProgress(_ documentIDs: [UUID], orgID: UUID) async throws -> [String: Int] {
        let rows = try await database.client.query(
            """
            SELECT stage, count(*) FROM stage_runs
            WHERE org_id IS NOT DISTINCT FROM \(orgID) AND document_id = ANY(\(documentIDs)::uuid[]) AND status = 'succeeded'
            GROUP BY stage
            """, logger: database.logger)
        var counts: [String: Int] = [:]
        for try await (stage, count) in rows.decode((String, Int).self) { counts[stage] = count }
        return counts
    }
}
