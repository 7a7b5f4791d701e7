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
    public func complete(_ id: UUID, orgID: UUID, filesFound: Int, stored: Int = 0, duplicates: Int = 0, skipped: Int = 0) async throws {
        try await database.client.query(
            """
            UPDATE imports SET status = 'completed', finished_at = now(), files_found = \(filesFound),
                stored = \(stored), duplicates = \(duplicates), skipped = \(skipped)
            WHERE id = \(id) AND org_id = \(orgID)
            """, logger: database.logger)
    }

    /// An import's counters and the states of the documents it created.
    public func summary(_ id: UUID, orgID: UUID) async throws -> ImportSummary? {
        let rows = try await database.client.query(
            """
            SELECT i.status, i.files_found, i.stored, i.duplicates, i.skipped, i.created_at, i.finished_at,
                   count(*) FILTER (WHERE d.status = 'succeeded'), count(*) FILTER (WHERE d.status = 'failed'),
                   count(*) FILTER (WHERE d.status IN ('queued', 'processing'))
            FROM imports i LEFT JOIN documents d ON d.import_id = i.id AND d.org_id = i.org_id
            WHERE i.id = \(id) AND i.org_id = \(orgID)
            GROUP BY i.id
            """, logger: database.logger)
        for try await (status, found, stored, duplicates, skipped, created, finished, succeeded, failed, inProgress) in rows.decode(
            (String, Int, Int, Int, Int, Date, Date?, Int, Int, Int).self)
        {
            return ImportSummary(
                id: id, status: status, found: found, stored: stored, duplicates: duplicates, skipped: skipped, succeeded: succeeded,
                failed: failed, inProgress: inProgress, createdAt: created, finishedAt: finished)
        }
        return nil
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

/// What `GET /v1/orgs/{org}/imports/{id}` shows: what the import found and where its documents are.
public struct ImportSummary: Sendable, Equatable {
    public let id: UUID
    /// `running` or `completed` (every file registered and queued).
    public let status: String
    public let found: Int
    public let stored: Int
    public let duplicates: Int
    public let skipped: Int
    public let succeeded: Int
    public let failed: Int
    public let inProgress: Int
    public let createdAt: Date
    public let finishedAt: Date?
}
