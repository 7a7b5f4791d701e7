public import Foundation
public import Logging
public import PostgresNIO

/// A member's role in an organisation, from least to most powerful. What each may do is the permission
/// matrix in Sources/ControlPlane/Permissions.md.
public enum MemberRole: String, Sendable, Codable, CaseIterable, Comparable {
    case viewer, member, admin, owner

    var rank: Int {
        switch self {
        case .viewer: 0
        case .member: 1
        case .admin: 2
        case .owner: 3
        }
    }

    public static func < (lhs: MemberRole, rhs: MemberRole) -> Bool { lhs.rank < rhs.rank }
}

/// One member of an organisation, as the members list shows it.
public struct MemberRecord: Sendable, Equatable, Codable {
    public let userID: UUID
    public let email: String
    public let name: String
    public let role: MemberRole
    public let joinedAt: Date
}

/// An organisation a user belongs to, with the user's role.
public struct MembershipRecord: Sendable, Equatable {
    public let organization: OrganizationAccount
    public let role: MemberRole
}

/// Who belongs to which organisation, with which role. Every method takes the organisation.
public struct MembershipRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    /// Adds a member; an existing membership is a `conflict` error.
    public func add(orgID: UUID, userID: UUID, role: MemberRole, on connection: PostgresConnection) async throws {
        let rows = try await connection.query(
            """
            INSERT INTO memberships (org_id, user_id, role) VALUES (\(orgID), \(userID), \(role.rawValue))
            ON CONFLICT (org_id, user_id) DO NOTHING RETURNING user_id
            """, logger: logger)
        for try await _ in rows { return }
        throw StorageError(code: .conflict, message: "the user is already a member of the organisation")
    }

    public func role(orgID: UUID, userID: UUID, on connection: PostgresConnection) async throws -> MemberRole? {
        let rows = try await connection.query(
            "SELECT role FROM memberships WHERE org_id = \(orgID) AND user_id = \(userID)", logger: logger)
        for try await role in rows.decode(String.self) { return MemberRole(rawValue: role) }
        return nil
    }

    public func members(orgID: UUID, on connection: PostgresConnection) async throws -> [MemberRecord] {
        let rows = try await connection.query(
            """
            SELECT u.id, u.email, u.name, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id
            WHERE m.org_id = \(orgID) ORDER BY m.created_at, u.email
            """, logger: logger)
        var members: [MemberRecord] = []
        for try await (id, email, name, role, joined) in rows.decode((UUID, String, String, String, Date).self) {
            members.append(MemberRecord(userID: id, email: email, name: name, role: MemberRole(rawValue: role) ?? .viewer, joinedAt: joined))
        }
        return members
    }

    public func member(orgID: UUID, userID: UUID, on connection: PostgresConnection) async throws -> MemberRecord? {
        let rows = try await connection.query(
            """
            SELECT u.id, u.email, u.name, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id
            WHERE m.org_id = \(orgID) AND m.user_id = \(userID)
            """, logger: logger)
        for try await (id, email, name, role, joined) in rows.decode((UUID, String, String, String, Date).self) {
            return MemberRecord(userID: id, email: email, name: name, role: MemberRole(rawValue: role) ?? .viewer, joinedAt: joined)
        }
        return nil
    }

    /// Number of members (seats in use).
    public func count(orgID: UUID, on connection: PostgresConnection) async throws -> Int {
        let rows = try await connection.query("SELECT count(*)::int8 FROM memberships WHERE org_id = \(orgID)", logger: logger)
        for try await count in rows.decode(Int.self) { return count }
        return 0
    }

    /// Number of owners. Call after `OrganizationAccountRepository.lock` so that two concurrent changes
    /// cannot both remove "the other" last owner.
    public func ownerCount(orgID: UUID, on connection: PostgresConnection) async throws -> Int {
        let rows = try await connection.query(
            "SELECT count(*)::int8 FROM memberships WHERE org_id = \(orgID) AND role = 'owner'", logger: logger)
        for try await count in rows.decode(Int.self) { return count }
        return 0
    }

    public func setRole(orgID: UUID, userID: UUID, role: MemberRole, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            "UPDATE memberships SET role = \(role.rawValue) WHERE org_id = \(orgID) AND user_id = \(userID) RETURNING user_id",
            logger: logger)
        for try await _ in rows { return true }
        return false
    }

    public func remove(orgID: UUID, userID: UUID, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            "DELETE FROM memberships WHERE org_id = \(orgID) AND user_id = \(userID) RETURNING user_id", logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// The organisations `userID` belongs to, by slug.
    public func organizations(userID: UUID, on connection: PostgresConnection) async throws -> [MembershipRecord] {
        let rows = try await connection.query(
            """
            SELECT \(unescaped: OrganizationAccountRepository.columns("o")), m.role
            FROM memberships m JOIN organizations o ON o.id = m.org_id LEFT JOIN subscriptions s ON s.org_id = o.id
            WHERE m.user_id = \(userID) ORDER BY o.slug
            """, logger: logger)
        var result: [MembershipRecord] = []
        for try await row in rows {
            let (account, role) = try OrganizationAccountRepository.decode(row, extra: String.self)
            result.append(MembershipRecord(organization: account, role: MemberRole(rawValue: role) ?? .viewer))
        }
        return result
    }
}
