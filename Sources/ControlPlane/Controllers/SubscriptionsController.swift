import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import PostgresNIO
import Storage

/// Plans, an organisation's subscription and usage, and the billing provider's webhook.
///
/// `GET /v1/plans`; `GET`/`PUT /v1/orgs/{org}/subscription`; `POST /v1/billing/webhook`.
struct SubscriptionsController {
    let services: APIServices

    func registerPlans(on router: some RouterMethods<APIRequestContext>) {
        router.get("plans", use: plans)
    }

    func registerBilling(on router: some RouterMethods<APIRequestContext>) {
        router.post("billing/webhook", use: webhook)
    }

    func registerOrganizationRoutes(on router: some RouterMethods<APIRequestContext>) {
        router.get("subscription", use: show)
        router.put("subscription", use: change)
    }

    struct PlanBody: Encodable, Sendable {
        let name: String
        let displayName: String
        let priceCentsPerMonth: Int
        /// Every limit by name; null means unlimited.
        let limits: [String: Int?]

        init(_ plan: Plan) {
            name = plan.name
            displayName = plan.displayName
            priceCentsPerMonth = plan.priceCentsPerMonth
            limits = Dictionary(uniqueKeysWithValues: LimitName.allCases.map { ($0.rawValue, plan.limits[$0]) })
        }

        enum CodingKeys: String, CodingKey {
            case name, displayName = "display_name", priceCentsPerMonth = "price_cents_per_month", limits
        }
    }

    struct PlanList: Encodable, Sendable {
        let plans: [PlanBody]
        let defaultPlan: String
        enum CodingKeys: String, CodingKey { case plans, defaultPlan = "default" }
    }

    @Sendable func plans(_ request: Request, context: APIRequestContext) async throws -> OK<PlanList> {
        OK(PlanList(plans: services.plans.plans.map(PlanBody.init), defaultPlan: services.plans.defaultPlan.name))
    }

    struct SubscriptionBody: Encodable, Sendable {
        struct Period: Encodable, Sendable {
            let start: Date
            let end: Date
        }
        struct Usage: Encodable, Sendable {
            let used: Int?
            /// Null: unlimited.
            let limit: Int?
        }
        let plan: String
        let status: SubscriptionStatus
        let period: Period
        let usage: [String: Usage]
    }

    func body(orgID: UUID, plan: Plan, status: SubscriptionStatus, on connection: PostgresConnection) async throws -> SubscriptionBody {
        let (snapshot, limits) = try await services.quotas.report(orgID: orgID, plan: plan, on: connection)
        return SubscriptionBody(
            plan: plan.name, status: status, period: .init(start: snapshot.periodStart, end: snapshot.periodEnd),
            usage: Dictionary(uniqueKeysWithValues: limits.map { ($0.limit.rawValue, SubscriptionBody.Usage(used: $0.used, limit: $0.allowed)) }))
    }

    @Sendable func show(_ request: Request, context: APIRequestContext) async throws -> OK<SubscriptionBody> {
        let access = try context.require(.subscriptionRead)
        return OK(try await services.database.withConnection { connection in
            try await body(orgID: access.orgID, plan: access.standing.plan, status: access.standing.subscriptionStatus, on: connection)
        })
    }

    struct ChangeInput: JSONInput {
        static let fields: Set<String> = ["plan"]
        let plan: String
    }

    /// Moves the organisation to another plan (owner). A plan whose limits are below current usage is
    /// refused with `409 plan_limits_below_usage` naming each limit, its usage and the new value.
    @Sendable func change(_ request: Request, context: APIRequestContext) async throws -> OK<SubscriptionBody> {
        let access = try context.require(.subscriptionManage)
        let input = try await request.decodeInput(ChangeInput.self, context: context)
        guard let plan = services.plans.plan(named: input.plan) else {
            throw APIError.validation("plan", "must be one of \(services.plans.plans.map(\.name).joined(separator: ", "))")
        }
        let result = try await services.database.inTransaction { connection in
            try await services.organizations.lock(orgID: access.orgID, on: connection)
            let violations = try await services.quotas.violations(movingTo: plan, orgID: access.orgID, on: connection)
            if !violations.isEmpty {
                let numbers = violations.map { "\($0.limit.rawValue): \($0.used ?? 0) in use, plan '\(plan.name)' allows \($0.allowed ?? 0)" }
                throw APIError.conflict(
                    "cannot move to plan '\(plan.name)' below current usage (\(numbers.joined(separator: "; ")))",
                    code: "plan_limits_below_usage")
            }
            let previous = try await services.subscriptions.setPlan(orgID: access.orgID, plan: plan.name, on: connection)
            try await services.audit.append(
                AuditEntry("subscription.plan_changed", orgID: access.orgID, target: .subscription(access.orgID),
                           details: ["from": previous ?? services.plans.defaultPlan.name, "to": plan.name],
                           request: request, context: context),
                on: connection)
            return try await body(orgID: access.orgID, plan: plan, status: access.standing.subscriptionStatus, on: connection)
        }
        return OK(result)
    }

