public import Foundation
public import Logging
public import PostgresNIO

/// Time buckets of the usage series.
public enum AnalyticsBucket: String, Sendable, CaseIterable {
    case hour, day, month
}

/// One bucket of an organisation's usage: what was added in it, and the bytes stored at its end.
public struct UsagePoint: Sendable, Equatable {
    public let start: Date
    public let documents: Int
    public let pages: Int
    public let chunks: Int
    public let searches: Int
    public let storageBytes: Int
}

/// One stage's work for an organisation over a window.
public struct StageAnalytics: Sendable, Equatable {
    public let stage: String
    public let processed: Int
    public let failed: Int
    /// Runs that needed more than one attempt.
    public let retried: Int
    /// Failed runs are the ones parked in the stage's dead-letter queue.
    public let deadLettered: Int
    public let p50Ms: Double?
    public let p95Ms: Double?
    public let perMinute: Double
}

public struct QueryCount: Sendable, Equatable {
    public let query: String
    public let count: Int
}

/// Read-only figures for `GET /v1/orgs/{org}/analytics/…`, computed from the rows the pipeline and the
/// API write anyway (documents, stage runs, chunks, the search log), always within one organisation.
public struct AnalyticsRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    /// Documents registered, pages and chunks produced (when their stage finished) and searches made per
    /// bucket, with the stored bytes at the end of each bucket; empty buckets included.
    public func usage(orgID: UUID, from: Date, to: Date, bucket: AnalyticsBucket, on connection: PostgresConnection) async throws -> [UsagePoint] {
        let unit = bucket.rawValue
        let rows = try await connection.query(
            """
            WITH buckets AS (
                SELECT generate_series(date_trunc(\(unit), \(from)::timestamptz AT TIME ZONE 'UTC'),
                                       date_trunc(\(unit), \(to)::timestamptz AT TIME ZONE 'UTC'),
                                       ('1 ' || \(unit))::interval) AS start
            ),
            documents_added AS (
                SELECT date_trunc(\(unit), created_at AT TIME ZONE 'UTC') AS start, count(*) AS n, sum(size_bytes) AS bytes
                FROM documents WHERE org_id = \(orgID) AND created_at >= \(from) AND created_at < \(to) GROUP BY 1
            ),
            pages_added AS (
                SELECT date_trunc(\(unit), r.finished_at AT TIME ZONE 'UTC') AS start, sum(coalesce(d.page_count, 0)) AS n
                FROM stage_runs r JOIN documents d ON d.id = r.document_id
                WHERE r.org_id = \(orgID) AND r.stage = 'ingest' AND r.status = 'succeeded' AND r.finished_at >= \(from) AND r.finished_at < \(to)
                GROUP BY 1
            ),
            chunks_added AS (
                SELECT date_trunc(\(unit), r.finished_at AT TIME ZONE 'UTC') AS start, count(c.chunk_index) AS n
                FROM stage_runs r JOIN chunks c ON c.document_id = r.document_id
                WHERE r.org_id = \(orgID) AND r.stage = 'chunk' AND r.status = 'succeeded' AND r.finished_at >= \(from) AND r.finished_at < \(to)
                GROUP BY 1
            ),
            searches AS (
                SELECT date_trunc(\(unit), created_at AT TIME ZONE 'UTC') AS start, count(*) AS n
                FROM search_log WHERE org_id = \(orgID) AND created_at >= \(from) AND created_at < \(to) GROUP BY 1
            ),
            stored_before AS (
                SELECT coalesce(sum(size_bytes), 0) AS bytes FROM documents WHERE org_id = \(orgID) AND created_at < \(from)
            )
            SELECT b.start AT TIME ZONE 'UTC', coalesce(da.n, 0)::int8, coalesce(pa.n, 0)::int8, coalesce(ca.n, 0)::int8,
                   coalesce(s.n, 0)::int8,
                   ((SELECT bytes FROM stored_before) + sum(coalesce(da.bytes, 0)) OVER (ORDER BY b.start))::int8
            FROM buckets b
            LEFT JOIN documents_added da ON da.start = b.start
            LEFT JOIN pages_added pa ON pa.start = b.start
            LEFT JOIN chunks_added ca ON ca.start = b.start
            LEFT JOIN searches s ON s.start = b.start
            ORDER BY b.start
            """, logger: logger)
        var points: [UsagePoint] = []
        for try await (start, documents, pages, chunks, searches, stored) in rows.decode((Date, Int, Int, Int, Int, Int).self) {
            points.append(UsagePoint(start: start, documents: documents, pages: pages, chunks: chunks, searches: searches, storageBytes: stored))
        }
        return points
    }

    /// Per stage, the runs that finished in the window.
    public func pipeline(orgID: UUID, from: Date, to: Date, on connection: PostgresConnection) async throws -> [StageAnalytics] {
        let minutes = max(to.timeIntervalSince(from) / 60, 1 / 60)
        let rows = try await connection.query(
            """
            SELECT stage,
                   count(*) FILTER (WHERE status = 'succeeded')::int8,
                   count(*) FILTER (WHERE status = 'failed')::int8,
                   count(*) FILTER (WHERE attempts > 1)::int8,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at) * 1000)
                       FILTER (WHERE status = 'succeeded' AND started_at IS NOT NULL),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at) * 1000)
                       FILTER (WHERE status = 'succeeded' AND started_at IS NOT NULL)
            FROM stage_runs
            WHERE org_id = \(orgID) AND finished_at >= \(from) AND finished_at < \(to)
            GROUP BY stage
            """, logger: logger)
        var stages: [StageAnalytics] = []
        for try await (stage, processed, failed, retried, p50, p95) in rows.decode((String, Int, Int, Int, Double?, Double?).self) {
            stages.append(StageAnalytics(
                stage: stage, processed: processed, failed: failed, retried: retried, deadLettered: failed,
                p50Ms: p50.map { ($0 * 10).rounded() / 10 }, p95Ms: p95.map { ($0 * 10).rounded() / 10 },
                perMinute: (Double(processed) / minutes * 100).rounded() / 100))
        }
        return stages
    }

    /// The most frequent queries (case and spacing folded), and the most frequent ones that found nothing.
    public func searches(orgID: UUID, from: Date, to: Date, limit: Int, on connection: PostgresConnection) async throws -> (total: Int, top: [QueryCount], noResults: [QueryCount]) {
        func counts(emptyOnly: Bool) async throws -> [QueryCount] {
            let rows = try await connection.query(
                """
                SELECT lower(regexp_replace(btrim(query), '\\s+', ' ', 'g')) AS q, count(*)::int8 FROM search_log
                WHERE org_id = \(orgID) AND created_at >= \(from) AND created_at < \(to) AND (NOT \(emptyOnly) OR results = 0)
                GROUP BY q ORDER BY count(*) DESC, q LIMIT \(limit)
                """, logger: logger)
            var found: [QueryCount] = []
            for try await (query, count) in rows.decode((String, Int).self) { found.append(QueryCount(query: query, count: count)) }
            return found
        }
        let totals = try await connection.query(
            "SELECT count(*)::int8 FROM search_log WHERE org_id = \(orgID) AND created_at >= \(from) AND created_at < \(to)", logger: logger)
        var total = 0
        for try await count in totals.decode(Int.self) { total = count }
        return (total, try await counts(emptyOnly: false), try await counts(emptyOnly: true))
    }

    /// Records one search (the API's search route).
    public func logSearch(orgID: UUID, query: String, mode: String, results: Int, latencyMs: Int, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO search_log (org_id, query, mode, results, latency_ms)
            VALUES (\(orgID), \(String(query.prefix(500))), \(mode), \(results), \(latencyMs))
            """, logger: logger)
    }
}
