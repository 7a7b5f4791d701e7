import Broker
import ControlPlane
import Foundation
import Logging
import Pipeline
import PostgresNIO
import Settings
import Storage
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A private corner of the real services for one test: its own PostgreSQL database (migrated) and its own
/// RabbitMQ virtual host, from the same environment variables as the binary
/// (`eval "$(deploy/local/stack env)"`). Same approach as Tests/IntelliDocsTests/TestEnvironment.swift.
struct TestEnvironment: Sendable {
    let name: String
    let settings: Settings
    let database: Database
    let logger: Logger
    let virtualHost: String

    static func with<T: Sendable>(_ body: @Sendable (TestEnvironment) async throws -> T) async throws -> T {
        let base = try Settings.load()
        let name = "idcp_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
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
        let settings = Settings(
            databaseURL: components.string!, amqpURL: amqp.string!, amqpManagementURL: base.amqpManagementURL,
            blobDirectory: FileManager.default.temporaryDirectory.appendingPathComponent(name).path, pipelinePath: base.pipelinePath)
        let database = try Database(url: settings.databaseURL, logger: logger)
        do {
            let result = try await database.withRunning { database in
                try await Migrator().migrate(database)
                return try await body(TestEnvironment(name: name, settings: settings, database: database, logger: logger, virtualHost: name))
            }
            try await cleanUp(name: name, adminURL: base.databaseURL, management: management, logger: logger)
            return result
        } catch {
            try? await cleanUp(name: name, adminURL: base.databaseURL, management: management, logger: logger)
            throw error
        }
    }

    /// A fresh pool: a `PostgresClient` runs only once.
    private static func cleanUp(name: String, adminURL: String, management: Management, logger: Logger) async throws {
        let admin = try Database(url: adminURL, maximumConnections: 2, logger: logger)
        try await admin.withRunning { db in
            try await db.client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: logger)
        }
        try await management.deleteVirtualHost(name)
    }

    /// The pipeline definition of the repository (`pipelines/default.yml`).
    func pipeline() throws -> PipelineDefinition {
        try PipelineDefinition.load(path: repositoryRoot + "/pipelines/default.yml")
    }

    func plans() throws -> PlanCatalog {
        try PlanCatalog.load(path: repositoryRoot + "/config/plans.yml")
    }

    /// A connected broker on this test's vhost; the caller closes it.
    func broker() async throws -> BrokerConnection {
        var configuration = try BrokerConfiguration(url: settings.amqpURL)
        configuration.connectionName = "\(name) test"
        let broker = BrokerConnection(configuration: configuration, logger: logger)
        try await broker.connect()
        return broker
    }

    func count(_ query: PostgresQuery) async throws -> Int {
        let rows = try await database.client.query(query, logger: logger)
        for try await value in rows.decode(Int.self) { return value }
        return 0
    }

    func execute(_ query: PostgresQuery) async throws {
        try await database.client.query(query, logger: logger)
    }
}

/// The RabbitMQ management API, for creating and deleting test vhosts.
struct Management: Sendable {
    let base: String
    let authorization: String

    init(_ url: String) throws {
        guard var components = URLComponents(string: url) else { throw TestFailure("bad management URL") }
        authorization = "Basic " + Data("\(components.user ?? "guest"):\(components.password ?? "guest")".utf8).base64EncodedString()
        components.user = nil
        components.password = nil
        base = components.string!
    }

    func createVirtualHost(_ name: String) async throws {
        try await send("PUT", "/api/vhosts/\(name)", body: "{}")
        try await send("PUT", "/api/permissions/\(name)/guest", body: #"{"configure":".*","write":".*","read":".*"}"#)
    }

    func deleteVirtualHost(_ name: String) async throws {
        try await send("DELETE", "/api/vhosts/\(name)", body: nil)
    }

    func send(_ method: String, _ path: String, body: String?) async throws {
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
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The repository root (for `pipelines/` and `config/`).
let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<4 { url.deleteLastPathComponent() }
    return url.path
}()
