import Foundation
import Logging
import PostgresNIO

/// Applies the numbered `.sql` files under `Migrations/` in order, each inside its own transaction, and
/// records them in `schema_migrations`.
///
/// Idempotent: applied versions are skipped. Refuses to touch a schema that is newer than this binary
/// (a newer version recorded than the highest file shipped), since older code would then write rows the
/// newer schema does not expect. Concurrent runs serialise on a transaction-level advisory lock.
public struct Migrator: Sendable {
    public struct Migration: Sendable {
        public let version: Int
        public let name: String
        public let sql: String
    }

    public let migrations: [Migration]
    static let lockKey: Int64 = 0x1D0C_5000

    public init() throws(StorageError) {
        self.migrations = try Self.bundledMigrations()
    }

    public init(migrations: [Migration]) {
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    public var latestVersion: Int { migrations.last?.version ?? 0 }

    /// Returns the versions applied by this call (empty when the schema was already current).
    @discardableResult
    public func migrate(_ database: Database) async throws -> [Int] {
        let logger = database.logger
        try await database.client.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """, logger: logger)
        var applied: [Int] = []
        for migration in migrations {
            let didApply = try await Self.unwrapping { try await database.client.withTransaction(logger: logger) { connection -> Bool in
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: logger)
                let newest = try await Self.currentVersion(connection, logger: logger)
                if newest > latestVersion {
                    throw StorageError.migration(
                        "the database schema is at version \(newest), newer than this binary knows (\(latestVersion)); run a newer intellidocs")
                }
                let rows = try await connection.query(
                    "SELECT 1 FROM schema_migrations WHERE version = \(migration.version)", logger: logger)
                for try await _ in rows { return false }
                for statement in Self.statements(in: migration.sql) {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: logger)
                return true
            } }
            if didApply {
                logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
                applied.append(migration.version)
            }
        }
        // Also refuse when there was nothing to apply but the schema is ahead.
        let newest = try await database.client.withConnection { try await Self.currentVersion($0, logger: logger) }
        if newest > latestVersion {
            throw StorageError.migration(
                "the database schema is at version \(newest), newer than this binary knows (\(latestVersion)); run a newer intellidocs")
        }
        return applied
    }

    /// A failed transaction wraps the closure's error; surface ours so callers see a `StorageError`.
    static func unwrapping<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as PostgresTransactionError {
            if let inner = error.closureError as? StorageError { throw inner }
            throw error
        }
    }

    /// The highest applied version, or 0 for an empty database.
    public func currentVersion(_ database: Database) async throws -> Int {
        try await database.client.withConnection { connection in
            let exists = try await connection.query(
                "SELECT to_regclass('schema_migrations') IS NOT NULL", logger: database.logger)
            for try await (present) in exists.decode(Bool.self) where !present { return 0 }
            return try await Self.currentVersion(connection, logger: database.logger)
        }
    }

    static func currentVersion(_ connection: PostgresConnection, logger: Logger) async throws -> Int {
        let rows = try await connection.query("SELECT coalesce(max(version), 0) FROM schema_migrations", logger: logger)
        for try await version in rows.decode(Int.self) { return version }
        return 0
    }

    /// Splits a migration file into statements at `;` line ends, outside `$$` blocks: the extended query
    /// protocol PostgresNIO speaks takes one statement per query.
    static func statements(in sql: String) -> [String] {
        var statements: [String] = []
        var current = ""
        var inDollarBlock = false
        for line in sql.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("--") && current.isEmpty { continue }
            current += line + "\n"
            if line.components(separatedBy: "$$").count % 2 == 0 { inDollarBlock.toggle() }
            if !inDollarBlock && trimmed.hasSuffix(";") {
                statements.append(current.trimmingCharacters(in: .whitespacesAndNewlines))
                current = ""
            }
        }
        let rest = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !rest.isEmpty && !rest.split(separator: "\n").allSatisfy({ $0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }) {
            statements.append(rest)
        }
        return statements
    }

    static func bundledMigrations() throws(StorageError) -> [Migration] {
        guard let folder = Bundle.module.url(forResource: "Migrations", withExtension: nil),
            let files = try? FileManager.default.contentsOfDirectory(atPath: folder.path)
        else {
            throw StorageError.migration("the migrations folder is missing from the Storage resources bundle; rebuild intellidocs")
        }
        var migrations: [Migration] = []
        for file in files where file.hasSuffix(".sql") {
            let stem = String(file.dropLast(4))
            guard let underscore = stem.firstIndex(of: "_"), let version = Int(stem[..<underscore]) else {
                throw StorageError.migration("migration file \(file) must be named NNNN_name.sql")
            }
            guard let sql = try? String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8) else {
                throw StorageError.migration("migration file \(file) cannot be read")
            }
            migrations.append(Migration(version: version, name: String(stem[stem.index(after: underscore)...]), sql: sql))
        }
        let sorted = migrations.sorted { $0.version < $1.version }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.version == b.version {
            throw StorageError.migration("two migrations share version \(a.version): \(a.name) and \(b.name)")
        }
        return sorted
    }
}
