import Crypto
import Foundation

/// Random secrets handed to clients (refresh tokens, API keys, invitation tokens) and the SHA-256 hashes
/// stored in their place. The secrets carry 256 bits from the system's CSPRNG, so a fast hash is enough:
/// there is nothing to guess.
enum SecretToken {
    /// `prefix` + 43 base64url characters (32 random bytes).
    static func generate(prefix: String) -> String {
        prefix + randomBase64URL(bytes: 32)
    }

    static func randomBase64URL(bytes count: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// `length` characters from [A-Za-z0-9] (the visible part of an API key).
    static func randomAlphanumeric(_ length: Int) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
    }

    /// Lower-case hex SHA-256, as stored in the database.
    static func hash(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Compares two hashes without an early exit.
    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}

/// The parts of an API key: `idk_<8 visible characters>_<secret>`; the prefix `idk_<8>` is stored in the
/// clear to find the key, the whole key only as a hash.
struct APIKeySecret {
    static let marker = "idk_"
    let prefix: String
    let key: String

    static func generate() -> APIKeySecret {
        let prefix = marker + SecretToken.randomAlphanumeric(8)
        return APIKeySecret(prefix: prefix, key: prefix + "_" + SecretToken.randomBase64URL(bytes: 32))
    }

    /// Splits a presented key; nil when it is not shaped like one.
    static func parse(_ token: String) -> APIKeySecret? {
        guard token.hasPrefix(marker), token.count == marker.count + 8 + 1 + 43 else { return nil }
        let prefix = String(token.prefix(marker.count + 8))
        guard token.dropFirst(prefix.count).first == "_" else { return nil }
        return APIKeySecret(prefix: prefix, key: token)
    }
}
