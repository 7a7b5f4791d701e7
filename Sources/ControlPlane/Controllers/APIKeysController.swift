import Foundation
import Hummingbird
import Storage

/// `POST`/`GET /v1/orgs/{org}/api-keys`, `DELETE /v1/orgs/{org}/api-keys/{id}`.
///
/// The key (`idk_<8>_<secret>`) is returned once, at creation; the database keeps its SHA-256 hash and
/// the visible prefix `idk_<8>`. Revoking takes effect on the next request: every request looks the key
/// up afresh.
struct APIKeysController {
    let services: APIServices

    func register(on router: some RouterMethods<APIRequestContext>) {
        router.post("api-keys", use: create)
        router.get("api-keys", use: list)
        router.delete("api-keys/{id}", use: revoke)
    }

    struct CreateInput: JSONInput {
        static let fields: Set<String> = ["name", "scopes"]
        let name: String
        let scopes: [String]

        func validate() throws(APIError) {
            _ = try Validate.text(name, field: "name")
            guard !scopes.isEmpty else { throw APIError.validation("scopes", "must name at least one of read, write, admin") }
            guard scopes.count <= APIKeyScope.allCases.count, Set(scopes).count == scopes.count else {
                throw APIError.validation("scopes", "must not repeat a scope")
            }
            for (index, scope) in scopes.enumerated() where APIKeyScope(rawValue: scope) == nil {
                throw APIError.validation("scopes[\(index)]", "must be one of read, write, admin")
            }
        }
    }

    struct KeyBody: Encodable, Sendable {
        let id: UUID
        let name: String
        let prefix: String
        let scopes: [String]
        /// Only in the creation response.
        let secret: String?
        let createdAt: Date
        let createdBy: UUID?
        let lastUsedAt: Date?
        let revokedAt: Date?

        init(_ key: APIKeyRecord, secret: String? = nil) {
            id = key.id
            name = key.name
            prefix = key.prefix
            scopes = key.scopes
            self.secret = secret
            createdAt = key.createdAt
            createdBy = key.createdBy
            lastUsedAt = key.lastUsedAt
            revokedAt = key.revokedAt
        }

        enum CodingKeys: String, CodingKey {
            case id, name, prefix, scopes, secret, createdAt = "created_at", createdBy = "created_by", lastUsedAt = "last_used_at"
            case revokedAt = "revoked_at"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(name, forKey: .name)
            try container.encode(prefix, forKey: .prefix)
            try container.encode(scopes, forKey: .scopes)
            try container.encodeIfPresent(secret, forKey: .secret)
            try container.encode(createdAt, forKey: .createdAt)
            try container.encode(createdBy, forKey: .createdBy)
            try container.encode(lastUsedAt, forKey: .lastUsedAt)
            try container.encode(revokedAt, forKey: .revokedAt)
        }
    }

    struct KeyList: Encodable, Sendable {
        let apiKeys: [KeyBody]
        enum CodingKeys: String, CodingKey { case apiKeys = "api_keys" }
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Reply<KeyBody> {
        let access = try context.require(.apiKeysManage)
        let input = try await request.decodeInput(CreateInput.self, context: context)
        let scopes = input.scopes.compactMap(APIKeyScope.init(rawValue:))
        if let tooBroad = scopes.first(where: { $0.role > access.role }) {
            throw APIError.forbidden("a key's scopes cannot exceed your role: \(tooBroad.rawValue) needs \(tooBroad.role.rawValue)")
        }
        try access.requireCanAdd()
        let name = try Validate.text(input.name, field: "name")
        let secret = APIKeySecret.generate()
        let key = try await services.database.inTransaction { connection in
            let key = try await services.apiKeys.create(
                orgID: access.orgID, createdBy: context.principal?.user?.id, name: name, prefix: secret.prefix,
                secretHash: SecretToken.hash(secret.key), scopes: scopes.map(\.rawValue), on: connection)
            try await services.audit.append(
                AuditEntry("api_key.created", orgID: access.orgID, target: .apiKey(key.id),
                           details: ["prefix": key.prefix, "scopes": key.scopes.joined(separator: ",")],
                           request: request, context: context),
                on: connection)
            return key
        }
        return Reply(.created, KeyBody(key, secret: secret.key))
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> OK<KeyList> {
        let access = try context.require(.apiKeysManage)
        let keys = try await services.database.withConnection { connection in
            try await services.apiKeys.list(orgID: access.orgID, on: connection)
        }
        return OK(KeyList(apiKeys: keys.map { KeyBody($0) }))
    }

    @Sendable func revoke(_ request: Request, context: APIRequestContext) async throws -> HTTPResponse.Status {
        let access = try context.require(.apiKeysManage)
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else { throw APIError.notFound("API key") }
        try await services.database.inTransaction { connection in
            guard let key = try await services.apiKeys.revoke(orgID: access.orgID, id: id, on: connection) else {
                throw APIError.notFound("API key")
            }
            try await services.audit.append(
                AuditEntry("api_key.revoked", orgID: access.orgID, target: .apiKey(key.id), details: ["prefix": key.prefix],
                           request: request, context: context),
                on: connection)
        }
        return .noContent
    }
}
