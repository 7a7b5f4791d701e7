import HTTPTypes
import Hummingbird
import HummingbirdAuth
import Storage

/// Requires `Authorization: Bearer …` with either a JWT access token (its session must still be live)
/// or an API key (looked up by its prefix, compared by SHA-256; a revoked key fails at once), and puts
/// the caller in `context.principal`.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let services: APIServices

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let bearer = request.headers.bearer?.token, !bearer.isEmpty else {
            throw APIError.unauthorized()
        }
        var context = context
        context.principal = try await authenticate(bearer)
        return try await next(request, context)
    }

    func authenticate(_ token: String) async throws -> Principal {
        if token.hasPrefix(APIKeySecret.marker) {
            guard let presented = APIKeySecret.parse(token),
                let (key, storedHash) = try await services.database.withConnection({ connection in
                    try await services.apiKeys.live(prefix: presented.prefix, on: connection)
                }),
                SecretToken.constantTimeEquals(SecretToken.hash(presented.key), storedHash)
            else {
                throw APIError.unauthorized("the API key is unknown or revoked", code: "invalid_api_key")
            }
            return .apiKey(APIKeyPrincipal(
                id: key.id, orgID: key.orgID, prefix: key.prefix, scopes: key.scopes.compactMap(APIKeyScope.init(rawValue:))))
        }
        let (userID, sessionID) = try await services.tokens.verify(token)
        guard let user = try await services.database.withConnection({ connection in
            try await services.sessions.activeUser(userID: userID, sessionID: sessionID, on: connection)
        }) else {
            throw APIError.unauthorized("the session of this access token has ended; log in again", code: "session_ended")
        }
        return .user(UserPrincipal(
            id: user.id, email: user.email, name: user.name, isPlatformAdmin: user.isPlatformAdmin, sessionID: sessionID))
    }
}

/// Resolves `{org}` and the caller's place in it, once per request. A caller who is not a member (or an
/// API key of another organisation) gets the same `404` as for an organisation that does not exist.
struct OrganizationAccessMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let services: APIServices

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let principal = try context.requirePrincipal()
        guard let slug = context.parameters.get("org") else { throw APIError.notFound("organisation") }
        let resolved: (OrganizationAccount, MemberRole)? = try await services.database.withConnection { connection in
            guard let account = try await services.organizations.find(slug: slug, on: connection) else { return nil }
            switch principal {
            case .user(let user):
                guard let role = try await services.memberships.role(orgID: account.id, userID: user.id, on: connection) else { return nil }
                return (account, role)
            case .apiKey(let key):
                return key.orgID == account.id ? (account, key.role) : nil
            }
        }
        guard let (account, role) = resolved else { throw APIError.notFound("organisation") }
        var context = context
        context.access = OrganizationAccess(account: account, role: role, standing: services.quotas.standing(of: account))
        return try await next(request, context)
    }
}

/// Lets only platform admins through (`/v1/admin/…`).
struct PlatformAdminMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let user = try context.requireUser()
        guard user.isPlatformAdmin else {
            throw APIError.forbidden("platform administration needs the platform-admin flag (intellidocs admin grant EMAIL)")
        }
        return try await next(request, context)
    }
}
