import ControlPlane
import Foundation
import HTTPTypes
import Storage
import Testing
import TestSupport

/// The permission matrix (Sources/ControlPlane/Permissions.md) for every role and API-key scope on every
/// organisation route of part 1, the cross-organisation sweep, and the last-owner rules.
@Suite(.serialized)
struct RoleMatrixTests {
    /// One organisation route: who may call it, and how to make a fresh target for each call.
    struct Case: Sendable {
        let method: HTTPRequest.Method
        /// `{org}` and `{id}` are filled in per call.
        let path: String
        let minimum: MemberRole
        let success: Int
        var body: [String: String]? = nil
        var scopes: [String]? = nil
        /// Creates what the call acts on (as the owner) and returns its id for `{id}`.
        var prepare: (@Sendable (Fixture) async throws -> String)? = nil
        /// Puts things back after an allowed call.
        var restore: (@Sendable (Fixture) async throws -> Void)? = nil
    }

    struct Fixture: Sendable {
        let api: APIClient
        let owner: Tokens
        let orgID: UUID
        let targetID: UUID
    }

    enum Caller: Sendable, CustomStringConvertible {
        case user(MemberRole, String)
        case key(MemberRole, String)
        var role: MemberRole {
            switch self {
            case .user(let role, _), .key(let role, _): role
            }
        }
        var token: String {
            switch self {
            case .user(_, let token), .key(_, let token): token
            }
        }
        var description: String {
            switch self {
            case .user(let role, _): "user(\(role.rawValue))"
            case .key(let role, _): "key(\(role.rawValue))"
            }
        }
        var isKey: Bool { if case .key = self { true } else { false } }
    }

    static let cases: [Case] = [
        Case(method: .get, path: "/v1/orgs/{org}", minimum: .viewer, success: 200),
        Case(method: .patch, path: "/v1/orgs/{org}", minimum: .admin, success: 200, body: ["name": "Acme Renamed"]),
        Case(method: .get, path: "/v1/orgs/{org}/members", minimum: .viewer, success: 200),
        Case(method: .patch, path: "/v1/orgs/{org}/members/{id}", minimum: .admin, success: 200, body: ["role": "viewer"],
             prepare: { $0.targetID.uuidString }),
        Case(method: .delete, path: "/v1/orgs/{org}/members/{id}", minimum: .admin, success: 204,
             prepare: { $0.targetID.uuidString },
             restore: { fixture in
                 try await fixture.api.env.database.inTransaction { connection in
                     try await MembershipRepository(logger: fixture.api.env.logger).add(
                         orgID: fixture.orgID, userID: fixture.targetID, role: .viewer, on: connection)
                 }
             }),
        Case(method: .post, path: "/v1/orgs/{org}/invitations", minimum: .admin, success: 201, body: ["email": "{unique}@example.com", "role": "member"]),
        Case(method: .get, path: "/v1/orgs/{org}/invitations", minimum: .admin, success: 200),
        Case(method: .delete, path: "/v1/orgs/{org}/invitations/{id}", minimum: .admin, success: 204,
             prepare: { fixture in
                 let response = try await fixture.api.call(
                     .post, "/v1/orgs/acme/invitations", token: fixture.owner.access,
                     json: ["email": "inv-\(UUID().uuidString.prefix(8))@example.com", "role": "viewer"])
                 return response.string("id") ?? "missing"
             }),
        Case(method: .post, path: "/v1/orgs/{org}/api-keys", minimum: .admin, success: 201, body: ["name": "ci"], scopes: ["read"]),
        Case(method: .get, path: "/v1/orgs/{org}/api-keys", minimum: .admin, success: 200),
        Case(method: .delete, path: "/v1/orgs/{org}/api-keys/{id}", minimum: .admin, success: 204,
             prepare: { fixture in
                 let response = try await fixture.api.call(
                     .post, "/v1/orgs/acme/api-keys", token: fixture.owner.access, json: ["name": "doomed", "scopes": ["read"]])
                 return response.string("id") ?? "missing"
             }),
        Case(method: .get, path: "/v1/orgs/{org}/subscription", minimum: .viewer, success: 200),
        Case(method: .put, path: "/v1/orgs/{org}/subscription", minimum: .owner, success: 200, body: ["plan": "pro"]),
        Case(method: .get, path: "/v1/orgs/{org}/audit-log", minimum: .admin, success: 200),
        // Only the denied callers run here; the owner deletes the organisation at the end of the test.
        Case(method: .delete, path: "/v1/orgs/{org}", minimum: .owner, success: 204),
    ]

