public import Foundation
public import Logging
public import PostgresNIO

/// Amounts of metered usage, added to an organisation's counters for the current period.
public struct UsageDelta: Sendable, Equatable {
    public var documents: Int
    public var pages: Int
    public var chunks: Int
    public var searches: Int
    public var storageBytes: Int

    public init(documents: Int = 0, pages: Int = 0, chunks: Int = 0, searches: Int = 0, storageBytes: Int = 0) {
        self.documents = documents
        self.pages = pages
        self.chunks = chunks
        self.searches = searches
        self.storageBytes = storageBytes
    }
}

/// An organisation's usage in the current period (a calendar month, UTC) and its stored bytes now.
public struct UsageSnapshot: Sendable, Equatable {
    public let periodStart: Date
    public let periodEnd: Date
    public let documents: Int
    public let pages: Int
    public let chunks: Int
    public let searches: Int
    /// Bytes stored during the period.
    public let storageBytesAdded: Int
    /// Bytes stored now (the storage limit's usage).
    public let storageBytes: Int
}

/// Per-organisation, per-period usage counters, and the running storage total.
///
/// Limits are enforced inside the increment: one conditional `UPDATE` per counter row, so of two
/// concurrent transactions asking for the last unit the second re-reads the row after the first commits
/// and fails its condition (PostgreSQL's read-committed re-check of updated rows).
public struct UsageRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    static let period = "date_trunc('month', now() AT TIME ZONE 'UTC')::date"

    public func snapshot(orgID: UUID, on connection: PostgresConnection) async throws -> UsageSnapshot {
        let rows = try await connection.query(
            """
            SELECT (p.period::timestamp AT TIME ZONE 'UTC'), ((p.period + interval '1 month')::timestamp AT TIME ZONE 'UTC'),
                   coalesce(u.documents, 0), coalesce(u.pages, 0), coalesce(u.chunks, 0), coalesce(u.searches, 0),
                   coalesce(u.storage_bytes, 0), coalesce((SELECT bytes FROM org_storage WHERE org_id = \(orgID)), 0)
            FROM (SELECT \(unescaped: Self.period) AS period) p
            LEFT JOIN usage_counters u ON u.org_id = \(orgID) AND u.period = p.period
            """, logger: logger)
        for try await (start, end, documents, pages, chunks, searches, added, stored) in rows.decode(
            (Date, Date, Int, Int, Int, Int, Int, Int).self)
        {
            return UsageSnapshot(
                periodStart: start, periodEnd: end, documents: documents, pages: pages, chunks: chunks, searches: searches,
                storageBytesAdded: added, storageBytes: stored)
        }
        throw StorageError(code: .query, message: "reading usage returned no row")
    }

    /// Adds `delta` without checking limits (metering by the pipeline stages).
    public func record(_ delta: UsageDelta, orgID: UUID, on connection: PostgresConnection) async throws {
        _ = try await increment(delta, orgID: orgID, documentsLimit: nil, pagesLimit: nil, storageLimit: nil, on: connection)
    }

    /// Adds `delta` if the monthly document and page limits and the storage limit allow it (nil: no
    /// limit). Returns the limit that refused, or nil when the usage was added. On a refusal nothing was
    /// added by this call, but the caller should still roll back its transaction.
    public func increment(
        _ delta: UsageDelta, orgID: UUID, documentsLimit: Int?, pagesLimit: Int?, storageLimit: Int?,
        on connection: PostgresConnection
    ) async throws -> LimitName? {
        try await connection.query(
            """
            INSERT INTO usage_counters (org_id, period) VALUES (\(orgID), \(unescaped: Self.period))
            ON CONFLICT (org_id, period) DO NOTHING
            """, logger: logger)
        let rows = try await connection.query(
            """
            UPDATE usage_counters
            SET documents = documents + \(delta.documents), pages = pages + \(delta.pages), chunks = chunks + \(delta.chunks),
                searches = searches + \(delta.searches), storage_bytes = storage_bytes + \(max(delta.storageBytes, 0))
            WHERE org_id = \(orgID) AND period = \(unescaped: Self.period)
              AND (\(delta.documents) <= 0 OR \(documentsLimit)::int8 IS NULL OR documents + \(delta.documents) <= \(documentsLimit))
              AND (\(delta.pages) <= 0 OR \(pagesLimit)::int8 IS NULL OR pages + \(delta.pages) <= \(pagesLimit))
            RETURNING documents, pages
            """, logger: logger)
        var updated = false
        for try await _ in rows { updated = true }
        if !updated {
            let snapshot = try await snapshot(orgID: orgID, on: connection)
            if delta.documents > 0, let documentsLimit, snapshot.documents + delta.documents > documentsLimit {
                return .documentsPerMonth
            }
            return .pagesPerMonth
        }
        if delta.storageBytes != 0 {
            try await connection.query(
                "INSERT INTO org_storage (org_id) VALUES (\(orgID)) ON CONFLICT (org_id) DO NOTHING", logger: logger)
            let stored = try await connection.query(
                """
                UPDATE org_storage SET bytes = greatest(bytes + \(delta.storageBytes), 0)
                WHERE org_id = \(orgID) AND (\(delta.storageBytes) <= 0 OR \(storageLimit)::int8 IS NULL OR bytes + \(delta.storageBytes) <= \(storageLimit))
                RETURNING bytes
                """, logger: logger)
            var storedOK = false
            for try await _ in stored { storedOK = true }
            if !storedOK { return .storageBytes }
        }
        return nil
    }
}
