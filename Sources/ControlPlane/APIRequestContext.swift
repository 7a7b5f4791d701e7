public import Hummingbird
import NIOCore

/// The request context of every route: the caller (once authenticated), the organisation resolved from
/// `{org}` (on organisation routes), and the facts the audit log records.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `AuthenticationMiddleware` on authenticated routes.
    public var principal: Principal?
    /// Set by `OrganizationAccessMiddleware` on `/v1/orgs/{org}/…` routes.
    public var access: OrganizationAccess?
    /// The peer's IP address (no proxy headers are trusted).
    public let remoteAddress: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress?.ipAddress
    }

    /// JSON request bodies are small: anything larger is refused before decoding.
    public var maxUploadSize: Int { 64 * 1024 }

    /// The id of this request, also in the `X-Request-ID` header, every log line and the audit log.
    public var requestID: String { id }

    public func requirePrincipal() throws(APIError) -> Principal {
        guard let principal else { throw APIError.unauthorized() }
        return principal
    }

    /// Account routes (`/v1/me`, creating organisations, accepting invitations) are for people, not keys.
    public func requireUser() throws(APIError) -> UserPrincipal {
        switch try requirePrincipal() {
        case .user(let user): return user
        case .apiKey:
            throw APIError.forbidden("this route needs a user's access token; API keys act only on their organisation's routes", code: "user_token_required")
        }
    }

    /// The organisation of an `/v1/orgs/{org}/…` route, after checking that the caller's role grants
    /// `permission` (403 otherwise; non-members never get this far: they get 404).
    public func require(_ permission: Permission) throws(APIError) -> OrganizationAccess {
        guard let access else { throw APIError.notFound("organisation") }
        guard access.role.permits(permission) else {
            throw APIError.forbidden("your role (\(access.role.rawValue)) does not allow \(permission.rawValue) in this organisation")
        }
        return access
    }
}
