public import Blobs
public import Broker
public import Foundation
public import Logging
public import PostgresNIO
public import Settings
public import Storage
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Shared by the test targets that need the real services (IntelliDocsTests, ControlPlaneTests).
///
/// A private corner of the real services for one test: its own PostgreSQL database (migrated), its own
/// RabbitMQ virtual host, its own blob folder. Settings come from the same environment variables as the
/// binary (`eval "$(deploy/local/stack env)"`), so the tests run against the local stack or any other.
public struct TestEnvironment: Sendable {
    public let name: String
    public let settings: Settings
    public let database: Database
    public let logger: Logger
    public let virtualHost: String
    public let blobs: FileBlobStore

    /// The settings as environment variables for a child `intellidocs` process.
    public var childEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["INTELLIDOCS_DATABASE_URL"] = settings.databaseURL
        environment["INTELLIDOCS_AMQP_URL"] = settings.amqpURL
        environment["INTELLIDOCS_BLOB_DIR"] = settings.blobDirectory
        environment["OMP_THREAD_LIMIT"] = "1"
        return environment
    }

    /// Creates the database and vhost, runs `body`, then drops both whatever happened.
    public static func with<T: Sendable>(_ body: @Sendable (TestEnvironment) async throws -> T) async throws -> T {
        let base = try Settings.load()
        let name = "idt_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        var testLogger = Logger(label: "test.\(name)")
        testLogger.logLevel = ProcessInfo.processInfo.environment["INTELLIDOCS_TEST_LOG"] == nil ? .critical : .debug
        let logger = testLogger

        let admin = try Database(url: base.databaseURL, maximumConnections: 2, logger: logger)
        try await admin.withRunning { db in
            try await db.client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
        let management = try Management(base.amqpManagementURL ?? "http://guest:guest@127.0.0.1:55673")
        try await management.createVirtualHost(name)

        var components = URLComponents(string: base.databaseURL)!
        components.path = "/" + name
        var amqp = URLComponents(string: base.amqpURL)!
        amqp.percentEncodedPath = "/" + name
        let blobRoot = FileManager.default.temporaryDirectory.appendingPathComponent(name).path
        let settings = Settings(
            databaseURL: components.string!, amqpURL: amqp.string!, amqpManagementURL: base.amqpManagementURL,
            blobDirectory: blobRoot, pipelinePath: base.pipelinePath)
        let database = try Database(url: settings.databaseURL, logger: logger)
        do {
            let result = try await database.withRunning { database in
                try await Migrator().migrate(database)
                let environment = TestEnvironment(
                    name: name, settings: settings, database: database, logger: logger, virtualHost: name,
                    blobs: try FileBlobStore(root: blobRoot))
                return try await body(environment)
            }
            try await cleanUp(name: name, admin: base.databaseURL, management: management, blobRoot: blobRoot, logger: logger)
            return result
        } catch {
            try? await cleanUp(name: name, admin: base.databaseURL, management: management, blobRoot: blobRoot, logger: logger)
            throw error
        }
    }

    private static func cleanUp(name: String, admin url: String, management: Management, blobRoot: String, logger: Logger) async throws {
        // A pool runs once: clean up through a new one.
        let admin = try Database(url: url, maximumConnections: 2, logger: logger)
        try await admin.withRunning { db in
            try await db.client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: logger)
        }
        try await management.deleteVirtualHost(name)
        try? FileManager.default.removeItem(atPath: blobRoot)
    }

    /// A connected broker on this test's vhost; the caller closes it.
    public func broker(_ label: String = "test") async throws -> BrokerConnection {
        var configuration = try BrokerConfiguration(url: settings.amqpURL)
        configuration.connectionName = "\(name) \(label)"
        let broker = BrokerConnection(configuration: configuration, logger: logger)
        try await broker.connect()
        return broker
    }

    public func organization(_ slug: String) async throws -> Organization {
        try await OrganizationRepository(database).create(slug: slug, name: slug.capitalized)
    }

    /// Runs one SQL count.
    public func count(_ query: PostgresQuery) async throws -> Int {
        let rows = try await database.client.query(query, logger: logger)
        for try await value in rows.decode(Int.self) { return value }
        return 0
    }

    /// Runs one SQL statement.
    public func execute(_ query: PostgresQuery) async throws {
        try await database.client.query(query, logger: logger)
    }
}

/// The RabbitMQ management API, for creating and deleting test vhosts.
public struct Management: Sendable {
    let base: String
    let authorization: String

    public init(_ url: String) throws {
        guard var components = URLComponents(string: url) else { throw TestFailure("bad management URL") }
        authorization = "Basic " + Data("\(components.user ?? "guest"):\(components.password ?? "guest")".utf8).base64EncodedString()
        components.user = nil
        components.password = nil
        base = components.string!
    }

    public func createVirtualHost(_ name: String) async throws {
        try await send("PUT", "/api/vhosts/\(name)", body: "{}")
        try await send("PUT", "/api/permissions/\(name)/guest", body: #"{"configure":".*","write":".*","read":".*"}"#)
    }

    public func deleteVirtualHost(_ name: String) async throws {
        try await send("DELETE", "/api/vhosts/\(name)", body: nil)
    }

    @discardableResult
    func send(_ method: String, _ path: String, body: String?) async throws -> Data {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = method
        request.setValue(authorization, forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let body { request.httpBody = Data(body.utf8) }
        // The resilience tests restart the broker while other suites run: wait for it (up to 60 s) rather
        // than fail a test that only wanted a virtual host.
        var attempt = 0
        var answer: (Data, URLResponse)?
        while answer == nil {
            do {
                answer = try await URLSession.shared.data(for: request)
            } catch {
                // NSURLErrorDomain: -1004 cannot connect, -1005 connection lost, -1001 timed out.
                let code = (error as NSError).code
                guard (error as NSError).domain == NSURLErrorDomain, [-1004, -1005, -1001].contains(code), attempt < 60 else { throw error }
                attempt += 1
                try await Task.sleep(for: .seconds(1))
            }
        }
        let (data, response) = answer!
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) || (method == "DELETE" && status == 404) else {
            throw TestFailure("management API \(method) \(path) answered \(status): \(String(decoding: data, as: UTF8.self))")
        }
        return data
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The repository root (for `pipelines/` and the built `intellidocs` binary).
public let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