    @Test func everyRoleAndKeyScopeOnEveryOrganizationRouteAndTheCrossOrganizationSweep() async throws {
        try await TestEnvironment.with { env in
            try await APIHarness.run(env) { api in
                let hash = try await PasswordHasher().hash(testPassword)
                var ids: [String: UUID] = [:]
                for name in ["owner", "admin", "member", "viewer", "target", "outsider"] {
                    ids[name] = try await api.seedUser("\(name)@example.com", passwordHash: hash)
                }
                let owner = try await api.login("owner@example.com")
                let outsider = try await api.login("outsider@example.com")

                #expect(try await api.call(.post, "/v1/orgs", token: owner.access, json: ["slug": "acme", "name": "Acme"]).status == 201)
                let taken = try await api.call(.post, "/v1/orgs", token: outsider.access, json: ["slug": "acme", "name": "Other"])
                #expect(taken.status == 409 && taken.errorCode == "slug_taken")
                let badSlug = try await api.call(.post, "/v1/orgs", token: outsider.access, json: ["slug": "Bad Slug!", "name": "B"])
                #expect(badSlug.status == 400 && (badSlug.json["error"] as? [String: Any])?["field"] as? String == "slug")
                #expect(try await api.call(.post, "/v1/orgs", token: outsider.access, json: ["slug": "beta", "name": "Beta"]).status == 201)
                // The free plan has 3 seats; the matrix needs five members.
                #expect(try await api.call(.put, "/v1/orgs/acme/subscription", token: owner.access, json: ["plan": "pro"]).status == 200)

                // Members join through invitations.
                var callers: [Caller] = [.user(.owner, owner.access)]
                for (name, role) in [("admin", MemberRole.admin), ("member", .member), ("viewer", .viewer), ("target", .member)] {
                    let invitation = try await api.call(
                        .post, "/v1/orgs/acme/invitations", token: owner.access, json: ["email": "\(name)@example.com", "role": role.rawValue])
                    #expect(invitation.status == 201)
                    let tokens = try await api.login("\(name)@example.com")
                    let token = try #require(invitation.string("token"))
                    let wrongPerson = try await api.call(.post, "/v1/invitations/\(token)/accept", token: outsider.access)
                    #expect(wrongPerson.status == 403)
                    let accepted = try await api.call(.post, "/v1/invitations/\(token)/accept", token: tokens.access)
                    #expect(accepted.status == 200, "\(accepted.body)")
                    #expect(try await api.call(.post, "/v1/invitations/\(token)/accept", token: tokens.access).status == 410)
                    if name != "target" { callers.append(.user(role, tokens.access)) }
                }
                let members = try await api.call(.get, "/v1/orgs/acme/members", token: owner.access)
                #expect((members["members"] as? [[String: Any]])?.count == 5)
                for (scope, role) in [("read", MemberRole.viewer), ("write", .member), ("admin", .admin)] {
                    let key = try await api.call(.post, "/v1/orgs/acme/api-keys", token: owner.access, json: ["name": scope, "scopes": [scope]])
                    #expect(key.status == 201)
                    callers.append(.key(role, try #require(key.string("secret"))))
                }
                let beta = try await api.call(.get, "/v1/orgs/beta", token: outsider.access)
                let orgID = try await env.database.withConnection { connection in
                    try await OrganizationAccountRepository(logger: env.logger).find(slug: "acme", on: connection)!.id
                }
                let fixture = Fixture(api: api, owner: owner, orgID: orgID, targetID: ids["target"]!)
                #expect(beta.status == 200)

                // The matrix: each caller on each route.
                for testCase in Self.cases {
                    for caller in callers {
                        let allowed = caller.role >= testCase.minimum
                        if allowed && testCase.method == .delete && testCase.path == "/v1/orgs/{org}" { continue }
                        let id = try await testCase.prepare?(fixture) ?? ""
                        let response = try await api.call(
                            testCase.method, Self.path(testCase, org: "acme", id: id), token: caller.token, json: Self.body(testCase))
                        let expected = allowed ? testCase.success : 403
                        #expect(response.status == expected, "\(caller) \(testCase.method) \(testCase.path): \(response.status) \(response.body)")
                        if allowed { try await testCase.restore?(fixture) }
                    }
                }

                // Cross-organisation sweep: a member of A (user or key), and a non-member, get 404 on every
                // route of B — the same answer as for an organisation that does not exist.
                let acmeAdminKey = callers.first { $0.isKey && $0.role == .admin }!.token
                for testCase in Self.cases {
                    let probes: [(String, String, String)] = [
                        ("acme owner on beta", owner.access, "beta"), ("acme admin key on beta", acmeAdminKey, "beta"),
                        ("outsider on acme", outsider.access, "acme"), ("outsider on a missing org", outsider.access, "nope"),
                    ]
                    for (label, token, org) in probes {
                        let response = try await api.call(
                            testCase.method, Self.path(testCase, org: org, id: UUID().uuidString), token: token, json: Self.body(testCase))
                        #expect(response.status == 404 && response.errorCode == "not_found", "\(label): \(testCase.method) \(testCase.path) → \(response.status)")
                    }
                }

                // Keys are for organisation routes only.
                let keyOnMe = try await api.call(.get, "/v1/me", token: acmeAdminKey)
                #expect(keyOnMe.status == 403 && keyOnMe.errorCode == "user_token_required")
                let adminTokens = callers.first { !$0.isKey && $0.role == .admin }!.token
                let ownerKey = try await api.call(
                    .post, "/v1/orgs/acme/api-keys", token: acmeAdminKey, json: ["name": "x", "scopes": ["admin"]])
                #expect(ownerKey.status == 201)

                // Owner rules: admins cannot touch owners or grant ownership; the last owner stays.
                let ownerID = ids["owner"]!.uuidString
                #expect(try await api.call(.patch, "/v1/orgs/acme/members/\(ownerID)", token: adminTokens, json: ["role": "member"]).status == 403)
                #expect(try await api.call(.delete, "/v1/orgs/acme/members/\(ownerID)", token: adminTokens).status == 403)
                #expect(try await api.call(.patch, "/v1/orgs/acme/members/\(fixture.targetID)", token: adminTokens, json: ["role": "owner"]).status == 403)
                #expect(try await api.call(.post, "/v1/orgs/acme/invitations", token: adminTokens, json: ["email": "o@example.com", "role": "owner"]).status == 403)
                let demoteSelf = try await api.call(.patch, "/v1/orgs/acme/members/\(ownerID)", token: owner.access, json: ["role": "admin"])
                #expect(demoteSelf.status == 409 && demoteSelf.errorCode == "last_owner")
                let leave = try await api.call(.delete, "/v1/orgs/acme/members/\(ownerID)", token: owner.access)
                #expect(leave.status == 409 && leave.errorCode == "last_owner")
                #expect(try await api.call(.patch, "/v1/orgs/acme/members/\(fixture.targetID)", token: owner.access, json: ["role": "owner"]).status == 200)
                #expect(try await api.call(.delete, "/v1/orgs/acme/members/\(ownerID)", token: owner.access).status == 204)
                #expect(try await api.call(.get, "/v1/orgs/acme", token: owner.access).status == 404)
                let badRole = try await api.call(.patch, "/v1/orgs/acme/members/\(fixture.targetID)", token: adminTokens, json: ["role": "superuser"])
                #expect(badRole.status == 400 && (badRole.json["error"] as? [String: Any])?["field"] as? String == "role")

                // A revoked key stops at once.
                let revokedID = try #require(ownerKey.string("id"))
                let revokedKey = try #require(ownerKey.string("secret"))
                #expect(try await api.call(.get, "/v1/orgs/acme", token: revokedKey).status == 200)
                #expect(try await api.call(.delete, "/v1/orgs/acme/api-keys/\(revokedID)", token: adminTokens).status == 204)
                let afterRevoke = try await api.call(.get, "/v1/orgs/acme", token: revokedKey)
                #expect(afterRevoke.status == 401 && afterRevoke.errorCode == "invalid_api_key")
                let listed = try await api.call(.get, "/v1/orgs/acme/api-keys", token: adminTokens)
                #expect(!listed.body.contains(revokedKey) && !listed.body.contains("\"secret\""))
                #expect(listed.body.contains(try #require(ownerKey.string("prefix"))))

                // The (new) owner deletes the organisation; its audit entries stay.
                let target = try await api.login("target@example.com")
                #expect(try await api.call(.delete, "/v1/orgs/acme", token: target.access).status == 204)
                #expect(try await api.call(.get, "/v1/orgs/acme", token: target.access).status == 404)
                #expect(try await env.count("SELECT count(*)::int8 FROM audit_log WHERE org_id = \(orgID)") > 20)
                try await api.expectAudited()
            }
        }
    }

    static func path(_ testCase: Case, org: String, id: String) -> String {
        testCase.path.replacingOccurrences(of: "{org}", with: org).replacingOccurrences(of: "{id}", with: id)
    }

    static func body(_ testCase: Case) -> [String: Any]? {
        guard testCase.body != nil || testCase.scopes != nil else { return nil }
        var body: [String: Any] = [:]
        for (key, value) in testCase.body ?? [:] {
            body[key] = value.replacingOccurrences(of: "{unique}", with: "u" + UUID().uuidString.prefix(8).lowercased())
        }
        if let scopes = testCase.scopes { body["scopes"] = scopes }
        return body
    }
}
