public import Foundation
public import Storage

/// Who is calling: a logged-in user (JWT access token) or a program (API key of one organisation).
public enum Principal: Sendable, Equatable {
    case user(UserPrincipal)
    case apiKey(APIKeyPrincipal)

    public var user: UserPrincipal? {
        if case .user(let user) = self { return user }
        return nil
    }

    var auditActor: (type: AuditActorType, id: UUID, label: String) {
        switch self {
        case .user(let user): (.user, user.id, user.email)
        case .apiKey(let key): (.apiKey, key.id, key.prefix)
        }
    }
}

public struct UserPrincipal: Sendable, Equatable {
    public let id: UUID
    public let email: String
    public let name: String
    public let isPlatformAdmin: Bool
    /// The login session the access token belongs to.
    public let sessionID: UUID
}

public struct APIKeyPrincipal: Sendable, Equatable {
    public let id: UUID
    public let orgID: UUID
    public let prefix: String
    public let scopes: [APIKeyScope]

    /// A key acts with the role its broadest scope stands for (never owner).
    public var role: MemberRole {
        if scopes.contains(.admin) { return .admin }
        if scopes.contains(.write) { return .member }
        return .viewer
    }
}

/// What an API key may do: `read` acts as a viewer, `write` as a member, `admin` as an admin
/// (Permissions.md). Owner-only actions are never open to keys.
public enum APIKeyScope: String, Sendable, Codable, CaseIterable {
    case read, write, admin

    /// The least role that may create a key with this scope.
    var role: MemberRole {
        switch self {
        case .read: .viewer
        case .write: .member
        case .admin: .admin
        }
    }
}
