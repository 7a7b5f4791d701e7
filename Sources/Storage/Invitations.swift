public import Foundation
public import Logging
public import PostgresNIO

/// An invitation to join an organisation. Its token is stored as a SHA-256 hash only.
public struct InvitationRecord: Sendable, Equatable {
    public let id: UUID
    public let orgID: UUID
    public let email: String
    public let role: MemberRole
    public let invitedBy: UUID?
    public let createdAt: Date
    public let expiresAt: Date
    public let acceptedAt: Date?
    public let revokedAt: Date?

    /// Neither accepted, revoked nor expired (at `now`).
    public func isOpen(at now: Date) -> Bool { acceptedAt == nil && revokedAt == nil && expiresAt > now }
}

/// Invitations of one organisation.
public struct InvitationRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    static let columns = "id, org_id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at"

    public func create(
        orgID: UUID, email: String, role: MemberRole, tokenHash: String, invitedBy: UUID?, expiresAt: Date,
        on connection: PostgresConnection
    ) async throws -> InvitationRecord {
        let rows = try await connection.query(
            """
            INSERT INTO invitations (id, org_id, email, role, token_hash, invited_by, expires_at)
            VALUES (\(UUID()), \(orgID), \(email.lowercased()), \(role.rawValue), \(tokenHash), \(invitedBy), \(expiresAt))
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        for try await row in rows { return try Self.decode(row) }
        throw StorageError(code: .query, message: "inserting an invitation returned no row")
    }

    /// Open invitations of the organisation, newest first.
    public func open(orgID: UUID, on connection: PostgresConnection) async throws -> [InvitationRecord] {
        let rows = try await connection.query(
            """
            SELECT \(unescaped: Self.columns) FROM invitations
            WHERE org_id = \(orgID) AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
            ORDER BY created_at DESC
            """, logger: logger)
        var result: [InvitationRecord] = []
        for try await row in rows { result.append(try Self.decode(row)) }
        return result
    }

    /// The invitation a token stands for, locked until the end of the transaction (accepting it).
    public func lockByToken(tokenHash: String, on connection: PostgresConnection) async throws -> InvitationRecord? {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.columns) FROM invitations WHERE token_hash = \(tokenHash) FOR UPDATE", logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    public func markAccepted(id: UUID, orgID: UUID, by userID: UUID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE invitations SET accepted_at = now(), accepted_by = \(userID) WHERE id = \(id) AND org_id = \(orgID)",
            logger: logger)
    }

    /// Revokes an open invitation of the organisation; nil when there is none with this id.
    public func revoke(orgID: UUID, id: UUID, on connection: PostgresConnection) async throws -> InvitationRecord? {
        let rows = try await connection.query(
            """
            UPDATE invitations SET revoked_at = now()
            WHERE org_id = \(orgID) AND id = \(id) AND accepted_at IS NULL AND revoked_at IS NULL
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    static func decode(_ row: PostgresRow) throws -> InvitationRecord {
        let (id, org, email, role, inviter, created, expires, accepted, revoked) = try row.decode(
            (UUID, UUID, String, String, UUID?, Date, Date, Date?, Date?).self)
        return InvitationRecord(
            id: id, orgID: org, email: email, role: MemberRole(rawValue: role) ?? .viewer, invitedBy: inviter,
            createdAt: created, expiresAt: expires, acceptedAt: accepted, revokedAt: revoked)
    }
}
