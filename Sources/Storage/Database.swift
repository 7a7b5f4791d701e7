public import Logging
public import PostgresNIO
import Foundation

/// The PostgreSQL client of one process: a connection pool plus the task that runs it.
///
/// `PostgresClient` needs its `run()` to be running for the lifetime of any query; `Database.withRunning`
/// keeps that inside structured concurrency so no task outlives the caller.
public struct Database: Sendable {
    public let client: PostgresClient
    public let logger: Logger

    public init(url: String, maximumConnections: Int = 20, logger: Logger) throws(StorageError) {
        var configuration = try Self.configuration(url: url)
        configuration.options.maximumConnections = maximumConnections
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
    }

    /// Runs `body` while the pool is running, then shuts the pool down. A pool runs once: call this once
    /// per `Database`.
    @discardableResult
    public func withRunning<T: Sendable>(_ body: @Sendable (Database) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Wait until the pool task has begun, so the first query does not race `run()`.
            let (started, signal) = AsyncStream<Void>.makeStream()
            group.addTask {
                signal.finish()
                await client.run()
            }
            for await _ in started {}
            await Task.yield()
            do {
                let result = try await body(self)
                group.cancelAll()
                return result
            } catch {
                group.cancelAll()
                throw error
            }
        }
    }

    /// Fails fast with a readable message when the server is not reachable: the pool itself keeps
    /// retrying for about a minute before it gives up, which is too long for a person at a terminal.
    public func ping(timeout: Duration = .seconds(5)) async throws(StorageError) {
        do {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try await client.query("SELECT 1", logger: logger)
                    return true
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return false
                }
                let answered = try await group.next() ?? false
                group.cancelAll()
                if !answered { throw StorageError.unreachable("no answer within \(timeout)") }
            }
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError.unreachable(String(describing: error))
        }
    }

    /// Parses `postgres://user:password@host:port/database?sslmode=disable|prefer|require`.
    static func configuration(url: String) throws(StorageError) -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url),
            components.scheme == "postgres" || components.scheme == "postgresql",
            let host = components.host, !host.isEmpty
        else {
            throw StorageError.invalidURL("expected postgres://user@host:port/database")
        }
        let database = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard !database.isEmpty else { throw StorageError.invalidURL("the URL names no database after the port") }
        let sslMode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "disable"
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case "disable": tls = .disable
        case "prefer": tls = .prefer(.makeClientConfiguration())
        case "require": tls = .require(.makeClientConfiguration())
        default: throw StorageError.invalidURL("sslmode must be disable, prefer or require")
        }
        return PostgresClient.Configuration(
            host: host,
            port: components.port ?? 5432,
            username: components.user?.removingPercentEncoding ?? "postgres",
            password: components.password?.removingPercentEncoding,
            database: database,
            tls: tls)
    }
}

/// A storage failure with a message a person can act on. `description` never contains row data.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case invalidURL, unreachable, migration, notFound, conflict, query
    }
    public let code: Code
    public let message: String

    public var description: String { message }

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public static func invalidURL(_ detail: String) -> StorageError {
        StorageError(code: .invalidURL, message: "INTELLIDOCS_DATABASE_URL is malformed: \(detail)")
    }
    public static func unreachable(_ detail: String) -> StorageError {
        StorageError(
            code: .unreachable,
            message: "PostgreSQL is not reachable (\(detail)); start it with `deploy/local/stack up` or check INTELLIDOCS_DATABASE_URL")
    }
    public static func migration(_ detail: String) -> StorageError {
        StorageError(code: .migration, message: detail)
    }
    public static func notFound(_ detail: String) -> StorageError {
        StorageError(code: .notFound, message: detail)
    }
}
