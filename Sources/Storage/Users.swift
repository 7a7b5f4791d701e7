public import Foundation
public import Logging
public import PostgresNIO

/// A person who can log in. The password hash never leaves Storage except to the verifier.
public struct UserRecord: Sendable, Equatable, Codable {
    public let id: UUID
    /// Lower-cased.
    public let email: String
    public let name: String
    public let isPlatformAdmin: Bool
    public let createdAt: Date
}

/// Users by id or e-mail address. Users are global (not organisation-scoped): what they may see is
/// decided by their memberships.
public struct UserRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    static let columns = "id, email, name, is_platform_admin, created_at"

    /// Creates a user; a taken address is a `conflict` error.
    public func create(email: String, name: String, passwordHash: String, on connection: PostgresConnection) async throws -> UserRecord {
        let id = UUID()
        let rows = try await connection.query(
            """
            INSERT INTO users (id, email, name, password_hash) VALUES (\(id), \(email.lowercased()), \(name), \(passwordHash))
            ON CONFLICT (email) DO NOTHING
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        for try await row in rows { return try Self.decode(row) }
        throw StorageError(code: .conflict, message: "a user with this e-mail address already exists")
    }

    public func find(id: UUID, on connection: PostgresConnection) async throws -> UserRecord? {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.columns) FROM users WHERE id = \(id)", logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    public func find(email: String, on connection: PostgresConnection) async throws -> UserRecord? {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.columns) FROM users WHERE email = \(email.lowercased())", logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    /// The user and the stored password hash, for verifying a login.
    public func credentials(email: String, on connection: PostgresConnection) async throws -> (user: UserRecord, passwordHash: String)? {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.columns), password_hash FROM users WHERE email = \(email.lowercased())", logger: logger)
        for try await (id, email, name, admin, created, hash) in rows.decode((UUID, String, String, Bool, Date, String).self) {
            return (UserRecord(id: id, email: email, name: name, isPlatformAdmin: admin, createdAt: created), hash)
        }
        return nil
    }

    public func passwordHash(id: UUID, on connection: PostgresConnection) async throws -> String? {
        let rows = try await connection.query("SELECT password_hash FROM users WHERE id = \(id)", logger: logger)
        for try await hash in rows.decode(String.self) { return hash }
        return nil
    }

    /// Changes the name and/or the password hash; nil leaves a value as it is.
    public func update(id: UUID, name: String?, passwordHash: String?, on connection: PostgresConnection) async throws -> UserRecord? {
        let rows = try await connection.query(
            """
            UPDATE users SET name = coalesce(\(name), name), password_hash = coalesce(\(passwordHash), password_hash),
                             updated_at = now()
            WHERE id = \(id)
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    /// Grants or withdraws the platform-admin flag (`intellidocs admin grant EMAIL`).
    public func setPlatformAdmin(email: String, _ isAdmin: Bool, on connection: PostgresConnection) async throws -> UserRecord? {
        let rows = try await connection.query(
            """
            UPDATE users SET is_platform_admin = \(isAdmin), updated_at = now() WHERE email = \(email.lowercased())
            RETURNING \(unescaped: Self.columns)
            """, logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    static func decode(_ row: PostgresRow) throws -> UserRecord {
        let (id, email, name, admin, created) = try row.decode((UUID, String, String, Bool, Date).self)
        return UserRecord(id: id, email: email, name: name, isPlatformAdmin: admin, createdAt: created)
    }
}
