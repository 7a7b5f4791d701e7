public import Foundation
import JWTKit

/// Signs and verifies the JWT access tokens: HS256 with the key from configuration
/// (`INTELLIDOCS_JWT_SECRET`), about 15 minutes long. Tokens with any other algorithm in their header
/// (`none`, `HS512`, `RS256`, …) are refused before the signature is looked at.
public struct AccessTokens: Sendable {
    public static let issuer = "intellidocs"
    public static let minimumSecretBytes = 32

    let keys: JWTKeyCollection
    public let lifetime: Duration

    public init(secret: String, lifetime: Duration = .seconds(15 * 60)) async throws(APIConfigurationError) {
        guard secret.utf8.count >= Self.minimumSecretBytes else {
            throw APIConfigurationError(
                "INTELLIDOCS_JWT_SECRET must be at least \(Self.minimumSecretBytes) bytes long; generate one with `openssl rand -base64 48`")
        }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.keys = keys
        self.lifetime = lifetime
    }

    struct Claims: JWTPayload {
        var sub: SubjectClaim
        var sid: String
        var iss: IssuerClaim
        var iat: IssuedAtClaim
        var exp: ExpirationClaim

        func verify(using algorithm: some JWTAlgorithm) async throws {
            try exp.verifyNotExpired()
            guard iss.value == AccessTokens.issuer else { throw JWTError.claimVerificationFailure(failedClaim: iss, reason: "wrong issuer") }
        }
    }

    /// A signed access token for the user's session, and its lifetime in seconds.
    public func issue(userID: UUID, sessionID: UUID, now: Date = Date()) async throws -> (token: String, expiresIn: Int) {
        let seconds = Int(lifetime.components.seconds)
        let claims = Claims(
            sub: SubjectClaim(value: userID.uuidString), sid: sessionID.uuidString, iss: IssuerClaim(value: Self.issuer),
            iat: IssuedAtClaim(value: now), exp: ExpirationClaim(value: now.addingTimeInterval(TimeInterval(seconds))))
        return (try await keys.sign(claims), seconds)
    }

    /// The user and session a token names; throws an `APIError` 401 for anything else.
    public func verify(_ token: String) async throws(APIError) -> (userID: UUID, sessionID: UUID) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let header = Self.decodeSegment(parts[0]),
            let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any]
        else {
            throw APIError.unauthorized("the bearer token is neither an access token nor an API key", code: "invalid_token")
        }
        guard object["alg"] as? String == "HS256" else {
            throw APIError.unauthorized("the access token's algorithm is not accepted (only HS256)", code: "invalid_token")
        }
        let claims: Claims
        do {
            claims = try await keys.verify(token, as: Claims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure && error.failedClaim is ExpirationClaim {
            throw APIError.unauthorized("the access token has expired; get a new one with POST /v1/auth/refresh", code: "token_expired")
        } catch {
            throw APIError.unauthorized("the access token is invalid", code: "invalid_token")
        }
        guard let userID = UUID(uuidString: claims.sub.value), let sessionID = UUID(uuidString: claims.sid) else {
            throw APIError.unauthorized("the access token is invalid", code: "invalid_token")
        }
        return (userID, sessionID)
    }

    static func decodeSegment(_ segment: Substring) -> Data? {
        var base64 = segment.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}

/// The API cannot start with this configuration; the message names the setting and the fix.
public struct APIConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
