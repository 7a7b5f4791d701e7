public import Foundation
public import Logging
public import PostgresNIO

/// An organisation's subscription row.
public struct SubscriptionRecord: Sendable, Equatable {
    public let orgID: UUID
    public let plan: String
    public let status: SubscriptionStatus
    public let updatedAt: Date
}

/// Subscriptions (one per organisation) and the billing events already applied to them.
public struct SubscriptionRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    /// The subscription, or nil when the organisation has none yet (default plan, active).
    public func get(orgID: UUID, on connection: PostgresConnection) async throws -> SubscriptionRecord? {
        let rows = try await connection.query(
            "SELECT org_id, plan, status, updated_at FROM subscriptions WHERE org_id = \(orgID)", logger: logger)
        for try await (org, plan, status, updated) in rows.decode((UUID, String, String, Date).self) {
            return SubscriptionRecord(orgID: org, plan: plan, status: SubscriptionStatus(rawValue: status) ?? .active, updatedAt: updated)
        }
        return nil
    }

    /// Creates the subscription on `plan` if the organisation has none.
    public func ensure(orgID: UUID, plan: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            "INSERT INTO subscriptions (org_id, plan) VALUES (\(orgID), \(plan)) ON CONFLICT (org_id) DO NOTHING",
            logger: logger)
    }

    /// Moves the organisation to `plan`, creating the row when missing. Returns the previous plan (nil: none).
    @discardableResult
    public func setPlan(orgID: UUID, plan: String, on connection: PostgresConnection) async throws -> String? {
        let previous = try await get(orgID: orgID, on: connection)?.plan
        try await connection.query(
            """
            INSERT INTO subscriptions (org_id, plan) VALUES (\(orgID), \(plan))
            ON CONFLICT (org_id) DO UPDATE SET plan = EXCLUDED.plan, updated_at = now()
            """, logger: logger)
        return previous
    }

    /// Sets the status (billing provider), creating the row on `defaultPlan` when missing.
    public func setStatus(orgID: UUID, _ status: SubscriptionStatus, defaultPlan: String, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO subscriptions (org_id, plan, status) VALUES (\(orgID), \(defaultPlan), \(status.rawValue))
            ON CONFLICT (org_id) DO UPDATE SET status = EXCLUDED.status, updated_at = now()
            """, logger: logger)
    }

    /// Records a billing event id; false when it was seen before (the event must not be applied again).
    public func recordBillingEvent(id: String, type: String, orgID: UUID?, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            """
            INSERT INTO billing_events (id, type, org_id) VALUES (\(id), \(type), \(orgID))
            ON CONFLICT (id) DO NOTHING RETURNING id
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }
}
