import PostgresNIO
import Storage

/// Slows down password guessing: after `accountFailures` failed logins for one address, or `ipFailures`
/// from one IP address, within a window of `windowSeconds`, further logins answer `429` with
/// `Retry-After` until the window ends — before the password is even checked. A successful login clears
/// the account's count. Counts live in PostgreSQL (`rate_windows`), so every API process shares them.
/// (Concurrent guesses can overshoot a limit by the number in flight; the window still stops them.)
public struct LoginThrottle: Sendable {
    public struct Limits: Sendable {
        public var accountFailures = 5
        public var ipFailures = 20
        public var windowSeconds = 900
        public init() {}
    }

    let limits: Limits
    let rates: RateWindowRepository

    static func accountKey(_ email: String) -> String { "login-account:\(email.lowercased())" }
    static func ipKey(_ ip: String) -> String { "login-ip:\(ip)" }

    /// Throws `429 login_throttled` when either counter is at its limit.
    func check(email: String, ip: String?, on connection: PostgresConnection) async throws {
        let account = try await rates.current(key: Self.accountKey(email), windowSeconds: limits.windowSeconds, on: connection)
        if account.count >= limits.accountFailures {
            throw APIError.tooManyRequests(
                "too many failed logins for this account; retry in \(account.retryAfterSeconds) s",
                retryAfter: account.retryAfterSeconds, code: "login_throttled")
        }
        if let ip {
            let address = try await rates.current(key: Self.ipKey(ip), windowSeconds: limits.windowSeconds, on: connection)
            if address.count >= limits.ipFailures {
                throw APIError.tooManyRequests(
                    "too many failed logins from this address; retry in \(address.retryAfterSeconds) s",
                    retryAfter: address.retryAfterSeconds, code: "login_throttled")
            }
        }
    }

    func recordFailure(email: String, ip: String?, on connection: PostgresConnection) async throws {
        try await rates.add(key: Self.accountKey(email), windowSeconds: limits.windowSeconds, on: connection)
        if let ip { try await rates.add(key: Self.ipKey(ip), windowSeconds: limits.windowSeconds, on: connection) }
    }

    func recordSuccess(email: String, on connection: PostgresConnection) async throws {
        try await rates.clear(key: Self.accountKey(email), on: connection)
    }
}
