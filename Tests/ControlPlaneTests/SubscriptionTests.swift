import ControlPlane
import Crypto
import Foundation
import HTTPTypes
import PostgresNIO
import Storage
import Testing
import TestSupport

/// Plans, subscriptions, the billing webhook and quota enforcement, including races for the last unit.
@Suite(.serialized)
struct SubscriptionTests {
    static func sign(_ body: String, secret: String = testBillingSecret) -> HTTPFields {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return [HTTPField.Name("X-Billing-Signature")!: "sha256=" + mac.map { String(format: "%02x", $0) }.joined()]
    }

    @Test func plansSubscriptionWebhookAndReadOnlyStates() async throws {
        try await TestEnvironment.with { env in
            try await APIHarness.run(env) { api in
                let plans = try await api.call(.get, "/v1/plans")
                #expect(plans.status == 200 && plans.string("default") == "free")
                let names = (plans["plans"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
                #expect(names == ["free", "pro", "enterprise"])

                let hash = try await PasswordHasher().hash(testPassword)
                _ = try await api.seedUser("owner@example.com", passwordHash: hash)
                let owner = try await api.login("owner@example.com")
                #expect(try await api.call(.post, "/v1/orgs", token: owner.access, json: ["slug": "acme", "name": "Acme"]).status == 201)

                let subscription = try await api.call(.get, "/v1/orgs/acme/subscription", token: owner.access)
                #expect(subscription.status == 200)
                #expect(subscription.string("plan") == "free" && subscription.string("status") == "active")
                let usage = subscription["usage"] as? [String: [String: Any]]
                #expect(usage?["seats"]?["used"] as? Int == 1 && usage?["seats"]?["limit"] as? Int == 3)
                #expect(usage?["documents_per_month"]?["limit"] as? Int == 100)
                #expect((subscription["period"] as? [String: Any])?["start"] is String)

                // Usage above a smaller plan's limits: a downgrade is refused with the numbers.
                #expect(try await api.call(.put, "/v1/orgs/acme/subscription", token: owner.access, json: ["plan": "pro"]).status == 200)
                let orgID = try await env.database.withConnection { try await OrganizationAccountRepository(logger: env.logger).find(slug: "acme", on: $0)!.id }
                try await env.execute(
                    "INSERT INTO usage_counters (org_id, period, documents) VALUES (\(orgID), date_trunc('month', now() AT TIME ZONE 'UTC')::date, 150)")
                let downgrade = try await api.call(.put, "/v1/orgs/acme/subscription", token: owner.access, json: ["plan": "free"])
                #expect(downgrade.status == 409 && downgrade.errorCode == "plan_limits_below_usage")
                let message = (downgrade.json["error"] as? [String: Any])?["message"] as? String ?? ""
                #expect(message.contains("documents_per_month") && message.contains("150") && message.contains("100"))
                let unknownPlan = try await api.call(.put, "/v1/orgs/acme/subscription", token: owner.access, json: ["plan": "platinum"])
                #expect(unknownPlan.status == 400)

                // Webhook: signature checked, applied once per event id.
                let event = #"{"id": "evt_1", "type": "invoice.payment_failed", "data": {"org": "acme"}}"#
                let unsigned = try await api.call(.post, "/v1/billing/webhook", raw: event)
                #expect(unsigned.status == 401 && unsigned.errorCode == "invalid_signature")
                let forged = try await api.call(.post, "/v1/billing/webhook", raw: event, headers: Self.sign(event, secret: "not the secret"))
                #expect(forged.status == 401)
                let tampered = try await api.call(
                    .post, "/v1/billing/webhook", raw: event.replacingOccurrences(of: "evt_1", with: "evt_2"), headers: Self.sign(event))
                #expect(tampered.status == 401)
                let applied = try await api.call(.post, "/v1/billing/webhook", raw: event, headers: Self.sign(event))
                #expect(applied.status == 200 && applied["duplicate"] as? Bool == false && applied["applied"] as? Bool == true)
                let repeated = try await api.call(.post, "/v1/billing/webhook", raw: event, headers: Self.sign(event), audited: false)
                #expect(repeated.status == 200 && repeated["duplicate"] as? Bool == true)
                #expect(try await env.count("SELECT count(*)::int8 FROM audit_log WHERE action = 'billing.event_applied'") == 1)
                #expect(try await api.call(.get, "/v1/orgs/acme/subscription", token: owner.access).string("status") == "past_due")

                // Past due still adds; canceled can read but not add.
                #expect(try await api.call(.post, "/v1/orgs/acme/api-keys", token: owner.access, json: ["name": "a", "scopes": ["read"]]).status == 201)
                let cancel = #"{"id": "evt_3", "type": "subscription.updated", "data": {"org": "acme", "status": "canceled"}}"#
                #expect(try await api.call(.post, "/v1/billing/webhook", raw: cancel, headers: Self.sign(cancel)).status == 200)
                let refused = try await api.call(.post, "/v1/orgs/acme/api-keys", token: owner.access, json: ["name": "b", "scopes": ["read"]])
                #expect(refused.status == 403 && refused.errorCode == "organization_read_only")
                #expect(try await api.call(.post, "/v1/orgs/acme/invitations", token: owner.access, json: ["email": "x@example.com", "role": "viewer"]).status == 403)
                #expect(try await api.call(.get, "/v1/orgs/acme", token: owner.access).status == 200)
                #expect(try await api.call(.get, "/v1/orgs/acme/api-keys", token: owner.access).status == 200)
                do {
                    try await QuotaService(plans: try env.plans(), logger: env.logger).consume(UsageDelta(documents: 1), orgID: orgID, database: env.database)
                    Issue.record("a canceled organisation consumed quota")
                } catch let error as QuotaError {
                    #expect(error.code == .readOnly)
                }
                let reactivate = #"{"id": "evt_4", "type": "invoice.paid", "data": {"org": "acme"}}"#
                #expect(try await api.call(.post, "/v1/billing/webhook", raw: reactivate, headers: Self.sign(reactivate)).status == 200)
                #expect(try await api.call(.post, "/v1/orgs/acme/api-keys", token: owner.access, json: ["name": "c", "scopes": ["read"]]).status == 201)
                let badEvent = #"{"id": "evt_5", "type": "subscription.updated", "data": {"org": "acme", "status": "frozen"}}"#
                #expect(try await api.call(.post, "/v1/billing/webhook", raw: badEvent, headers: Self.sign(badEvent)).status == 400)

                // The audit log itself, filtered and paged.
                let page = try await api.call(.get, "/v1/orgs/acme/audit-log?limit=2", token: owner.access)
                #expect(page.status == 200 && (page["entries"] as? [Any])?.count == 2)
                let cursor = try #require(page.string("next_cursor"))
                let next = try await api.call(.get, "/v1/orgs/acme/audit-log?limit=2&cursor=\(cursor)", token: owner.access)
                #expect((next["entries"] as? [[String: Any]])?.first?["id"] as? String != (page["entries"] as? [[String: Any]])?.first?["id"] as? String)
                let keys = try await api.call(.get, "/v1/orgs/acme/audit-log?action=api_key.created&actor=owner@example.com", token: owner.access)
                let entries = keys["entries"] as? [[String: Any]] ?? []
                #expect(entries.count == 2 && entries.allSatisfy { $0["action"] as? String == "api_key.created" })
                #expect(entries.first?["ip"] is String && entries.first?["user_agent"] as? String == "ControlPlaneTests")
                let future = try await api.call(.get, "/v1/orgs/acme/audit-log?since=2999-01-01T00:00:00Z", token: owner.access)
                #expect((future["entries"] as? [Any])?.isEmpty == true)
                let badSince = try await api.call(.get, "/v1/orgs/acme/audit-log?since=yesterday", token: owner.access)
                #expect(badSince.status == 400)
                // Append-only.
                await #expect(throws: (any Error).self) { try await env.execute("UPDATE audit_log SET action = 'x'") }
                await #expect(throws: (any Error).self) { try await env.execute("DELETE FROM audit_log") }
                try await api.expectAudited()
            }
        }
    }

    @Test func concurrentRequestsForTheLastUnitLetExactlyOneThrough() async throws {
        try await TestEnvironment.with { env in
            try await APIHarness.run(env) { api in
                // Seats over HTTP: the free plan has 3; the owner and one member leave one seat for four invitees.
                let hash = try await PasswordHasher().hash(testPassword)
                _ = try await api.seedUser("owner@example.com", passwordHash: hash)
                let owner = try await api.login("owner@example.com")
                #expect(try await api.call(.post, "/v1/orgs", token: owner.access, json: ["slug": "acme", "name": "Acme"]).status == 201)
                var invitees: [(token: String, access: String)] = []
                for index in 0..<5 {
                    let email = "u\(index)@example.com"
                    _ = try await api.seedUser(email, passwordHash: hash)
                    let invitation = try await api.call(.post, "/v1/orgs/acme/invitations", token: owner.access, json: ["email": email, "role": "viewer"])
                    #expect(invitation.status == 201)
                    invitees.append((try #require(invitation.string("token")), try await api.login(email).access))
                }
                #expect(try await api.call(.post, "/v1/invitations/\(invitees[0].token)/accept", token: invitees[0].access).status == 200)
                let racers = Array(invitees.dropFirst())
                let statuses = try await withThrowingTaskGroup(of: APIResponse.self) { group in
                    for racer in racers {
                        group.addTask { try await api.call(.post, "/v1/invitations/\(racer.token)/accept", token: racer.access) }
                    }
                    return try await group.reduce(into: [APIResponse]()) { $0.append($1) }
                }
                #expect(statuses.filter { $0.status == 200 }.count == 1, "\(statuses.map(\.status))")
                let refused = statuses.filter { $0.status != 200 }
                #expect(refused.count == 3 && refused.allSatisfy { $0.status == 402 && $0.errorCode == "quota_exceeded" })
                #expect(refused.first?.body.contains("seats") == true)
                let members = try await api.call(.get, "/v1/orgs/acme/members", token: owner.access)
                #expect((members["members"] as? [Any])?.count == 3)
                // Inviting now fails early with the numbers.
                let full = try await api.call(.post, "/v1/orgs/acme/invitations", token: owner.access, json: ["email": "late@example.com", "role": "viewer"])
                #expect(full.status == 402 && full.body.contains("3 used of 3"))

                // Documents per month through the quota service `intellidocs import` uses: 99 of 100 used,
                // sixteen concurrent requests for one more document each.
                let orgID = try await env.database.withConnection { try await OrganizationAccountRepository(logger: env.logger).find(slug: "acme", on: $0)!.id }
                let quotas = QuotaService(plans: try env.plans(), logger: env.logger)
                try await quotas.consume(UsageDelta(documents: 99, storageBytes: 1000), orgID: orgID, database: env.database)
                let outcomes = try await withThrowingTaskGroup(of: QuotaError?.self) { group in
                    for _ in 0..<16 {
                        group.addTask {
                            do {
                                try await quotas.consume(UsageDelta(documents: 1, storageBytes: 10), orgID: orgID, database: env.database)
                                return nil
                            } catch let error as QuotaError {
                                return error
                            }
                        }
                    }
                    return try await group.reduce(into: [QuotaError?]()) { $0.append($1) }
                }
                #expect(outcomes.filter { $0 == nil }.count == 1)
                #expect(outcomes.compactMap { $0 }.allSatisfy { $0.code == .limitExceeded && $0.limit == .documentsPerMonth && $0.used == 100 && $0.allowed == 100 })
                let snapshot = try await env.database.withConnection { try await UsageRepository(logger: env.logger).snapshot(orgID: orgID, on: $0) }
                #expect(snapshot.documents == 100 && snapshot.storageBytes == 1010)

                // Searches per minute (free: 30): 40 concurrent searches, 30 pass, the rest wait.
                let searches = try await withThrowingTaskGroup(of: QuotaError?.self) { group in
                    for _ in 0..<40 {
                        group.addTask {
                            do {
                                try await env.database.inTransaction { try await quotas.takeSearch(orgID: orgID, on: $0) }
                                return nil
                            } catch let error as QuotaError {
                                return error
                            }
                        }
                    }
                    return try await group.reduce(into: [QuotaError?]()) { $0.append($1) }
                }
                #expect(searches.filter { $0 == nil }.count == 30)
                #expect(searches.compactMap { $0 }.allSatisfy { $0.code == .rateLimited && ($0.retryAfterSeconds ?? 0) >= 1 })
                // Over HTTP a quota error becomes 402 naming the limit and usage (see the seats above) or
                // 429 with Retry-After.
                let limited = APIError(quota: try #require(searches.compactMap { $0 }.first))
                #expect(limited.status == .tooManyRequests && limited.headers[.retryAfter] != nil)

                // The file-size limit.
                await #expect(throws: QuotaError.self) {
                    try await env.database.withConnection { try await quotas.checkFileSize(20_000_000, orgID: orgID, on: $0) }
                }
                try await api.expectAudited()
            }
        }
    }
}
