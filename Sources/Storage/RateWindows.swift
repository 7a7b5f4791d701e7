public import Logging
public import PostgresNIO

/// The answer of a fixed-window rate counter.
public struct RateDecision: Sendable, Equatable {
    public let allowed: Bool
    /// Events counted in the current window (including this one when allowed).
    public let count: Int
    /// Seconds until the current window ends (at least 1).
    public let retryAfterSeconds: Int
}

/// Fixed-window event counters keyed by text (`search:<org>`, `login-ip:<ip>`, `login-account:<email>`).
/// Windows are aligned to multiples of their length on the database clock, so every API process agrees.
public struct RateWindowRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    static func windowStart(_ seconds: Int) -> String {
        "to_timestamp(floor(extract(epoch FROM now()) / \(seconds)) * \(seconds))"
    }

    /// Counts one event if fewer than `limit` were counted in the current window; atomic under concurrency.
    public func take(key: String, windowSeconds: Int, limit: Int, on connection: PostgresConnection) async throws -> RateDecision {
        let seconds = max(windowSeconds, 1)
        if limit > 0 {
            let rows = try await connection.query(
                """
                INSERT INTO rate_windows (key, window_start, count) VALUES (\(key), \(unescaped: Self.windowStart(seconds)), 1)
                ON CONFLICT (key, window_start) DO UPDATE SET count = rate_windows.count + 1 WHERE rate_windows.count < \(limit)
                RETURNING count, greatest(ceil(extract(epoch FROM (window_start + make_interval(secs => \(Double(seconds))) - now()))), 1)::int8
                """, logger: logger)
            for try await (count, retry) in rows.decode((Int, Int).self) {
                if count == 1 { try await prune(key: key, windowSeconds: seconds, on: connection) }
                return RateDecision(allowed: true, count: count, retryAfterSeconds: retry)
            }
        }
        let (count, retry) = try await current(key: key, windowSeconds: seconds, on: connection)
        return RateDecision(allowed: false, count: count, retryAfterSeconds: retry)
    }

    /// Counts one event without a limit; returns the window's count.
    @discardableResult
    public func add(key: String, windowSeconds: Int, on connection: PostgresConnection) async throws -> Int {
        let seconds = max(windowSeconds, 1)
        let rows = try await connection.query(
            """
            INSERT INTO rate_windows (key, window_start, count) VALUES (\(key), \(unescaped: Self.windowStart(seconds)), 1)
            ON CONFLICT (key, window_start) DO UPDATE SET count = rate_windows.count + 1
            RETURNING count
            """, logger: logger)
        for try await count in rows.decode(Int.self) {
            if count == 1 { try await prune(key: key, windowSeconds: seconds, on: connection) }
            return count
        }
        return 0
    }

    /// The current window's count and the seconds until it ends.
    public func current(key: String, windowSeconds: Int, on connection: PostgresConnection) async throws -> (count: Int, retryAfterSeconds: Int) {
        let seconds = max(windowSeconds, 1)
        let rows = try await connection.query(
            """
            SELECT coalesce((SELECT count FROM rate_windows WHERE key = \(key) AND window_start = w.start), 0)::int8,
                   greatest(ceil(extract(epoch FROM (w.start + make_interval(secs => \(Double(seconds))) - now()))), 1)::int8
            FROM (SELECT \(unescaped: Self.windowStart(seconds)) AS start) w
            """, logger: logger)
        for try await (count, retry) in rows.decode((Int, Int).self) { return (count, retry) }
        return (0, seconds)
    }

    /// Forgets the key's counts (a successful login clears the account's failures).
    public func clear(key: String, on connection: PostgresConnection) async throws {
        try await connection.query("DELETE FROM rate_windows WHERE key = \(key)", logger: logger)
    }

    private func prune(key: String, windowSeconds: Int, on connection: PostgresConnection) async throws {
        try await connection.query(
            "DELETE FROM rate_windows WHERE key = \(key) AND window_start < \(unescaped: Self.windowStart(windowSeconds))",
            logger: logger)
    }
}
