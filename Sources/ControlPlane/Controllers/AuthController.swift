import Foundation
import HTTPTypes
import Hummingbird
import Storage

/// `POST /v1/auth/register|login|refresh|logout`: no bearer token needed.
///
/// Login sessions: a login starts a session and hands out a JWT access token (about 15 minutes) and a
/// random refresh token (stored hashed). `refresh` rotates the refresh token: the old one stops
/// working, and presenting it again is taken as theft — the whole session (its token family and the
/// access tokens naming it) is revoked and the reuse is audited.
struct AuthController {
    let services: APIServices

    func register(on router: some RouterMethods<APIRequestContext>) {
        router.post("register", use: registerUser)
        router.post("login", use: login)
        router.post("refresh", use: refresh)
        router.post("logout", use: logout)
    }

    struct RegisterInput: JSONInput {
        static let fields: Set<String> = ["email", "password", "name"]
        let email: String
        let password: String
        let name: String

        func validate() throws(APIError) {
            _ = try Validate.email(email)
            try Validate.password(password)
            _ = try Validate.text(name, field: "name")
        }
    }

    struct UserBody: Encodable, Sendable {
        let id: UUID
        let email: String
        let name: String
        let isPlatformAdmin: Bool
        let createdAt: Date

        init(_ user: UserRecord) {
            id = user.id
            email = user.email
            name = user.name
            isPlatformAdmin = user.isPlatformAdmin
            createdAt = user.createdAt
        }

        enum CodingKeys: String, CodingKey {
            case id, email, name, isPlatformAdmin = "is_platform_admin", createdAt = "created_at"
        }
    }

    @Sendable func registerUser(_ request: Request, context: APIRequestContext) async throws -> Reply<UserBody> {
        let input = try await request.decodeInput(RegisterInput.self, context: context)
        let email = try Validate.email(input.email)
        let name = try Validate.text(input.name, field: "name")
        let hash = try await services.passwords.hash(input.password)
        let user = try await services.database.inTransaction { connection in
            let user: UserRecord
            do {
                user = try await services.users.create(email: email, name: name, passwordHash: hash, on: connection)
            } catch let error as StorageError where error.code == .conflict {
                throw APIError.conflict("an account with this e-mail address already exists", code: "email_taken")
            }
            try await services.audit.append(
                AuditEntry("user.registered", orgID: nil, actorType: .user, actorID: user.id, actorLabel: user.email,
                           target: .user(user.id), request: request, context: context),
                on: connection)
            return user
        }
        return Reply(.created, UserBody(user))
    }

    struct LoginInput: JSONInput {
        static let fields: Set<String> = ["email", "password"]
        let email: String
        let password: String

        func validate() throws(APIError) {
            _ = try Validate.email(email)
            guard !password.isEmpty else { throw APIError.validation("password", "must not be empty") }
            guard password.utf8.count <= 1024 else { throw APIError.validation("password", "is too long") }
        }
    }

    struct TokenPair: Encodable, Sendable {
        let accessToken: String
        let refreshToken: String
        let expiresIn: Int
        let tokenType = "Bearer"

        enum CodingKeys: String, CodingKey {
            case accessToken = "access_token", refreshToken = "refresh_token", expiresIn = "expires_in", tokenType = "token_type"
        }
    }

    var throttle: LoginThrottle { LoginThrottle(limits: services.configuration.loginThrottle, rates: services.rates) }
    var refreshExpiry: Date { Date().addingTimeInterval(TimeInterval(services.configuration.refreshTokenLifetime.components.seconds)) }