    // MARK: Billing webhook

    static let signatureHeader = HTTPField.Name("X-Billing-Signature")!

    struct WebhookResult: Encodable, Sendable {
        let received: Bool
        let duplicate: Bool
        let applied: Bool
    }

    /// Events from the billing provider, signed with HMAC-SHA256 over the raw body:
    /// `X-Billing-Signature: sha256=<hex>` with `INTELLIDOCS_BILLING_WEBHOOK_SECRET`. The body is
    /// `{"id": "evt_…", "type": "…", "data": {"org": "<slug>", "status": "…", "plan": "…"}}` with type
    /// `subscription.updated` (status and/or plan), `subscription.canceled`, `invoice.payment_failed`
    /// (→ past_due) or `invoice.paid` (→ active). An event id is applied once; a repeat answers 200 with
    /// `"duplicate": true` and changes nothing.
    @Sendable func webhook(_ request: Request, context: APIRequestContext) async throws -> OK<WebhookResult> {
        guard let secret = services.configuration.billingWebhookSecret, !secret.isEmpty else {
            throw APIError(.serviceUnavailable, code: "billing_not_configured", message: "the billing webhook is not configured (INTELLIDOCS_BILLING_WEBHOOK_SECRET)")
        }
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        let body = Data(buffer.readableBytesView)
        guard let header = request.headers[Self.signatureHeader], header.hasPrefix("sha256="),
            let signature = Self.hexBytes(header.dropFirst("sha256=".count)),
            HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: body, using: SymmetricKey(data: Data(secret.utf8)))
        else {
            throw APIError.unauthorized("the X-Billing-Signature header is missing or does not match the body", code: "invalid_signature")
        }
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw APIError(.badRequest, code: "invalid_json", message: "the body must be a JSON object")
        }
        guard let eventID = object["id"] as? String, !eventID.isEmpty, eventID.count <= 200 else {
            throw APIError.validation("id", "must be the event id (a string)")
        }
        guard let type = object["type"] as? String, type.count <= 100 else { throw APIError.validation("type", "must be a string") }
        guard let data = object["data"] as? [String: Any], let slug = data["org"] as? String else {
            throw APIError.validation("data.org", "must be the organisation's slug")
        }
        var status: SubscriptionStatus?
        var plan: Plan?
        switch type {
        case "subscription.updated":
            if let raw = data["status"] {
                guard let value = raw as? String, let parsed = SubscriptionStatus(rawValue: value) else {
                    throw APIError.validation("data.status", "must be one of active, past_due, canceled")
                }
                status = parsed
            }
            if let raw = data["plan"] {
                guard let name = raw as? String, let parsed = services.plans.plan(named: name) else {
                    throw APIError.validation("data.plan", "must be one of \(services.plans.plans.map(\.name).joined(separator: ", "))")
                }
                plan = parsed
            }
        case "subscription.canceled": status = .canceled
        case "invoice.payment_failed": status = .pastDue
        case "invoice.paid": status = .active
        default: break
        }
        let result = try await services.database.inTransaction { connection in
            guard let account = try await services.organizations.find(slug: slug, on: connection) else {
                throw APIError.notFound("organisation")
            }
            guard try await services.subscriptions.recordBillingEvent(id: eventID, type: type, orgID: account.id, on: connection) else {
                return WebhookResult(received: true, duplicate: true, applied: false)
            }
            var details = ["event_id": eventID, "type": type]
            if let status {
                try await services.subscriptions.setStatus(orgID: account.id, status, defaultPlan: services.plans.defaultPlan.name, on: connection)
                details["status"] = status.rawValue
            }
            if let plan {
                try await services.subscriptions.setPlan(orgID: account.id, plan: plan.name, on: connection)
                details["plan"] = plan.name
            }
            try await services.audit.append(
                AuditEntry(orgID: account.id, actorType: .billing, actorID: nil, actorLabel: "billing", action: "billing.event_applied",
                           targetType: "subscription", targetID: account.id.uuidString, ip: context.remoteAddress,
                           userAgent: request.headers[.userAgent].map { String($0.prefix(300)) }, requestID: context.requestID,
                           details: details),
                on: connection)
            return WebhookResult(received: true, duplicate: false, applied: status != nil || plan != nil)
        }
        return OK(result)
    }

    static func hexBytes(_ hex: Substring) -> Data? {
        guard hex.count == 64 else { return nil }
        var bytes = Data(capacity: 32)
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}
