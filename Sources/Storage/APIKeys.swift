public import Foundation
public import Logging
public import PostgresNIO

/// An organisation's API key as it may be shown: the prefix, never the secret.
public struct APIKeyRecord: Sendable, Equatable {
    public let id: UUID
    public let orgID: UUID
    public let name: String
    /// The visible start of the key (`idk_…`), unique.
    public let prefix: String
    public let scopes: [String]
    public let createdBy: UUID?
    public let createdAt: Date
    public let lastUsedAt: Date?
    public let revokedAt: Date?
}

/// API keys of one organisation. The secret is stored as a SHA-256 hash; a key is found by its prefix
/// and then compared by hash.
public struct APIKeyRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    static let columns = "id, org_id, name, prefix, scopes, created_by, created_at, last_used_at, revoked_at"

    public func create(
        orgID: UUID, createdBy: UUID?, name: String, prefix: String, secretHash: String, scopes: [String],
        on connection: PostgresConnection
    ) async throws -> APIKeyRecord {
        let rows = try await connection.query(
            """
            INSERT INTO api_keys (id, org_id, created_by, name, prefix, secret_hash, scopes)
            VALUES (\(UUID()), \(orgID), \(createdBy), \(name), \(prefix), \(secretHash), \(scopes)::text[])
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        for try await row in rows { return try Self.decode(row) }
        throw StorageError(code: .query, message: "inserting an API key returned no row")
    }

    /// The organisation's keys, newest first, including revoked ones (with `revokedAt`).
    public func list(orgID: UUID, on connection: PostgresConnection) async throws -> [APIKeyRecord] {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.columns) FROM api_keys WHERE org_id = \(orgID) ORDER BY created_at DESC, id",
            logger: logger)
        var keys: [APIKeyRecord] = []
        for try await row in rows { keys.append(try Self.decode(row)) }
        return keys
    }

    /// Revokes a live key of the organisation; nil when there is no such live key.
    public func revoke(orgID: UUID, id: UUID, on connection: PostgresConnection) async throws -> APIKeyRecord? {
        let rows = try await connection.query(
            """
            UPDATE api_keys SET revoked_at = now() WHERE org_id = \(orgID) AND id = \(id) AND revoked_at IS NULL
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    /// A live (unrevoked) key by prefix with its stored hash, for authentication. Also notes the use
    /// (at most once a minute per key, to keep authentication cheap).
    public func live(prefix: String, on connection: PostgresConnection) async throws -> (key: APIKeyRecord, secretHash: String)? {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.columns), secret_hash FROM api_keys WHERE prefix = \(prefix) AND revoked_at IS NULL",
            logger: logger)
        var found: (APIKeyRecord, String)?
        for try await row in rows {
            let (id, org, name, prefix, scopes, creator, created, used, revoked, hash) = try row.decode(
                (UUID, UUID, String, String, [String], UUID?, Date, Date?, Date?, String).self)
            found = (APIKeyRecord(id: id, orgID: org, name: name, prefix: prefix, scopes: scopes, createdBy: creator,
                                  createdAt: created, lastUsedAt: used, revokedAt: revoked), hash)
        }
        guard let found else { return nil }
        try await connection.query(
            """
            UPDATE api_keys SET last_used_at = now()
            WHERE id = \(found.0.id) AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
            """, logger: logger)
        return found
    }

    static func decode(_ row: PostgresRow) throws -> APIKeyRecord {
        let (id, org, name, prefix, scopes, creator, created, used, revoked) = try row.decode(
            (UUID, UUID, String, String, [String], UUID?, Date, Date?, Date?).self)
        return APIKeyRecord(id: id, orgID: org, name: name, prefix: prefix, scopes: scopes, createdBy: creator,
                            createdAt: created, lastUsedAt: used, revokedAt: revoked)
    }
}