    @Sendable func login(_ request: Request, context: APIRequestContext) async throws -> OK<TokenPair> {
        let input = try await request.decodeInput(LoginInput.self, context: context)
        let email = try Validate.email(input.email)
        let credentials = try await services.database.withConnection { connection in
            try await throttle.check(email: email, ip: context.remoteAddress, on: connection)
            return try await services.users.credentials(email: email, on: connection)
        }
        let valid: Bool
        if let credentials {
            valid = try await services.passwords.verify(input.password, hash: credentials.passwordHash)
        } else {
            try await services.passwords.verifyDecoy(input.password)
            valid = false
        }
        guard let user = credentials?.user, valid else {
            try await services.database.inTransaction { connection in
                try await throttle.recordFailure(email: email, ip: context.remoteAddress, on: connection)
                try await services.audit.append(
                    AuditEntry("auth.login_failed", orgID: nil, actorType: credentials == nil ? .anonymous : .user,
                               actorID: credentials?.user.id, actorLabel: email, request: request, context: context),
                    on: connection)
            }
            throw APIError.unauthorized("the e-mail address or the password is wrong", code: "invalid_credentials")
        }
        let refreshToken = SecretToken.generate(prefix: "idr_")
        let sessionID = try await services.database.inTransaction { connection in
            let sessionID = try await services.sessions.startSession(
                userID: user.id, tokenHash: SecretToken.hash(refreshToken), expiresAt: refreshExpiry, on: connection)
            try await throttle.recordSuccess(email: email, on: connection)
            try await services.audit.append(
                AuditEntry("auth.login", orgID: nil, actorType: .user, actorID: user.id, actorLabel: user.email,
                           target: .session(sessionID), request: request, context: context),
                on: connection)
            return sessionID
        }
        let access = try await services.tokens.issue(userID: user.id, sessionID: sessionID)
        return OK(TokenPair(accessToken: access.token, refreshToken: refreshToken, expiresIn: access.expiresIn))
    }

    struct RefreshInput: JSONInput {
        static let fields: Set<String> = ["refresh_token"]
        let refreshToken: String
        enum CodingKeys: String, CodingKey { case refreshToken = "refresh_token" }

        func validate() throws(APIError) {
            guard !refreshToken.isEmpty, refreshToken.utf8.count <= 200 else {
                throw APIError.validation("refresh_token", "must be the refresh token of a login")
            }
        }
    }

    @Sendable func refresh(_ request: Request, context: APIRequestContext) async throws -> OK<TokenPair> {
        let input = try await request.decodeInput(RefreshInput.self, context: context)
        let newToken = SecretToken.generate(prefix: "idr_")
        let outcome = try await services.database.inTransaction { connection in
            let outcome = try await services.sessions.rotate(
                tokenHash: SecretToken.hash(input.refreshToken), newTokenHash: SecretToken.hash(newToken),
                newExpiresAt: refreshExpiry, on: connection)
            if case .rotated(let userID, let sessionID) = outcome {
                try await services.audit.append(
                    AuditEntry("auth.token_refreshed", orgID: nil, actorType: .user, actorID: userID, actorLabel: nil,
                               target: .session(sessionID), request: request, context: context),
                    on: connection)
            }
            if case .reused(let userID, let sessionID) = outcome {
                let email = try await services.users.find(id: userID, on: connection)?.email
                try await services.audit.append(
                    AuditEntry("auth.refresh_token_reused", orgID: nil, actorType: .user, actorID: userID, actorLabel: email,
                               target: .session(sessionID), details: ["session_revoked": "true"],
                               request: request, context: context),
                    on: connection)
            }
            return outcome
        }
        switch outcome {
        case .rotated(let userID, let sessionID):
            let access = try await services.tokens.issue(userID: userID, sessionID: sessionID)
            return OK(TokenPair(accessToken: access.token, refreshToken: newToken, expiresIn: access.expiresIn))
        case .reused:
            context.logger.warning("refresh token reuse: session revoked")
            throw APIError.unauthorized(
                "this refresh token was already used; the session has been revoked for safety: log in again", code: "refresh_token_reused")
        case .invalid:
            throw APIError.unauthorized("the refresh token is unknown, expired or revoked: log in again", code: "invalid_refresh_token")
        }
    }

    @Sendable func logout(_ request: Request, context: APIRequestContext) async throws -> HTTPResponse.Status {
        let input = try await request.decodeInput(RefreshInput.self, context: context)
        try await services.database.inTransaction { connection in
            guard let (userID, sessionID) = try await services.sessions.revokeSession(
                tokenHash: SecretToken.hash(input.refreshToken), reason: "logout", on: connection)
            else { return }
            let email = try await services.users.find(id: userID, on: connection)?.email
            try await services.audit.append(
                AuditEntry("auth.logout", orgID: nil, actorType: .user, actorID: userID, actorLabel: email,
                           target: .session(sessionID), request: request, context: context),
                on: connection)
        }
        // Unknown or already-ended sessions answer the same: logout is idempotent and reveals nothing.
        return .noContent
    }
}
