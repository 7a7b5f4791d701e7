import Testing

@testable import Broker

@Suite("Broker configuration and pure logic")
struct BrokerConfigurationTests {
    @Test("a full URL is parsed and the vhost percent-decoded")
    func fullURL() throws {
        let configuration = try BrokerConfiguration(url: "amqp://alice:s%40cret@broker.local:5673/%2f")
        #expect(configuration.host == "broker.local")
        #expect(configuration.port == 5673)
        #expect(configuration.user == "alice")
        #expect(configuration.password == "s@cret")
        #expect(configuration.virtualHost == "/")
        #expect(configuration.heartbeatSeconds == 30)
    }

    @Test("missing parts take the RabbitMQ defaults")
    func defaults() throws {
        let configuration = try BrokerConfiguration(url: "amqp://")
        #expect(configuration.host == "localhost")
        #expect(configuration.port == 5672)
        #expect(configuration.user == "guest")
        #expect(configuration.password == "guest")
        #expect(configuration.virtualHost == "/")
    }

    @Test("named vhost, IPv6 host and query parameters")
    func vhostIPv6AndQuery() throws {
        let configuration = try BrokerConfiguration(
            url: "amqp://u:p@[::1]:55672/tenant-a?heartbeat=10&connection_name=api%201")
        #expect(configuration.host == "::1")
        #expect(configuration.port == 55672)
        #expect(configuration.virtualHost == "tenant-a")
        #expect(configuration.heartbeatSeconds == 10)
        #expect(configuration.connectionName == "api 1")
    }

    @Test(
        "malformed URLs are rejected with a message that names the problem but never the password",
        arguments: [
            ("broker:5672", "no scheme"),
            ("http://u:hunter2@host/", "scheme 'http'"),
            ("amqps://u:hunter2@host/", "TLS"),
            ("amqp://u:hunter2@host:99999/", "port '99999'"),
            ("amqp://u:hunter2@host:abc/", "port 'abc'"),
            ("amqp://u:hunter2@host/a/b", "'/' inside the vhost"),
            ("amqp://u:hunter2@host/%zz", "percent-encoded vhost"),
            ("amqp://u:hunter2@host/?frame_max=1", "unsupported parameter 'frame_max'"),
            ("amqp://u:hunter2@[::1/", "closing ']'"),
        ])
    func malformedURL(url: String, expectedText: String) throws {
        let error = #expect(throws: BrokerError.self) { try BrokerConfiguration(url: url) }
        #expect(error?.code == .invalidURL)
        #expect(error?.message.contains(expectedText) == true, "\(error?.message ?? "")")
        #expect(error?.description.contains("hunter2") == false)
    }

    @Test("description and redacted URL hide the password")
    func redaction() throws {
        let configuration = try BrokerConfiguration(url: "amqp://bob:topsecret@h:1/v")
        #expect(!configuration.description.contains("topsecret"))
        #expect(configuration.redactedURL == "amqp://bob:***@h:1/v")
        #expect(BrokerConfiguration.redact("amqp://bob:topsecret@h:1/v") == "'amqp://bob:***@h:1/v'")
    }

    @Test("reconnect backoff starts near 0.1 s, doubles, and stays within 5 s")
    func backoff() {
        let backoff = ReconnectBackoff()
        for _ in 0..<100 {
            let first = backoff.delay(afterFailedAttempts: 0)
            #expect(first >= .milliseconds(50) && first <= .milliseconds(100))
            let third = backoff.delay(afterFailedAttempts: 2)
            #expect(third >= .milliseconds(200) && third <= .milliseconds(400))
            let late = backoff.delay(afterFailedAttempts: 40)
            #expect(late >= .milliseconds(2500) && late <= .seconds(5))
        }
    }

    @Test("field value literals build the expected values")
    func literals() {
        let table: AMQPTable = ["s": "x", "i": 3, "b": true, "d": 1.5, "a": [1, "y"], "t": ["k": 2]]
        #expect(table["s"] == .string("x"))
        #expect(table["i"]?.intValue == 3)
        #expect(table["b"] == .bool(true))
        #expect(table["d"] == .double(1.5))
        #expect(table["a"] == .array([.int(1), .string("y")]))
        #expect(table["t"]?.tableValue?["k"] == .int(2))
    }
}
