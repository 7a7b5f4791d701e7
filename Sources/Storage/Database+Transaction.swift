public import PostgresNIO

extension Database {
    /// Runs `body` in one transaction and rethrows the body's own error (not PostgresNIO's
    /// `PostgresTransactionError` wrapper), so callers can match on the errors they throw themselves.
    /// A thrown error rolls the transaction back.
    public func inTransaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withTransaction(logger: logger) { connection in
                try await body(connection)
            }
        } catch let error as PostgresTransactionError {
            if let closureError = error.closureError { throw closureError }
            throw error
        }
    }

    /// Runs `body` with one pooled connection (no transaction).
    public func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await client.withConnection { connection in try await body(connection) }
    }
}
