#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension BrokerConfiguration {
    /// Parses `amqp://user:password@host:port/vhost[?heartbeat=N&connection_name=NAME]`.
    ///
    /// User, password and vhost are percent-decoded (`%2f` is "/", the default vhost). Missing parts take the
    /// RabbitMQ defaults: guest/guest, localhost, port 5672, vhost "/". Errors name the URL with its password
    /// replaced by `***`, so they are safe to log.
    public init(url: String) throws(BrokerError) {
        self.init()
        let shown = Self.redact(url)

        guard let schemeEnd = url.range(of: "://") else {
            throw .invalidURL("broker URL \(shown) has no scheme: expected amqp://user:password@host:port/vhost")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "amqp" else {
            if scheme == "amqps" {
                throw .invalidURL(
                    "broker URL \(shown) asks for TLS (amqps://), which this client does not support: use amqp://")
            }
            throw .invalidURL(
                "broker URL \(shown) has scheme '\(scheme)': expected amqp://user:password@host:port/vhost")
        }

        var rest = url[schemeEnd.upperBound...]
        var query: Substring = ""
        if let questionMark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: questionMark)...]
            rest = rest[..<questionMark]
        }
        let authority: Substring
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        } else {
            authority = rest
        }

        var hostAndPort = authority
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            hostAndPort = authority[authority.index(after: at)...]
            let userPart: Substring
            var passwordPart: Substring?
            if let colon = userInfo.firstIndex(of: ":") {
                userPart = userInfo[..<colon]
                passwordPart = userInfo[userInfo.index(after: colon)...]
            } else {
                userPart = userInfo
            }
            guard let user = PercentEncoding.decode(userPart), !user.isEmpty else {
                throw .invalidURL("broker URL \(shown) has an empty or badly percent-encoded user name")
            }
            self.user = user
            if let passwordPart {
                guard let password = PercentEncoding.decode(passwordPart) else {
                    throw .invalidURL("broker URL \(shown) has a badly percent-encoded password")
                }
                self.password = password
            }
        }

        var portText: Substring?
        if hostAndPort.hasPrefix("[") {
            guard let close = hostAndPort.firstIndex(of: "]") else {
                throw .invalidURL("broker URL \(shown) has an IPv6 host without a closing ']'")
            }
            host = String(hostAndPort[hostAndPort.index(after: hostAndPort.startIndex)..<close])
            let afterBracket = hostAndPort[hostAndPort.index(after: close)...]
            if !afterBracket.isEmpty {
                guard afterBracket.hasPrefix(":") else {
                    throw .invalidURL("broker URL \(shown) has text after the IPv6 host that is not ':port'")
                }
                portText = afterBracket.dropFirst()
            }
        } else if let colon = hostAndPort.lastIndex(of: ":") {
            host = String(hostAndPort[..<colon])
            portText = hostAndPort[hostAndPort.index(after: colon)...]
        } else {
            host = String(hostAndPort)
        }
        if host.isEmpty {
            host = "localhost"
        }
        if let portText {
            guard let port = Int(portText), (1...65_535).contains(port) else {
                throw .invalidURL("broker URL \(shown) has port '\(portText)': expected a number from 1 to 65535")
            }
            self.port = port
        }

        if !path.isEmpty {
            guard !path.contains("/") else {
                throw .invalidURL(
                    "broker URL \(shown) has a '/' inside the vhost: percent-encode it (the default vhost '/' is %2f)")
            }
            guard let virtualHost = PercentEncoding.decode(path) else {
                throw .invalidURL("broker URL \(shown) has a badly percent-encoded vhost")
            }
            self.virtualHost = virtualHost
        }

        for parameter in query.split(separator: "&") where !parameter.isEmpty {
            let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(pair[0])
            let value = pair.count > 1 ? pair[1] : ""
            switch name {
            case "heartbeat":
                guard let seconds = Int(value), (0...65_535).contains(seconds) else {
                    throw .invalidURL("broker URL \(shown) has heartbeat '\(value)': expected seconds from 0 to 65535")
                }
                heartbeatSeconds = seconds
            case "connection_name":
                guard let connectionName = PercentEncoding.decode(value), !connectionName.isEmpty else {
                    throw .invalidURL("broker URL \(shown) has an empty or badly percent-encoded connection_name")
                }
                self.connectionName = connectionName
            default:
                throw .invalidURL(
                    "broker URL \(shown) has unsupported parameter '\(name)': supported are heartbeat and connection_name"
                )
            }
        }
    }

    /// The URL with everything between the user's ':' and the '@' replaced by `***`.
    static func redact(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else {
            // Without a scheme we cannot tell where a password would be: show nothing of the URL.
            return "'<unparseable URL>'"
        }
        let afterScheme = url[schemeEnd.upperBound...]
        let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
        let authority = afterScheme[..<authorityEnd]
        guard let at = authority.lastIndex(of: "@"),
            let colon = authority[..<at].firstIndex(of: ":")
        else {
            return "'\(url)'"
        }
        return "'\(url[..<authority.index(after: colon)])***\(url[at...])'"
    }
}

/// Percent-encoding as used in AMQP URIs (RFC 3986 unreserved characters stay as they are).
enum PercentEncoding {
    /// Decodes `%XX` escapes; nil when an escape is malformed or the result is not UTF-8.
    static func decode(_ text: some StringProtocol) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func encode(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                result += byte < 16 ? "%0\(hex)" : "%\(hex)"
            }
        }
        return result
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// The current process id, for default connection names.
enum ProcessIdentity {
    static var current: Int32 { getpid() }
}
