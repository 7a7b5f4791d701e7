import Broker
import Foundation
import Logging
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Connection settings for the integration tests, from the same variables the binary reads.
enum TestBroker {
    static var amqpURL: String {
        ProcessInfo.processInfo.environment["INTELLIDOCS_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:55672/%2f"
    }

    static var managementURL: String {
        ProcessInfo.processInfo.environment["INTELLIDOCS_AMQP_MANAGEMENT_URL"] ?? "http://guest:guest@127.0.0.1:55673"
    }

    static func uniqueName(_ label: String) -> String {
        "brokertests.\(label).\(UUID().uuidString.prefix(8).lowercased())"
    }

    static func configuration(_ label: String) throws -> BrokerConfiguration {
        var configuration = try BrokerConfiguration(url: amqpURL)
        configuration.connectionName = uniqueName(label)
        return configuration
    }

    static var logger: Logger {
        var logger = Logger(label: "BrokerTests")
        logger.logLevel = .info
        return logger
    }
}

/// Runs `body` with a connected connection and closes it afterwards, also when `body` throws.
func withTestConnection(
    _ label: String, _ body: (BrokerConnection) async throws -> Void
) async throws {
    let connection = BrokerConnection(configuration: try TestBroker.configuration(label), logger: TestBroker.logger)
    try await connection.connect()
    do {
        try await body(connection)
    } catch {
        await connection.close()
        throw error
    }
    await connection.close()
}

/// Declares a uniquely named queue, runs `body`, and deletes the queue afterwards (through a fresh connection
/// if `body` closed its own).
func withTemporaryQueue(
    _ connection: BrokerConnection, _ label: String, arguments: AMQPTable = [:],
    _ body: (String) async throws -> Void
) async throws {
    let queue = TestBroker.uniqueName(label)
    try await connection.declareQueue(queue, arguments: arguments)
    var failure: (any Error)?
    do {
        try await body(queue)
    } catch {
        failure = error
    }
    do {
        try await connection.deleteQueue(queue)
    } catch {
        try await withTestConnection("cleanup") { cleanup in try await cleanup.deleteQueue(queue) }
    }
    if let failure {
        throw failure
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() {
            return true
        }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// Drains a consume stream in a background task so tests can wait for counts with a deadline;
/// optionally acks every message as it arrives.
///
/// `@unchecked Sendable` is safe: `messages` and `ended` are only touched while `lock` is held, and
/// `task` is immutable after `init`.
final class Inbox: @unchecked Sendable {
    private let lock = NSLock()
    private var received: [IncomingMessage] = []
    private var ended = false
    private var task: Task<Void, Never>?

    init(_ stream: AsyncStream<IncomingMessage>, ackingWith connection: BrokerConnection? = nil) {
        task = Task { [self] in
            for await message in stream {
                if let connection {
                    await connection.ack(message)
                }
                lock.withLock { received.append(message) }
            }
            lock.withLock { ended = true }
        }
    }

    var messages: [IncomingMessage] {
        lock.withLock { received }
    }

    var streamEnded: Bool {
        lock.withLock { ended }
    }

    /// Waits until at least `count` messages arrived (or `timeout` passed) and returns all received so far.
    func waitFor(count: Int, timeout: Duration = .seconds(10)) async -> [IncomingMessage] {
        _ = await eventually(timeout: timeout) { messages.count >= count }
        return messages
    }

    /// Stops iterating, which cancels the consumer.
    func cancel() async {
        task?.cancel()
        await task?.value
    }
}

/// The RabbitMQ management HTTP API, used to look at and kill connections from the server side.
struct ManagementAPI {
    private let baseURL: URL
    private let authorization: String

    init(url: String = TestBroker.managementURL) throws {
        var components = try #require(URLComponents(string: url))
        let user = components.user ?? "guest"
        let password = components.password ?? "guest"
        components.user = nil
        components.password = nil
        baseURL = try #require(components.url)
        authorization = "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    /// Names (as the management API knows them) of connections whose client set `connection_name`.
    func connectionNames(clientConnectionName: String) async throws -> [String] {
        let data = try await request("GET", "/api/connections")
        let connections = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        return connections.compactMap { connection in
            let properties = connection["client_properties"] as? [String: Any]
            guard properties?["connection_name"] as? String == clientConnectionName else {
                return nil
            }
            return connection["name"] as? String
        }
    }

    /// Waits until the management API lists the connection (its stats lag a few seconds) and returns its name.
    func waitForConnection(clientConnectionName: String) async throws -> String {
        var names: [String] = []
        _ = try await eventually(timeout: .seconds(20)) {
            names = try await connectionNames(clientConnectionName: clientConnectionName)
            return !names.isEmpty
        }
        return try #require(names.first, "connection \(clientConnectionName) is not listed by the management API")
    }

    /// Closes a client's connection from the server side, as an operator or a broker restart would.
    func killConnection(clientConnectionName: String) async throws {
        try await closeConnection(named: try await waitForConnection(clientConnectionName: clientConnectionName))
    }

    func closeConnection(named name: String) async throws {
        let encoded = try #require(name.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
        _ = try await request("DELETE", "/api/connections/\(encoded)")
    }

    func queueType(_ queue: String, vhost: String = "/") async throws -> String? {
        let vhostPart = try #require(vhost.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
        let queuePart = try #require(queue.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
        let data = try await request("GET", "/api/queues/\(vhostPart)/\(queuePart)", allowNotFound: true)
        let queueObject = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        return queueObject?["type"] as? String
    }

    private func request(_ method: String, _ path: String, allowNotFound: Bool = false) async throws -> Data {
        var request = URLRequest(url: try #require(URL(string: baseURL.absoluteString + path)))
        request.httpMethod = method
        request.setValue(authorization, forHTTPHeaderField: "Authorization")
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        if allowNotFound, status == 404 {
            return Data("{}".utf8)
        }
        guard (200..<300).contains(status) else {
            throw ManagementError(message: "\(method) \(path) answered HTTP \(status)")
        }
        return data
    }
}

struct ManagementError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Tallies publish outcomes from many tasks.
///
/// `@unchecked Sendable` is safe: both counters are only touched while `lock` is held.
final class OutcomeCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var confirmed = 0
    private var failures: [BrokerError.Code: Int] = [:]

    func record(_ failure: BrokerError.Code?) {
        lock.withLock {
            if let failure {
                failures[failure, default: 0] += 1
            } else {
                confirmed += 1
            }
        }
    }

    var snapshot: (confirmed: Int, failures: [BrokerError.Code: Int]) {
        lock.withLock { (confirmed, failures) }
    }
}
