import Foundation
import Hummingbird
import Storage

/// `GET`/`PATCH /v1/me`: the logged-in user's own account.
struct MeController {
    let services: APIServices

    func register(on router: some RouterMethods<APIRequestContext>) {
        router.get("me", use: show)
        router.patch("me", use: update)
    }

    struct MeBody: Encodable, Sendable {
        struct Membership: Encodable, Sendable {
            let slug: String
            let name: String
            let role: MemberRole
        }
        let user: AuthController.UserBody
        let organizations: [Membership]

        func encode(to encoder: any Encoder) throws {
            try user.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(organizations, forKey: .organizations)
        }
        enum CodingKeys: String, CodingKey { case organizations }
    }

    func body(for userID: UUID) async throws -> MeBody {
        try await services.database.withConnection { connection in
            guard let user = try await services.users.find(id: userID, on: connection) else {
                throw APIError.unauthorized("the account no longer exists", code: "session_ended")
            }
            let memberships = try await services.memberships.organizations(userID: userID, on: connection)
            return MeBody(
                user: AuthController.UserBody(user),
                organizations: memberships.map { .init(slug: $0.organization.slug, name: $0.organization.name, role: $0.role) })
        }
    }

    @Sendable func show(_ request: Request, context: APIRequestContext) async throws -> OK<MeBody> {
        OK(try await body(for: try context.requireUser().id))
    }

    struct UpdateInput: JSONInput {
        static let fields: Set<String> = ["name", "password", "current_password"]
        let name: String?
        let password: String?
        let currentPassword: String?
        enum CodingKeys: String, CodingKey { case name, password, currentPassword = "current_password" }

        func validate() throws(APIError) {
            if let name { _ = try Validate.text(name, field: "name") }
            if let password {
                try Validate.password(password)
                guard currentPassword?.isEmpty == false else {
                    throw APIError.validation("current_password", "is required to change the password")
                }
            }
            if name == nil && password == nil { throw APIError.validation("name", "give at least one of name, password") }
        }
    }

    /// Changes the name and/or the password (with the current one); a new password ends every other
    /// session of the account.
    @Sendable func update(_ request: Request, context: APIRequestContext) async throws -> OK<MeBody> {
        let user = try context.requireUser()
        let input = try await request.decodeInput(UpdateInput.self, context: context)
        var newHash: String?
        if let password = input.password, let current = input.currentPassword {
            let stored = try await services.database.withConnection { try await services.users.passwordHash(id: user.id, on: $0) }
            guard let stored, try await services.passwords.verify(current, hash: stored) else {
                throw APIError.forbidden("current_password is wrong", code: "invalid_credentials")
            }
            newHash = try await services.passwords.hash(password)
        }
        let name = try input.name.map { name throws(APIError) in try Validate.text(name, field: "name") }
        try await services.database.inTransaction { [newHash] connection in
            _ = try await services.users.update(id: user.id, name: name, passwordHash: newHash, on: connection)
            if newHash != nil {
                try await services.sessions.revokeSessions(userID: user.id, keeping: user.sessionID, reason: "password_changed", on: connection)
            }
            let fields = [name == nil ? nil : "name", newHash == nil ? nil : "password"].compactMap { $0 }
            try await services.audit.append(
                AuditEntry(newHash == nil ? "user.updated" : "user.password_changed", orgID: nil, target: .user(user.id),
                           details: ["fields": fields.joined(separator: ",")], request: request, context: context),
                on: connection)
        }
        return OK(try await body(for: user.id))
    }
}
