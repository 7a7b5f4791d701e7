import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which URLs the server may call for a webhook (server-side request forgery).
///
/// Only `http` and `https`, and only hosts whose every address is public: loopback, private (RFC 1918,
/// unique-local), link-local (cloud metadata lives at 169.254.169.254), carrier-grade NAT, unspecified
/// and multicast addresses are refused — unless `allowPrivate` (`INTELLIDOCS_WEBHOOK_ALLOW_PRIVATE=true`,
/// for development and tests). The check runs when a workflow is saved and again before every delivery,
/// because a name can be pointed elsewhere later. A delivery then connects to the address the check
/// vetted (`Destination.pinnedAddress`), not to a second lookup of the name, so a name that changes between
/// the check and the connection (DNS rebinding) cannot lead it inside; TLS still verifies the name.
public struct WebhookAddressPolicy: Sendable {
    public let allowPrivate: Bool

    public init(allowPrivate: Bool) { self.allowPrivate = allowPrivate }

    /// From `INTELLIDOCS_WEBHOOK_ALLOW_PRIVATE`.
    public static func fromEnvironment() -> WebhookAddressPolicy {
        let value = ProcessInfo.processInfo.environment["INTELLIDOCS_WEBHOOK_ALLOW_PRIVATE"]?.lowercased()
        return WebhookAddressPolicy(allowPrivate: value == "true" || value == "1" || value == "yes")
    }

    public struct Refusal: Error, Sendable {
        public let message: String
        /// Resolution failures may pass later; a bad scheme or a private address will not.
        public let permanent: Bool
    }

    /// Where a webhook call may go: the URL's host, and the address to connect to for it.
    public struct Destination: Sendable, Equatable {
        public let host: String
        /// One of the addresses `host` resolved to when it was checked (all of them allowed), as text.
        public let pinnedAddress: String
    }

    /// Throws a `Refusal` naming the reason when `url` may not be called; otherwise the address to connect to.
    @discardableResult
    public func check(_ url: String) async throws(Refusal) -> Destination {
        guard url.utf8.count <= 2000, let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw Refusal(message: "not a URL; give an absolute http(s) URL", permanent: true)
        }
        guard scheme == "http" || scheme == "https" else {
            throw Refusal(message: "only http and https webhooks are called, not '\(scheme)'", permanent: true)
        }
        guard var host = components.host, !host.isEmpty else { throw Refusal(message: "the URL has no host", permanent: true) }
        if components.user != nil || components.password != nil {
            throw Refusal(message: "credentials in the URL are not accepted; the signature authenticates the call", permanent: true)
        }
        let urlHost = host
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let name = host
        let addresses = await Task.detached { @Sendable in Self.resolve(name) }.value
        guard let first = addresses.first else {
            throw Refusal(message: "the host '\(host)' does not resolve; check the name", permanent: false)
        }
        if !allowPrivate {
            for address in addresses where !Self.isPublic(address) {
                throw Refusal(
                    message: "the host '\(host)' resolves to a loopback, private or link-local address (\(Self.describe(address))); webhooks call public addresses only (INTELLIDOCS_WEBHOOK_ALLOW_PRIVATE=true allows others, for development)",
                    permanent: true)
            }
        }
        return Destination(host: urlHost, pinnedAddress: Self.describe(first))
    }

    /// An IPv4 (4 bytes) or IPv6 (16 bytes) address.
    public typealias Address = [UInt8]

    static func resolve(_ host: String) -> [Address] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
        defer { freeaddrinfo(first) }
        var addresses: [Address] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if info.pointee.ai_family == AF_INET, let raw = info.pointee.ai_addr {
                raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                    withUnsafeBytes(of: pointer.pointee.sin_addr) { addresses.append(Array($0)) }
                }
            } else if info.pointee.ai_family == AF_INET6, let raw = info.pointee.ai_addr {
                raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    withUnsafeBytes(of: pointer.pointee.sin6_addr) { addresses.append(Array($0)) }
                }
            }
            cursor = info.pointee.ai_next
        }
        return addresses
    }

    /// Whether a webhook may connect to `address`.
    public static func isPublic(_ address: Address) -> Bool {
        if address.count == 4 { return isPublicV4(address) }
        guard address.count == 16 else { return false }
        // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible forms are judged as IPv4.
        if address[0..<10].allSatisfy({ $0 == 0 }) && address[10] == 0xff && address[11] == 0xff { return isPublicV4(Array(address[12...])) }
        if address[0..<12].allSatisfy({ $0 == 0 }) { return false }  // ::, ::1 and the deprecated compatible form
        if address[0] & 0xfe == 0xfc { return false }  // fc00::/7 unique local
        if address[0] == 0xfe && address[1] & 0xc0 == 0x80 { return false }  // fe80::/10 link-local
        if address[0] == 0xfe && address[1] & 0xc0 == 0xc0 { return false }  // fec0::/10 site-local (deprecated)
        if address[0] == 0xff { return false }  // multicast
        if address[0] == 0x20 && address[1] == 0x01 && address[2] == 0x0d && address[3] == 0xb8 { return false }  // documentation
        if address[0] == 0x00 && address[1] == 0x64 && address[2] == 0xff && address[3] == 0x9b { return isPublicV4(Array(address[12...])) }  // NAT64
        return true
    }

    static func isPublicV4(_ a: Address) -> Bool {
        switch (a[0], a[1]) {
        case (0, _), (10, _), (127, _): false
        case (100, 64...127): false  // carrier-grade NAT
        case (169, 254): false  // link-local, cloud metadata
        case (172, 16...31): false
        case (192, 168): false
        case (192, 0) where a[2] == 0 || a[2] == 2: false  // IETF assignments, documentation
        case (198, 18...19): false  // benchmarking
        case (198, 51) where a[2] == 100, (203, 0) where a[2] == 113: false  // documentation
        case (224...255, _): false  // multicast, reserved, broadcast
        default: true
        }
    }

    static func describe(_ address: Address) -> String {
        if address.count == 4 { return address.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: address.count, by: 2).map { String(UInt16(address[$0]) << 8 | UInt16(address[$0 + 1]), radix: 16) }.joined(separator: ":")
    }
}
