public import Foundation
public import Logging
public import PostgresNIO

/// Whether a platform admin suspended the organisation (it can then read but not add).
public enum OrganizationStatus: String, Sendable, Codable {
    case active, suspended
}

/// Subscription status, driven by the billing provider: `active | past_due | canceled`.
public enum SubscriptionStatus: String, Sendable, Codable, CaseIterable {
    case active
    case pastDue = "past_due"
    case canceled
}

/// An organisation as the control plane sees it: the tenant plus its status and subscription.
public struct OrganizationAccount: Sendable, Equatable {
    public let id: UUID
    public let slug: String
    public let name: String
    public let status: OrganizationStatus
    /// Nil when the organisation has no subscription row yet (created by the CLI): the default plan.
    public let plan: String?
    /// Nil when the organisation has no subscription row yet: active.
    public let subscriptionStatus: SubscriptionStatus?
    public let createdAt: Date

    public var organization: Organization { Organization(id: id, slug: slug, name: name) }
}

/// The organisation writes and reads of the control plane, on a caller's connection so that they share a
/// transaction with the audit entry. (`OrganizationRepository` serves the CLI and the pipeline.)
public struct OrganizationAccountRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    static func columns(_ alias: String) -> String {
        "\(alias).id, \(alias).slug, \(alias).name, \(alias).status, \(alias).created_at, s.plan, s.status"
    }

    static let select = "SELECT \(columns("o")) FROM organizations o LEFT JOIN subscriptions s ON s.org_id = o.id"

    static func decode(_ row: PostgresRow) throws -> OrganizationAccount {
        let (id, slug, name, status, created, plan, subscription) = try row.decode(
            (UUID, String, String, String, Date, String?, String?).self)
        return OrganizationAccount(
            id: id, slug: slug, name: name, status: OrganizationStatus(rawValue: status) ?? .active, plan: plan,
            subscriptionStatus: subscription.flatMap(SubscriptionStatus.init(rawValue:)), createdAt: created)
    }

    /// Decodes the organisation columns followed by one extra column.
    static func decode<Extra: PostgresDecodable>(_ row: PostgresRow, extra: Extra.Type) throws -> (OrganizationAccount, Extra) {
        let (id, slug, name, status, created, plan, subscription, value) = try row.decode(
            (UUID, String, String, String, Date, String?, String?, Extra).self)
        let account = OrganizationAccount(
            id: id, slug: slug, name: name, status: OrganizationStatus(rawValue: status) ?? .active, plan: plan,
            subscriptionStatus: subscription.flatMap(SubscriptionStatus.init(rawValue:)), createdAt: created)
        return (account, value)
    }

    /// Creates an organisation; a taken slug is a `conflict` error.
    public func create(slug: String, name: String, on connection: PostgresConnection) async throws -> Organization {
        let id = UUID()
        let rows = try await connection.query(
            """
            INSERT INTO organizations (id, slug, name) VALUES (\(id), \(slug), \(name))
            ON CONFLICT (slug) DO NOTHING RETURNING id
            """, logger: logger)
        for try await _ in rows { return Organization(id: id, slug: slug, name: name) }
        throw StorageError(code: .conflict, message: "organisation '\(slug)' already exists")
    }

    public func find(slug: String, on connection: PostgresConnection) async throws -> OrganizationAccount? {
        let rows = try await connection.query("\(unescaped: Self.select) WHERE o.slug = \(slug)", logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    public func find(id: UUID, on connection: PostgresConnection) async throws -> OrganizationAccount? {
        let rows = try await connection.query("\(unescaped: Self.select) WHERE o.id = \(id)", logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    /// Takes the organisation's row lock until the end of the transaction: membership changes, seat
    /// counting and plan changes of one organisation happen one at a time. `NO KEY UPDATE` so that inserts
    /// referencing the organisation (documents, usage) are not blocked by their foreign-key checks.
    public func lock(orgID: UUID, on connection: PostgresConnection) async throws {
        try await connection.query("SELECT id FROM organizations WHERE id = \(orgID) FOR NO KEY UPDATE", logger: logger)
    }

    public func rename(orgID: UUID, name: String, on connection: PostgresConnection) async throws {
        try await connection.query("UPDATE organizations SET name = \(name) WHERE id = \(orgID)", logger: logger)
    }

    public func setStatus(orgID: UUID, _ status: OrganizationStatus, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            UPDATE organizations SET status = \(status.rawValue),
                   suspended_at = CASE WHEN \(status.rawValue) = 'suspended' THEN now() ELSE NULL END
            WHERE id = \(orgID)
            """, logger: logger)
    }

    /// Deletes the organisation and, by cascade, everything it owns (its audit entries stay).
    public func delete(orgID: UUID, on connection: PostgresConnection) async throws {
        try await connection.query("DELETE FROM organizations WHERE id = \(orgID)", logger: logger)
    }

    /// Every organisation with its member count, by slug, starting after `afterSlug` (platform admin).
    public func all(afterSlug: String?, limit: Int, on connection: PostgresConnection) async throws -> [(OrganizationAccount, Int)] {
        let rows = try await connection.query(
            """
            SELECT \(unescaped: Self.columns("o")), (SELECT count(*) FROM memberships m WHERE m.org_id = o.id)::int8
            FROM organizations o LEFT JOIN subscriptions s ON s.org_id = o.id
            WHERE \(afterSlug)::text IS NULL OR o.slug > \(afterSlug)
            ORDER BY o.slug LIMIT \(limit)
            """, logger: logger)
        var result: [(OrganizationAccount, Int)] = []
        for try await row in rows { result.append(try Self.decode(row, extra: Int.self)) }
        return result
    }
}
