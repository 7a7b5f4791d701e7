import HummingbirdBcrypt
import NIOPosix

/// bcrypt through HummingbirdBcrypt, run on NIO's blocking thread pool: a cost-12 hash takes a quarter
/// of a second and must not hold a cooperative-pool thread.
public struct PasswordHasher: Sendable {
    /// log2 of bcrypt's rounds; at least 12.
    public let cost: UInt8

    public init(cost: UInt8 = 12) {
        precondition(cost >= 12, "bcrypt cost must be at least 12")
        self.cost = cost
    }

    public static let minimumLength = 10
    /// bcrypt reads at most 72 bytes; longer passwords are refused rather than silently truncated.
    public static let maximumBytes = 72

    public func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    public func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    /// Spends the time of a verification when there is no account, and fails.
    public func verifyDecoy(_ password: String) async throws {
        _ = try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: Self.decoy) }
    }

    /// A hash of a random password, verified against when the account does not exist, so that a login
    /// takes as long for an unknown address as for a wrong password.
    static let decoy: String = Bcrypt.hash(SecretToken.randomBase64URL(bytes: 24), cost: 12)
}
