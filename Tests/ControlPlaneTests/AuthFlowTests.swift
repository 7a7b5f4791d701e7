import ControlPlane
import Foundation
import HTTPTypes
import JWTKit
import Testing
import TestSupport

/// Accounts and authentication over HTTP against the real server and database.
@Suite(.serialized)
struct AuthFlowTests {
    @Test func registerLoginRefreshRotationReuseAndLogout() async throws {
        try await TestEnvironment.with { env in
            try await APIHarness.run(env) { api in
                // Bad input: 400 naming the field.
                let invalid: [(body: String, field: String?)] = [
                    (#"{"email": "not-an-email", "password": "long enough password", "name": "Ann"}"#, "email"),
                    (#"{"email": "ann@example.com", "password": "short", "name": "Ann"}"#, "password"),
                    (#"{"email": "ann@example.com", "password": "long enough password", "name": "Ann", "admin": true}"#, "admin"),
                    (#"{"email": "ann@example.com", "password": 1234567890123, "name": "Ann"}"#, "password"),
                    (#"{"email": "ann@example.com", "password": "long enough password"}"#, "name"),
                    (#"{"email": "ann@example.com", "password": "long enough password", "name": "\#(String(repeating: "x", count: 201))"}"#, "name"),
                    (#"{"email": "ann@example.com", "password": "\#(String(repeating: "p", count: 73))", "name": "Ann"}"#, "password"),
                    (#"{"email": "ann@example.com", "#, nil),
                    (#"[1, 2]"#, nil),
                ]
                for (body, field) in invalid {
                    let response = try await api.call(.post, "/v1/auth/register", raw: body)
                    #expect(response.status == 400, "\(body)")
                    if let field {
                        #expect((response.json["error"] as? [String: Any])?["field"] as? String == field, "\(body) → \(response.body)")
                    }
                }

                let registered = try await api.call(
                    .post, "/v1/auth/register", json: ["email": "Ann@Example.com", "password": testPassword, "name": "Ann"])
                #expect(registered.status == 201)
                #expect(registered.string("email") == "ann@example.com")
                #expect(!registered.body.contains(testPassword) && !registered.body.contains("password_hash"))
                let duplicate = try await api.call(
                    .post, "/v1/auth/register", json: ["email": "ann@example.com", "password": testPassword, "name": "Ann"])
                #expect(duplicate.status == 409 && duplicate.errorCode == "email_taken")

                // Login: wrong password, unknown account, then right.
                let wrong = try await api.call(.post, "/v1/auth/login", json: ["email": "ann@example.com", "password": "wrong password!"])
                #expect(wrong.status == 401 && wrong.errorCode == "invalid_credentials")
                let unknown = try await api.call(.post, "/v1/auth/login", json: ["email": "nobody@example.com", "password": "wrong password!"])
                #expect(unknown.status == 401 && unknown.errorCode == "invalid_credentials")
                #expect(try await env.count("SELECT count(*)::int8 FROM audit_log WHERE action = 'auth.login_failed'") == 2)

                let login = try await api.call(.post, "/v1/auth/login", json: ["email": "ann@example.com", "password": testPassword])
                #expect(login.status == 200)
                #expect(login["expires_in"] as? Int == 900)
                let first = Tokens(access: login.string("access_token")!, refresh: login.string("refresh_token")!)

                let me = try await api.call(.get, "/v1/me", token: first.access)
                #expect(me.status == 200 && me.string("email") == "ann@example.com")
                let anonymous = try await api.call(.get, "/v1/me")
                #expect(anonymous.status == 401)
                let renamed = try await api.call(.patch, "/v1/me", token: first.access, json: ["name": "Ann Smith"])
                #expect(renamed.status == 200 && renamed.string("name") == "Ann Smith")
                let badPatch = try await api.call(.patch, "/v1/me", token: first.access, json: ["password": "another long password"])
                #expect(badPatch.status == 400 && (badPatch.json["error"] as? [String: Any])?["field"] as? String == "current_password")

                // Refresh rotates: a new pair, the old refresh token stops working.
                let rotated = try await api.call(.post, "/v1/auth/refresh", json: ["refresh_token": first.refresh])
                #expect(rotated.status == 200)
                let second = Tokens(access: rotated.string("access_token")!, refresh: rotated.string("refresh_token")!)
                #expect(second.refresh != first.refresh)
                #expect(try await api.call(.get, "/v1/me", token: second.access).status == 200)

                // Reuse of the rotated token: refused, and the whole family is revoked.
                let reuse = try await api.call(.post, "/v1/auth/refresh", json: ["refresh_token": first.refresh])
                #expect(reuse.status == 401 && reuse.errorCode == "refresh_token_reused")
                let afterReuse = try await api.call(.post, "/v1/auth/refresh", json: ["refresh_token": second.refresh])
                #expect(afterReuse.status == 401)
                let revokedAccess = try await api.call(.get, "/v1/me", token: second.access)
                #expect(revokedAccess.status == 401 && revokedAccess.errorCode == "session_ended")
                #expect(try await env.count("SELECT count(*)::int8 FROM audit_log WHERE action = 'auth.refresh_token_reused'") == 1)

                // Logout ends the session.
                let third = try await api.login("ann@example.com")
                #expect(try await api.call(.post, "/v1/auth/logout", json: ["refresh_token": third.refresh]).status == 204)
                #expect(try await api.call(.post, "/v1/auth/refresh", json: ["refresh_token": third.refresh]).status == 401)
                #expect(try await api.call(.get, "/v1/me", token: third.access).status == 401)

                // No response and no audit row carries a secret.
                let leaked = try await env.count(
                    "SELECT count(*)::int8 FROM audit_log WHERE details::text LIKE '%' || \(testPassword) || '%' OR details::text LIKE '%idr_%'")
                #expect(leaked == 0)
                try await api.expectAudited()
            }
        }
    }

    @Test func forgedExpiredAndForeignAlgorithmTokensAreRefused() async throws {
        try await TestEnvironment.with { env in
            try await APIHarness.run(env) { api in
                let hash = try await PasswordHasher().hash(testPassword)
                _ = try await api.seedUser("bob@example.com", passwordHash: hash)
                let tokens = try await api.login("bob@example.com")
                #expect(try await api.call(.get, "/v1/me", token: tokens.access).status == 200)

                let parts = tokens.access.split(separator: ".").map(String.init)
                let payload = try JSONSerialization.jsonObject(with: base64URLDecode(parts[1])) as! [String: Any]
                let subject = payload["sub"] as! String
                let session = payload["sid"] as! String

                struct Claims: JWTPayload {
                    var sub: SubjectClaim
                    var sid: String
                    var iss: IssuerClaim
                    var iat: IssuedAtClaim
                    var exp: ExpirationClaim
                    func verify(using algorithm: some JWTAlgorithm) async throws {}
                }
                func claims(expiresIn seconds: TimeInterval) -> Claims {
                    Claims(sub: .init(value: subject), sid: session, iss: .init(value: "intellidocs"), iat: .init(value: Date()),
                           exp: .init(value: Date().addingTimeInterval(seconds)))
                }
                let right = JWTKeyCollection()
                await right.add(hmac: HMACKey(from: testJWTSecret), digestAlgorithm: .sha256)
                let valid = try await right.sign(claims(expiresIn: 600))
                #expect(try await api.call(.get, "/v1/me", token: valid).status == 200)

                let expired = try await right.sign(claims(expiresIn: -60))
                let expiredResponse = try await api.call(.get, "/v1/me", token: expired)
                #expect(expiredResponse.status == 401 && expiredResponse.errorCode == "token_expired")

                let other = JWTKeyCollection()
                await other.add(hmac: HMACKey(from: "another-secret-that-is-long-enough-0123456789"), digestAlgorithm: .sha256)
                #expect(try await api.call(.get, "/v1/me", token: try await other.sign(claims(expiresIn: 600))).status == 401)

                let hs512 = JWTKeyCollection()
                await hs512.add(hmac: HMACKey(from: testJWTSecret), digestAlgorithm: .sha512)
                #expect(try await api.call(.get, "/v1/me", token: try await hs512.sign(claims(expiresIn: 600))).status == 401)

                let noneHeader = base64URLEncode(Data(#"{"alg":"none","typ":"JWT"}"#.utf8))
                #expect(try await api.call(.get, "/v1/me", token: "\(noneHeader).\(parts[1]).").status == 401)
                #expect(try await api.call(.get, "/v1/me", token: "\(parts[0]).\(parts[1]).\(parts[2].dropLast(2))xx").status == 401)
                #expect(try await api.call(.get, "/v1/me", token: "garbage").status == 401)
            }
        }
    }

    @Test func failedLoginsAreThrottledPerAccountAndPerAddress() async throws {
        try await TestEnvironment.with { env in
            try await APIHarness.run(env, configure: { configuration in
                configuration.loginThrottle.accountFailures = 3
                configuration.loginThrottle.ipFailures = 5
            }) { api in
                let hash = try await PasswordHasher().hash(testPassword)
                _ = try await api.seedUser("carol@example.com", passwordHash: hash)
                _ = try await api.seedUser("dave@example.com", passwordHash: hash)
                for _ in 0..<3 {
                    let response = try await api.call(.post, "/v1/auth/login", json: ["email": "carol@example.com", "password": "wrong password!"])
                    #expect(response.status == 401)
                }
                // The account is locked for the window, even with the right password.
                let locked = try await api.call(.post, "/v1/auth/login", json: ["email": "carol@example.com", "password": testPassword])
                #expect(locked.status == 429 && locked.errorCode == "login_throttled")
                #expect(Int(locked.headers[.retryAfter] ?? "") ?? 0 >= 1)
                // Another account still logs in; two more failures from this address reach the IP limit.
                _ = try await api.login("dave@example.com")
                for email in ["eve1@example.com", "eve2@example.com"] {
                    #expect(try await api.call(.post, "/v1/auth/login", json: ["email": email, "password": "wrong password!"]).status == 401)
                }
                let byAddress = try await api.call(.post, "/v1/auth/login", json: ["email": "dave@example.com", "password": testPassword])
                #expect(byAddress.status == 429 && byAddress.headers[.retryAfter] != nil)
            }
        }
    }
}

func base64URLDecode(_ text: String) -> Data {
    var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while base64.count % 4 != 0 { base64 += "=" }
    return Data(base64Encoded: base64) ?? Data()
}

func base64URLEncode(_ data: Data) -> String {
    data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}
