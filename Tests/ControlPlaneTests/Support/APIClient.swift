import ControlPlane
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Storage
import Synchronization
import Testing
import TestSupport

/// 64 bytes: long enough for the HS512 key the tests forge tokens with.
let testJWTSecret = "test-only-jwt-secret-0123456789-abcdefghijklmnopqrstuvwxyz-012345"
let testBillingSecret = "test-only-billing-secret"
/// The password of every seeded test user.
let testPassword = "correct horse battery staple"

/// Runs the real application (live HTTP server on a free loopback port, AsyncHTTPClient as the client)
/// against the test's database and vhost.
enum APIHarness {
    static func configuration(_ env: TestEnvironment) -> APIConfiguration {
        APIConfiguration(
            host: "127.0.0.1", port: 0, jwtSecret: testJWTSecret, billingWebhookSecret: testBillingSecret,
            amqpURL: env.settings.amqpURL, amqpManagementURL: env.settings.amqpManagementURL)
    }

    static func dependencies(_ env: TestEnvironment) throws -> APIDependencies {
        APIDependencies(database: env.database, pipeline: try env.pipeline(), plans: try env.plans(), logger: env.logger)
    }

    static func run<T: Sendable>(
        _ env: TestEnvironment, configure: (inout APIConfiguration) -> Void = { _ in },
        dependencies configureDependencies: (inout APIDependencies) -> Void = { _ in },
        _ body: @Sendable (APIClient) async throws -> T
    ) async throws -> T {
        var configuration = configuration(env)
        configure(&configuration)
        var dependencies = try dependencies(env)
        configureDependencies(&dependencies)
        let app = try await buildApplication(configuration, dependencies)
        let recorder = AuditRecorder()
        return try await app.test(.ahc(.http)) { client in
            try await body(APIClient(client: client, env: env, recorder: recorder))
        }
    }
}

/// Request ids of successful mutating calls, checked against the audit log at the end of a test.
final class AuditRecorder: Sendable {
    private let ids = Mutex<[(id: String, call: String)]>([])
    func record(_ id: String, call: String) { ids.withLock { $0.append((id, call)) } }
    var all: [(id: String, call: String)] { ids.withLock { $0 } }
}

struct APIResponse: Sendable {
    let status: Int
    let headers: HTTPFields
    let body: String

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }
    var requestID: String? { headers[HTTPField.Name("X-Request-ID")!] }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    subscript(_ key: String) -> Any? { json[key] }
    func string(_ key: String) -> String? { json[key] as? String }
}

struct Tokens: Sendable {
    let access: String
    let refresh: String
}

struct APIClient: Sendable {
    let client: any TestClientProtocol
    let env: TestEnvironment
    let recorder: AuditRecorder

    /// Sends one request. 2xx answers to POST/PUT/PATCH/DELETE are recorded for `expectAudited()`
    /// unless `audited` is false (a call that changes nothing, like a duplicate webhook).
    @discardableResult
    func call(
        _ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: [String: Any]? = nil, raw: String? = nil,
        bytes: [UInt8]? = nil, headers: HTTPFields = [:], audited: Bool = true
    ) async throws -> APIResponse {
        var fields = headers
        if let token { fields[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
        } else if let raw {
            body = ByteBuffer(string: raw)
        } else if let bytes {
            body = ByteBuffer(bytes: bytes)
        }
        if body != nil, fields[.contentType] == nil { fields[.contentType] = "application/json" }
        fields[.userAgent] = "ControlPlaneTests"
        let response = try await client.executeRequest(uri: path, method: method, headers: fields, body: body)
        let result = APIResponse(status: Int(response.status.code), headers: response.headers, body: String(buffer: response.body))
        #expect(result.requestID?.isEmpty == false, "\(method) \(path) has no X-Request-ID")
        if result.status >= 400 {
            // Every error has the one shape.
            let error = result.json["error"] as? [String: Any]
            #expect(error?["code"] is String && error?["message"] is String, "\(method) \(path) error shape: \(result.body)")
            #expect(error?["request_id"] as? String == result.requestID, "\(method) \(path) request_id")
        }
        if audited, method != .get, (200..<300).contains(result.status), let id = result.requestID {
            recorder.record(id, call: "\(method) \(path)")
        }
        return result
    }

    /// Creates a user straight in the database with `testPasswordHash` (bcrypt is slow: one hash per test).
    func seedUser(_ email: String, name: String? = nil, passwordHash: String) async throws -> UUID {
        try await env.database.inTransaction { connection in
            try await UserRepository(logger: env.logger).create(
                email: email, name: name ?? email, passwordHash: passwordHash, on: connection
            ).id
        }
    }

    func login(_ email: String, password: String = testPassword) async throws -> Tokens {
        let response = try await call(.post, "/v1/auth/login", json: ["email": email, "password": password])
        guard response.status == 200, let access = response.string("access_token"), let refresh = response.string("refresh_token") else {
            throw TestFailure("login of \(email) answered \(response.status): \(response.body)")
        }
        return Tokens(access: access, refresh: refresh)
    }

    /// Every recorded mutating call has an audit entry with its request id.
    func expectAudited(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let calls = recorder.all
        let ids = calls.map(\.id)
        let rows = try await env.database.client.query(
            "SELECT DISTINCT request_id FROM audit_log WHERE request_id = ANY(\(ids)::text[])", logger: env.logger)
        var found = Set<String>()
        for try await id in rows.decode(String.self) { found.insert(id) }
        for call in calls where !found.contains(call.id) {
            Issue.record("no audit entry for \(call.call) (request \(call.id))", sourceLocation: sourceLocation)
        }
        #expect(!calls.isEmpty, sourceLocation: sourceLocation)
    }
}

/// A `multipart/form-data` body: files (field name, file name, bytes) and text fields.
struct MultipartBody {
    let boundary = "----intellidocs-test-" + UUID().uuidString
    var parts: [(name: String, filename: String?, bytes: [UInt8])] = []

    mutating func file(_ filename: String, _ bytes: [UInt8], name: String = "file") { parts.append((name, filename, bytes)) }
    mutating func field(_ name: String, _ value: String) { parts.append((name, nil, Array(value.utf8))) }

    var headers: HTTPFields { [.contentType: "multipart/form-data; boundary=\(boundary)"] }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        for part in parts {
            var head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\""
            if let filename = part.filename { head += "; filename=\"\(filename)\"\r\nContent-Type: application/octet-stream" }
            head += "\r\n\r\n"
            out += Array(head.utf8) + part.bytes + Array("\r\n".utf8)
        }
        out += Array("--\(boundary)--\r\n".utf8)
        return out
    }
}
