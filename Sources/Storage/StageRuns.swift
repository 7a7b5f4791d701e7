public import Foundation
public import Logging
public import PostgresNIO

/// Stage-run status (DESIGN.md, States): `pending → running → succeeded | retrying | failed`.
public enum StageRunStatus: String, Sendable, Codable {
    case pending, running, succeeded, retrying, failed
}

/// Writes that the pipeline runtime makes about stage runs and document status. The runtime calls these
/// inside the same transaction as the stage's own results, so a stage run is `succeeded` exactly when its
/// results are committed.
public struct StageRunRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    /// Stage runs among `documentIDs` that already succeeded for `stage` (redelivered or duplicated jobs).
    public func succeeded(stage: String, documentIDs: [UUID], orgIDs: [UUID], on connection: PostgresConnection) async throws -> Set<UUID> {
        let rows = try await connection.query(
            """
            SELECT r.document_id FROM stage_runs r
            JOIN unnest(\(documentIDs)::uuid[], \(orgIDs)::uuid[]) AS j(document_id, org_id)
              ON r.document_id = j.document_id AND r.org_id = j.org_id
            WHERE r.stage = \(stage) AND r.status = 'succeeded'
            """, logger: logger)
        var done = Set<UUID>()
        for try await id in rows.decode(UUID.self) { done.insert(id) }
        return done
    }

    /// Takes each document's lock for `stage` until the end of the transaction (in id order) and returns
    /// the documents whose run of `stage` has succeeded meanwhile. Two copies of one job (a redelivered job
    /// and the copy its re-publishing made) can both pass the check before either commits; the second then
    /// waits here for the first and must not write again: rewriting chunks after the index stage ran would
    /// drop the document's postings.
    public func claim(stage: String, documentIDs: [UUID], on connection: PostgresConnection) async throws -> Set<UUID> {
        if documentIDs.isEmpty { return [] }
        try await connection.query(
            """
            SELECT pg_advisory_xact_lock(hashtextextended(s.id::text || ':' || \(stage), 0))
            FROM (SELECT DISTINCT id FROM unnest(\(documentIDs)::uuid[]) AS u(id) ORDER BY id) s
            """, logger: logger)
        let rows = try await connection.query(
            """
            SELECT document_id FROM stage_runs
            WHERE stage = \(stage) AND document_id = ANY(\(documentIDs)::uuid[]) AND status = 'succeeded'
            """, logger: logger)
        var done = Set<UUID>()
        for try await id in rows.decode(UUID.self) { done.insert(id) }
        return done
    }

    /// Marks the stage runs `succeeded` and moves their documents to `processing`, or to `succeeded` when
    /// this was the pipeline's last stage.
    public func markSucceeded(
        stage: String, documentIDs: [UUID], orgIDs: [UUID], attempts: [Int], startedAt: Date, isLastStage: Bool,
        on connection: PostgresConnection
    ) async throws {
        if documentIDs.isEmpty { return }
        let attempts32 = attempts.map { Int32($0) }
        try await connection.query(
            """
            INSERT INTO stage_runs (document_id, stage, org_id, status, attempts, started_at, finished_at, error)
            SELECT j.document_id, \(stage), j.org_id, 'succeeded', j.attempt, \(startedAt), now(), NULL
            FROM unnest(\(documentIDs)::uuid[], \(orgIDs)::uuid[], \(attempts32)::int[]) AS j(document_id, org_id, attempt)
            ON CONFLICT (document_id, stage) DO UPDATE
              SET status = 'succeeded', attempts = EXCLUDED.attempts, started_at = coalesce(stage_runs.started_at, EXCLUDED.started_at),
                  finished_at = now(), error = NULL
            """, logger: logger)
        let status = isLastStage ? DocumentStatus.succeeded.rawValue : DocumentStatus.processing.rawValue
        let rows = try await connection.query(
            """
            UPDATE documents SET status = \(status), error = NULL, failed_stage = NULL, updated_at = now()
            WHERE id IN (
                -- Rows are locked in id order, as every batch update of documents does, so concurrent
                -- batches (workers, the importer) never deadlock on each other. NO KEY UPDATE, as a plain
                -- UPDATE takes, leaves the KEY SHARE locks of foreign-key checks (pages, chunks) unblocked.
                SELECT d.id FROM documents d
                JOIN unnest(\(documentIDs)::uuid[], \(orgIDs)::uuid[]) AS j(document_id, org_id)
                  ON d.id = j.document_id AND d.org_id = j.org_id
                -- An earlier stage never moves a finished document back to `processing`.
                WHERE d.status <> 'failed' AND (\(isLastStage) OR d.status <> 'succeeded')
                ORDER BY d.id FOR NO KEY UPDATE OF d
            )
            \(unescaped: isLastStage ? "RETURNING id, org_id" : "")
            """, logger: logger)
        guard isLastStage else { return }
        var finished: [(UUID, UUID)] = []
        for try await pair in rows.decode((UUID, UUID).self) { finished.append(pair) }
        // In this transaction: the workflows of `document.processed` see every finished document once.
        try await WorkflowRepository.recordEvents(
            "document.processed", documentIDs: finished.map(\.0), orgIDs: finished.map(\.1), on: connection, logger: logger)
    }

    /// Records a transient failure that will be retried.
    public func markRetrying(stage: String, documentID: UUID, orgID: UUID, attempt: Int, error: String, on connection: PostgresConnection) async throws {
        try await upsert(stage: stage, documentID: documentID, orgID: orgID, status: .retrying, attempt: attempt, error: error, on: connection)
    }

    /// Records a permanent failure: the stage run and the document are `failed` with the reason.
    public func markFailed(stage: String, documentID: UUID, orgID: UUID, attempt: Int, error: String, on connection: PostgresConnection) async throws {
        try await upsert(stage: stage, documentID: documentID, orgID: orgID, status: .failed, attempt: attempt, error: error, on: connection)
        try await connection.query(
            """
            UPDATE documents SET status = 'failed', error = \(error), failed_stage = \(stage), updated_at = now()
            WHERE id = \(documentID) AND org_id = \(orgID)
            """, logger: logger)
        try await WorkflowRepository.recordEvents("document.failed", documentIDs: [documentID], orgIDs: [orgID], on: connection, logger: logger)
    }

    /// Returns a failed document to `queued` before a dead letter is replayed.
    public func requeue(stage: String, documentID: UUID, orgID: UUID, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            UPDATE stage_runs SET status = 'pending', error = NULL
            WHERE document_id = \(documentID) AND org_id = \(orgID) AND stage = \(stage) AND status <> 'succeeded'
            """, logger: logger)
        try await connection.query(
            """
            UPDATE documents SET status = 'queued', error = NULL, failed_stage = NULL, updated_at = now()
            WHERE id = \(documentID) AND org_id = \(orgID) AND status = 'failed'
            """, logger: logger)
    }

    private func upsert(
        stage: String, documentID: UUID, orgID: UUID, status: StageRunStatus, attempt: Int, error: String?,
        on connection: PostgresConnection
    ) async throws {
        try await connection.query(
            """
            INSERT INTO stage_runs (document_id, stage, org_id, status, attempts, started_at, finished_at, error)
            VALUES (\(documentID), \(stage), \(orgID), \(status.rawValue), \(Int32(attempt)), now(), now(), \(error))
            ON CONFLICT (document_id, stage) DO UPDATE
              SET status = EXCLUDED.status, attempts = EXCLUDED.attempts, finished_at = now(), error = EXCLUDED.error
            WHERE stage_runs.status <> 'succeeded'
            """, logger: logger)
    }
}

/// Recent stage durations across all organisations (operators' view, `intellidocs queues --watch`).
public struct StageTimings: Sendable, Equatable {
    public let stage: String
    public let p50: Double
    public let p95: Double
    public let count: Int

    /// p50/p95 of `finished_at - started_at` over the latest `sample` stage runs that succeeded in the last
    /// `window`. The sample bounds the cost: during a bulk import the window holds tens of thousands of runs,
    /// and a watcher asks every few seconds while the import runs.
    public static func recent(window: Duration = .seconds(300), sample: Int = 3000, database: Database) async throws -> [String: StageTimings] {
        let seconds = Double(window.components.seconds)
        let rows = try await database.client.query(
            """
            SELECT stage,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))::float8,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at))::float8,
                   count(*)
            FROM (
                SELECT stage, started_at, finished_at FROM stage_runs
                WHERE status = 'succeeded' AND finished_at > now() - make_interval(secs => \(seconds))
                ORDER BY finished_at DESC LIMIT \(sample)
            ) latest
            GROUP BY stage
            """, logger: database.logger)
        var timings: [String: StageTimings] = [:]
        for try await (stage, p50, p95, count) in rows.decode((String, Double, Double, Int).self) {
            timings[stage] = StageTimings(stage: stage, p50: p50, p95: p95, count: count)
        }
        return timings
    }
}
