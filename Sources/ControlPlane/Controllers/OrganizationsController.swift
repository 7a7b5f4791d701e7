import Foundation
import Hummingbird
import Storage

/// `POST`/`GET /v1/orgs` (the caller's organisations) and `GET`/`PATCH`/`DELETE /v1/orgs/{org}`.
struct OrganizationsController {
    let services: APIServices

    /// Routes on `/v1/orgs` (account routes: a user, not a key).
    func registerCollection(on router: some RouterMethods<APIRequestContext>) {
        router.post("orgs", use: create)
        router.get("orgs", use: list)
    }

    /// Routes on `/v1/orgs/{org}` (after `OrganizationAccessMiddleware`).
    func registerItem(on router: some RouterMethods<APIRequestContext>) {
        router.get("", use: show)
        router.patch("", use: update)
        router.delete("", use: delete)
    }

    struct OrganizationBody: Encodable, Sendable {
        let id: UUID
        let slug: String
        let name: String
        let status: OrganizationStatus
        let plan: String
        let subscriptionStatus: SubscriptionStatus
        let role: MemberRole?
        let createdAt: Date

        init(_ account: OrganizationAccount, role: MemberRole?, plans: PlanCatalog) {
            id = account.id
            slug = account.slug
            name = account.name
            status = account.status
            plan = plans.plan(for: account.plan).name
            subscriptionStatus = account.subscriptionStatus ?? .active
            self.role = role
            createdAt = account.createdAt
        }

        enum CodingKeys: String, CodingKey {
            case id, slug, name, status, plan, subscriptionStatus = "subscription_status", role, createdAt = "created_at"
        }
    }

    struct OrganizationList: Encodable, Sendable {
        let organizations: [OrganizationBody]
    }

    struct CreateInput: JSONInput {
        static let fields: Set<String> = ["slug", "name"]
        let slug: String
        let name: String

        func validate() throws(APIError) {
            try Validate.slug(slug)
            _ = try Validate.text(name, field: "name")
        }
    }

    /// The creator becomes the owner; the organisation starts on the default plan. A taken slug is `409`.
    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Reply<OrganizationBody> {
        let user = try context.requireUser()
        let input = try await request.decodeInput(CreateInput.self, context: context)
        let name = try Validate.text(input.name, field: "name")
        let account = try await services.database.inTransaction { connection in
            let organization: Organization
            do {
                organization = try await services.organizations.create(slug: input.slug, name: name, on: connection)
            } catch let error as StorageError where error.code == .conflict {
                throw APIError.conflict("the slug '\(input.slug)' is taken; choose another", code: "slug_taken")
            }
            try await services.memberships.add(orgID: organization.id, userID: user.id, role: .owner, on: connection)
            try await services.subscriptions.ensure(orgID: organization.id, plan: services.plans.defaultPlan.name, on: connection)
            try await services.audit.append(
                AuditEntry("organization.created", orgID: organization.id, target: .organization(organization.id),
                           details: ["slug": organization.slug], request: request, context: context),
                on: connection)
            guard let account = try await services.organizations.find(id: organization.id, on: connection) else {
                throw APIError.internalError
            }
            return account
        }
        return Reply(.created, OrganizationBody(account, role: .owner, plans: services.plans))
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> OK<OrganizationList> {
        let user = try context.requireUser()
        let memberships = try await services.database.withConnection { connection in
            try await services.memberships.organizations(userID: user.id, on: connection)
        }
        return OK(OrganizationList(organizations: memberships.map {
            OrganizationBody($0.organization, role: $0.role, plans: services.plans)
        }))
    }

    @Sendable func show(_ request: Request, context: APIRequestContext) async throws -> OK<OrganizationBody> {
        let access = try context.require(.organizationRead)
        return OK(OrganizationBody(access.account, role: access.role, plans: services.plans))
    }

    struct UpdateInput: JSONInput {
        static let fields: Set<String> = ["name"]
        let name: String
        func validate() throws(APIError) { _ = try Validate.text(name, field: "name") }
    }

    /// Renames the organisation (the slug is its permanent address and does not change).
    @Sendable func update(_ request: Request, context: APIRequestContext) async throws -> OK<OrganizationBody> {
        let access = try context.require(.organizationUpdate)
        let input = try await request.decodeInput(UpdateInput.self, context: context)
        let name = try Validate.text(input.name, field: "name")
        let account = try await services.database.inTransaction { connection in
            try await services.organizations.rename(orgID: access.orgID, name: name, on: connection)
            try await services.audit.append(
                AuditEntry("organization.updated", orgID: access.orgID, target: .organization(access.orgID),
                           details: ["name": name], request: request, context: context),
                on: connection)
            return try await services.organizations.find(id: access.orgID, on: connection)
        }
        guard let account else { throw APIError.notFound("organisation") }
        return OK(OrganizationBody(account, role: access.role, plans: services.plans))
    }

    /// Deletes the organisation with everything it owns; its audit entries remain.
    @Sendable func delete(_ request: Request, context: APIRequestContext) async throws -> HTTPResponse.Status {
        let access = try context.require(.organizationDelete)
        try await services.database.inTransaction { connection in
            try await services.audit.append(
                AuditEntry("organization.deleted", orgID: access.orgID, target: .organization(access.orgID),
                           details: ["slug": access.account.slug], request: request, context: context),
                on: connection)
            try await services.organizations.delete(orgID: access.orgID, on: connection)
        }
        return .noContent
    }
}
