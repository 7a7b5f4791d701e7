public import Foundation
public import Logging
public import PostgresNIO

/// What presenting a refresh token led to.
public enum RefreshOutcome: Sendable, Equatable {
    /// The token was valid and is now rotated: the new token (already stored) replaces it.
    case rotated(userID: UUID, sessionID: UUID)
    /// The token had already been rotated: someone replayed it. The whole session (the token family)
    /// has been revoked; the caller must commit, then refuse.
    case reused(userID: UUID, sessionID: UUID)
    /// Unknown, expired, or its session was revoked.
    case invalid
}

/// Login sessions and their refresh tokens (one aggregate: a session is the family of tokens issued from
/// one login). Tokens are stored as SHA-256 hashes only; the caller hashes what the client presents.
public struct RefreshTokenRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    /// Starts a session with its first refresh token; returns the session id.
    public func startSession(userID: UUID, tokenHash: String, expiresAt: Date, on connection: PostgresConnection) async throws -> UUID {
        let sessionID = UUID()
        try await connection.query(
            "INSERT INTO auth_sessions (id, user_id) VALUES (\(sessionID), \(userID))", logger: logger)
        try await connection.query(
            """
            INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at)
            VALUES (\(UUID()), \(sessionID), \(tokenHash), \(expiresAt))
            """, logger: logger)
        return sessionID
    }

    /// Exchanges the token hashed as `tokenHash` for the new one hashed as `newTokenHash`. Reuse of a
    /// rotated token revokes the session. Row locks make two concurrent exchanges of one token end in one
    /// rotation and one detected reuse.
    public func rotate(tokenHash: String, newTokenHash: String, newExpiresAt: Date, on connection: PostgresConnection) async throws -> RefreshOutcome {
        let rows = try await connection.query(
            """
            SELECT t.id, t.session_id, s.user_id, t.expires_at < now(), t.rotated_at IS NOT NULL, s.revoked_at IS NOT NULL
            FROM refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id
            WHERE t.token_hash = \(tokenHash)
            FOR UPDATE OF t, s
            """, logger: logger)
        var found: (UUID, UUID, UUID, Bool, Bool, Bool)?
        for try await row in rows.decode((UUID, UUID, UUID, Bool, Bool, Bool).self) { found = row }
        guard let (tokenID, sessionID, userID, expired, rotated, revoked) = found else { return .invalid }
        if revoked { return .invalid }
        if rotated {
            try await revokeSession(sessionID, reason: "refresh_token_reuse", on: connection)
            return .reused(userID: userID, sessionID: sessionID)
        }
        if expired { return .invalid }
        try await connection.query("UPDATE refresh_tokens SET rotated_at = now() WHERE id = \(tokenID)", logger: logger)
        try await connection.query(
            """
            INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at)
            VALUES (\(UUID()), \(sessionID), \(newTokenHash), \(newExpiresAt))
            """, logger: logger)
        return .rotated(userID: userID, sessionID: sessionID)
    }

    /// Ends the session that the token belongs to (logout). Returns its user and session, or nil for an
    /// unknown token or a session already ended.
    public func revokeSession(tokenHash: String, reason: String, on connection: PostgresConnection) async throws -> (userID: UUID, sessionID: UUID)? {
        let rows = try await connection.query(
            """
            UPDATE auth_sessions s SET revoked_at = now(), revoke_reason = \(reason)
            FROM refresh_tokens t
            WHERE t.token_hash = \(tokenHash) AND s.id = t.session_id AND s.revoked_at IS NULL
            RETURNING s.user_id, s.id
            """, logger: logger)
        for try await (userID, sessionID) in rows.decode((UUID, UUID).self) { return (userID, sessionID) }
        return nil
    }

    public func revokeSession(_ sessionID: UUID, reason: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            UPDATE auth_sessions SET revoked_at = now(), revoke_reason = \(reason)
            WHERE id = \(sessionID) AND revoked_at IS NULL
            """, logger: logger)
    }

    /// Ends every session of the user but `keeping` (after a password change).
    public func revokeSessions(userID: UUID, keeping: UUID?, reason: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            UPDATE auth_sessions SET revoked_at = now(), revoke_reason = \(reason)
            WHERE user_id = \(userID) AND revoked_at IS NULL AND (\(keeping)::uuid IS NULL OR id <> \(keeping))
            """, logger: logger)
    }

    /// The user behind an access token, if the token's session is still live.
    public func activeUser(userID: UUID, sessionID: UUID, on connection: PostgresConnection) async throws -> UserRecord? {
        let rows = try await connection.query(
            """
            SELECT \(unescaped: UserRepository.columns.split(separator: ",").map { "u." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", "))
            FROM users u JOIN auth_sessions s ON s.user_id = u.id
            WHERE u.id = \(userID) AND s.id = \(sessionID) AND s.revoked_at IS NULL
            """, logger: logger)
        for try await row in rows { return try UserRepository.decode(row) }
        return nil
    }
}
