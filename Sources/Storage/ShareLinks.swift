public import Foundation
public import Logging
public import PostgresNIO

/// A public link to one document (0007).
public struct ShareLinkRecord: Sendable, Equatable {
    public let id: UUID
    public let orgID: UUID
    public let documentID: UUID
    public let expiresAt: Date
    public let passwordHash: String?
    public let maxViews: Int?
    public let views: Int
    public let allowDownload: Bool
    public let createdBy: UUID?
    public let createdAt: Date
    public let revokedAt: Date?

    /// Why the link no longer answers, or nil while it does.
    public func closedReason(now: Date = Date()) -> String? {
        if revokedAt != nil { return "the link was revoked" }
        if expiresAt <= now { return "the link expired" }
        if let maxViews, views >= maxViews { return "the link reached its \(maxViews) views" }
        return nil
    }
}

/// Share links of one organisation; the public side finds a link by the SHA-256 of its token only.
public struct ShareLinkRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    static let columns =
        "id, org_id, document_id, expires_at, password_hash, max_views, views, allow_download, created_by, created_at, revoked_at"

    public func create(
        orgID: UUID, documentID: UUID, tokenHash: String, expiresAt: Date, passwordHash: String?, maxViews: Int?, allowDownload: Bool,
        createdBy: UUID?, on connection: PostgresConnection
    ) async throws -> ShareLinkRecord {
        let rows = try await connection.query(
            """
            INSERT INTO share_links (id, org_id, document_id, token_hash, expires_at, password_hash, max_views, allow_download, created_by)
            VALUES (\(UUID()), \(orgID), \(documentID), \(tokenHash), \(expiresAt), \(passwordHash), \(maxViews), \(allowDownload), \(createdBy))
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        for try await row in rows { return try Self.decode(row) }
        throw StorageError(code: .query, message: "creating the share link returned no row")
    }

    public func list(orgID: UUID, on connection: PostgresConnection) async throws -> [ShareLinkRecord] {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.columns) FROM share_links WHERE org_id = \(orgID) ORDER BY created_at DESC, id LIMIT 1000",
            logger: logger)
        var links: [ShareLinkRecord] = []
        for try await row in rows { links.append(try Self.decode(row)) }
        return links
    }

    public func get(_ id: UUID, orgID: UUID, on connection: PostgresConnection) async throws -> ShareLinkRecord? {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.columns) FROM share_links WHERE id = \(id) AND org_id = \(orgID)", logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    /// The link a token names (by its hash), whatever its state.
    public func find(tokenHash: String, on connection: PostgresConnection) async throws -> ShareLinkRecord? {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.columns) FROM share_links WHERE token_hash = \(tokenHash)", logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    /// Changes expiry, password and view limit (each only when given; `clearPassword` removes it).
    public func update(
        _ id: UUID, orgID: UUID, expiresAt: Date?, passwordHash: String?, clearPassword: Bool, maxViews: Int??,
        on connection: PostgresConnection
    ) async throws -> ShareLinkRecord? {
        let setMaxViews = maxViews != nil
        let rows = try await connection.query(
            """
            UPDATE share_links SET
                expires_at = coalesce(\(expiresAt), expires_at),
                password_hash = CASE WHEN \(clearPassword) THEN NULL ELSE coalesce(\(passwordHash), password_hash) END,
                max_views = CASE WHEN \(setMaxViews) THEN \(maxViews.flatMap { $0 })::int ELSE max_views END
            WHERE id = \(id) AND org_id = \(orgID) AND revoked_at IS NULL
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    public func revoke(_ id: UUID, orgID: UUID, on connection: PostgresConnection) async throws -> ShareLinkRecord? {
        let rows = try await connection.query(
            """
            UPDATE share_links SET revoked_at = coalesce(revoked_at, now()) WHERE id = \(id) AND org_id = \(orgID)
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    /// Counts one view if the link still answers (not revoked, not expired, views left): one conditional
    /// update, so concurrent views cannot pass `max_views`. Nil when it no longer answers.
    public func countView(_ id: UUID, on connection: PostgresConnection) async throws -> ShareLinkRecord? {
        let rows = try await connection.query(
            """
            UPDATE share_links SET views = views + 1
            WHERE id = \(id) AND revoked_at IS NULL AND expires_at > now() AND (max_views IS NULL OR views < max_views)
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    static func decode(_ row: PostgresRow) throws -> ShareLinkRecord {
        let (id, org, document, expires, password, maxViews, views, download, createdBy, created, revoked) = try row.decode(
            (UUID, UUID, UUID, Date, String?, Int?, Int, Bool, UUID?, Date, Date?).self)
        return ShareLinkRecord(
            id: id, orgID: org, documentID: document, expiresAt: expires, passwordHash: password, maxViews: maxViews, views: views,
            allowDownload: download, createdBy: createdBy, createdAt: created, revokedAt: revoked)
    }
}
