import Foundation
import Hummingbird
import Storage

/// `GET /v1/orgs/{org}/members`, `PATCH`/`DELETE /v1/orgs/{org}/members/{user_id}`.
///
/// Membership changes of one organisation take its row lock, so the last-owner rule holds under
/// concurrency: the last owner can neither leave, be removed nor be demoted.
struct MembersController {
    let services: APIServices

    func register(on router: some RouterMethods<APIRequestContext>) {
        router.get("members", use: list)
        router.patch("members/{user_id}", use: changeRole)
        router.delete("members/{user_id}", use: remove)
    }

    struct MemberBody: Encodable, Sendable {
        let userID: UUID
        let email: String
        let name: String
        let role: MemberRole
        let joinedAt: Date

        init(_ member: MemberRecord) {
            userID = member.userID
            email = member.email
            name = member.name
            role = member.role
            joinedAt = member.joinedAt
        }

        enum CodingKeys: String, CodingKey { case userID = "user_id", email, name, role, joinedAt = "joined_at" }
    }

    struct MemberList: Encodable, Sendable { let members: [MemberBody] }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> OK<MemberList> {
        let access = try context.require(.membersRead)
        let members = try await services.database.withConnection { connection in
            try await services.memberships.members(orgID: access.orgID, on: connection)
        }
        return OK(MemberList(members: members.map(MemberBody.init)))
    }

    struct RoleInput: JSONInput {
        static let fields: Set<String> = ["role"]
        let roleName: String
        enum CodingKeys: String, CodingKey { case roleName = "role" }

        var role: MemberRole { MemberRole(rawValue: roleName) ?? .viewer }
        func validate() throws(APIError) { _ = try Validate.role(roleName) }
    }

    static func userID(_ context: APIRequestContext) throws(APIError) -> UUID {
        guard let raw = context.parameters.get("user_id"), let id = UUID(uuidString: raw) else {
            throw APIError.notFound("member")
        }
        return id
    }

    @Sendable func changeRole(_ request: Request, context: APIRequestContext) async throws -> OK<MemberBody> {
        let access = try context.require(.membersManage)
        let userID = try Self.userID(context)
        let input = try await request.decodeInput(RoleInput.self, context: context)
        let member = try await services.database.inTransaction { connection in
            try await services.organizations.lock(orgID: access.orgID, on: connection)
            guard let target = try await services.memberships.member(orgID: access.orgID, userID: userID, on: connection) else {
                throw APIError.notFound("member")
            }
            if target.role == .owner || input.role == .owner {
                _ = try context.require(.ownersManage)
            }
            if target.role == .owner, input.role != .owner,
                try await services.memberships.ownerCount(orgID: access.orgID, on: connection) <= 1
            {
                throw APIError.conflict("the last owner cannot be demoted; make another member owner first", code: "last_owner")
            }
            _ = try await services.memberships.setRole(orgID: access.orgID, userID: userID, role: input.role, on: connection)
            try await services.audit.append(
                AuditEntry("member.role_changed", orgID: access.orgID, target: .user(userID),
                           details: ["from": target.role.rawValue, "to": input.role.rawValue], request: request, context: context),
                on: connection)
            return try await services.memberships.member(orgID: access.orgID, userID: userID, on: connection)
        }
        guard let member else { throw APIError.notFound("member") }
        return OK(MemberBody(member))
    }

    /// Removes a member (`members.manage`; an owner only by an owner) or, for one's own user id, leaves.
    @Sendable func remove(_ request: Request, context: APIRequestContext) async throws -> HTTPResponse.Status {
        guard let access = context.access else { throw APIError.notFound("organisation") }
        let userID = try Self.userID(context)
        let leaving = context.principal?.user?.id == userID
        if !leaving { _ = try context.require(.membersManage) }
        try await services.database.inTransaction { connection in
            try await services.organizations.lock(orgID: access.orgID, on: connection)
            guard let target = try await services.memberships.member(orgID: access.orgID, userID: userID, on: connection) else {
                throw APIError.notFound("member")
            }
            if target.role == .owner {
                if !leaving { _ = try context.require(.ownersManage) }
                if try await services.memberships.ownerCount(orgID: access.orgID, on: connection) <= 1 {
                    throw APIError.conflict(
                        "the last owner cannot \(leaving ? "leave" : "be removed"); make another member owner first", code: "last_owner")
                }
            }
            _ = try await services.memberships.remove(orgID: access.orgID, userID: userID, on: connection)
            try await services.audit.append(
                AuditEntry(leaving ? "member.left" : "member.removed", orgID: access.orgID, target: .user(userID),
                           details: ["role": target.role.rawValue], request: request, context: context),
                on: connection)
        }
        return .noContent
    }
}
