import Foundation
import Hummingbird
import Storage

/// `POST`/`GET /v1/orgs/{org}/invitations`, `DELETE /v1/orgs/{org}/invitations/{id}` and
/// `POST /v1/invitations/{token}/accept`.
///
/// The invitation token would be mailed in production; the API returns it to the inviter once. Only its
/// SHA-256 hash is stored. Accepting needs a logged-in user whose address is the invited one, and a free
/// seat of the plan (counted under the organisation's row lock: concurrent accepts cannot overfill it).
struct InvitationsController {
    let services: APIServices

    func registerOrganizationRoutes(on router: some RouterMethods<APIRequestContext>) {
        router.post("invitations", use: create)
        router.get("invitations", use: list)
        router.delete("invitations/{id}", use: revoke)
    }

    func registerAccept(on router: some RouterMethods<APIRequestContext>) {
        router.post("invitations/{token}/accept", use: accept)
    }

    struct CreateInput: JSONInput {
        static let fields: Set<String> = ["email", "role"]
        let email: String
        let role: String

        func validate() throws(APIError) {
            _ = try Validate.email(email)
            _ = try Validate.role(role)
        }
    }

    struct CreatedBody: Encodable, Sendable {
        let id: UUID
        let token: String
        let email: String
        let role: MemberRole
        let expiresAt: Date
        enum CodingKeys: String, CodingKey { case id, token, email, role, expiresAt = "expires_at" }
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Reply<CreatedBody> {
        let access = try context.require(.membersManage)
        let input = try await request.decodeInput(CreateInput.self, context: context)
        let email = try Validate.email(input.email)
        let role = try Validate.role(input.role)
        if role == .owner { _ = try context.require(.ownersManage) }
        try access.requireCanAdd()
        let token = SecretToken.generate(prefix: "idi_")
        let expiresAt = Date().addingTimeInterval(TimeInterval(services.configuration.invitationLifetime.components.seconds))
        let invitation = try await services.database.inTransaction { connection in
            if let existing = try await services.users.find(email: email, on: connection),
                try await services.memberships.role(orgID: access.orgID, userID: existing.id, on: connection) != nil
            {
                throw APIError.conflict("\(email) is already a member", code: "already_member")
            }
            if let seats = access.standing.plan.limits.seats {
                let used = try await services.memberships.count(orgID: access.orgID, on: connection)
                if used >= seats {
                    throw QuotaError.exceeded(.seats, allowed: seats, used: used, requested: 1, plan: access.standing.plan.name)
                }
            }
            let invitation = try await services.invitations.create(
                orgID: access.orgID, email: email, role: role, tokenHash: SecretToken.hash(token),
                invitedBy: context.principal?.user?.id, expiresAt: expiresAt, on: connection)
            try await services.audit.append(
                AuditEntry("invitation.created", orgID: access.orgID, target: .invitation(invitation.id),
                           details: ["email": email, "role": role.rawValue], request: request, context: context),
                on: connection)
            return invitation
        }
        return Reply(.created, CreatedBody(id: invitation.id, token: token, email: invitation.email, role: invitation.role, expiresAt: invitation.expiresAt))
    }

    struct InvitationBody: Encodable, Sendable {
        let id: UUID
        let email: String
        let role: MemberRole
        let invitedBy: UUID?
        let createdAt: Date
        let expiresAt: Date
        enum CodingKeys: String, CodingKey {
            case id, email, role, invitedBy = "invited_by", createdAt = "created_at", expiresAt = "expires_at"
        }
    }

    struct InvitationList: Encodable, Sendable { let invitations: [InvitationBody] }

    /// Open invitations (tokens are never shown again).
    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> OK<InvitationList> {
        let access = try context.require(.membersManage)
        let open = try await services.database.withConnection { connection in
            try await services.invitations.open(orgID: access.orgID, on: connection)
        }
        return OK(InvitationList(invitations: open.map {
            InvitationBody(id: $0.id, email: $0.email, role: $0.role, invitedBy: $0.invitedBy, createdAt: $0.createdAt, expiresAt: $0.expiresAt)
        }))
    }

    @Sendable func revoke(_ request: Request, context: APIRequestContext) async throws -> HTTPResponse.Status {
        let access = try context.require(.membersManage)
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else { throw APIError.notFound("invitation") }
        try await services.database.inTransaction { connection in
            guard let invitation = try await services.invitations.revoke(orgID: access.orgID, id: id, on: connection) else {
                throw APIError.notFound("invitation")
            }
            try await services.audit.append(
                AuditEntry("invitation.revoked", orgID: access.orgID, target: .invitation(invitation.id),
                           details: ["email": invitation.email], request: request, context: context),
                on: connection)
        }
        return .noContent
    }

    struct AcceptedBody: Encodable, Sendable {
        let organization: OrganizationsController.OrganizationBody
        let role: MemberRole
    }

    @Sendable func accept(_ request: Request, context: APIRequestContext) async throws -> OK<AcceptedBody> {
        let user = try context.requireUser()
        guard let token = context.parameters.get("token"), token.hasPrefix("idi_"), token.utf8.count < 100 else {
            throw APIError.notFound("invitation")
        }
        let (account, role) = try await services.database.inTransaction { connection in
            guard let invitation = try await services.invitations.lockByToken(tokenHash: SecretToken.hash(token), on: connection) else {
                throw APIError.notFound("invitation")
            }
            guard invitation.isOpen(at: Date()) else {
                throw APIError(.gone, code: "invitation_closed", message: "the invitation was already accepted, revoked or has expired; ask for a new one")
            }
            guard invitation.email == user.email else {
                throw APIError.forbidden("the invitation was made for another e-mail address", code: "invitation_email_mismatch")
            }
            if try await services.memberships.role(orgID: invitation.orgID, userID: user.id, on: connection) != nil {
                throw APIError.conflict("you are already a member of this organisation", code: "already_member")
            }
            try await services.quotas.reserveSeats(1, orgID: invitation.orgID, on: connection)
            try await services.memberships.add(orgID: invitation.orgID, userID: user.id, role: invitation.role, on: connection)
            try await services.invitations.markAccepted(id: invitation.id, orgID: invitation.orgID, by: user.id, on: connection)
            try await services.audit.append(
                AuditEntry("invitation.accepted", orgID: invitation.orgID, target: .invitation(invitation.id),
                           details: ["role": invitation.role.rawValue], request: request, context: context),
                on: connection)
            guard let account = try await services.organizations.find(id: invitation.orgID, on: connection) else {
                throw APIError.notFound("invitation")
            }
            return (account, invitation.role)
        }
        return OK(AcceptedBody(organization: .init(account, role: role, plans: services.plans), role: role))
    }
}
