public import Foundation
public import Logging
public import PostgresNIO

/// A quota refused an operation. `description` is safe to show to the organisation (numbers, no data).
public struct QuotaError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// A monthly, storage or seat limit would be passed (HTTP 402).
        case limitExceeded = "quota_exceeded"
        /// Too many searches in the current minute (HTTP 429 with Retry-After).
        case rateLimited = "rate_limited"
        /// The organisation is suspended or its subscription canceled: it can read but not add.
        case readOnly = "organization_read_only"
        /// One file is larger than the plan allows (HTTP 413).
        case fileTooLarge = "file_too_large"
    }

    public let code: Code
    public let limit: LimitName?
    /// The plan's value for `limit`.
    public let allowed: Int?
    /// Usage before this request.
    public let used: Int?
    public let requested: Int?
    public let retryAfterSeconds: Int?
    public let message: String

    public var description: String { message }

    public static func exceeded(_ limit: LimitName, allowed: Int, used: Int, requested: Int, plan: String) -> QuotaError {
        QuotaError(
            code: .limitExceeded, limit: limit, allowed: allowed, used: used, requested: requested, retryAfterSeconds: nil,
            message: "\(limit.rawValue) limit reached: \(used) used of \(allowed) on plan '\(plan)', \(requested) more requested; upgrade the plan or wait for the next period")
    }
}

/// An organisation's standing: the plan it is on and whether it may add.
public struct OrganizationStanding: Sendable, Equatable {
    public let plan: Plan
    public let subscriptionStatus: SubscriptionStatus
    public let organizationStatus: OrganizationStatus

    /// False for a suspended organisation or a canceled subscription: it can read but not add.
    public var canAdd: Bool { organizationStatus == .active && subscriptionStatus != .canceled }
}

/// One limit of the plan against the organisation's usage.
public struct LimitUsage: Sendable, Equatable {
    public let limit: LimitName
    /// Nil for a limit without running usage (`max_file_bytes`).
    public let used: Int?
    /// Nil: unlimited.
    public let allowed: Int?
}

/// Plans, usage and quota enforcement for every entry point: the HTTP API and `intellidocs import`
/// call the same methods.
///
/// Every method that adds takes the caller's connection and must run inside the caller's transaction,
/// together with the change it pays for: if the change fails the usage is rolled back with it, and if
/// the quota refuses (a thrown `QuotaError`) the caller's transaction rolls back. Concurrent callers
/// cannot both take the last unit (conditional updates and the organisation row lock).
///
/// ```swift
/// try await database.inTransaction { connection in
///     try await quotas.consume(UsageDelta(documents: 1, storageBytes: size), orgID: org.id, on: connection)
///     // … insert the document row in the same transaction …
/// }
/// ```
public struct QuotaService: Sendable {
    public let plans: PlanCatalog
    let logger: Logger
    let usage: UsageRepository
    let rates: RateWindowRepository

    public init(plans: PlanCatalog, logger: Logger) {
        self.plans = plans
        self.logger = logger
        self.usage = UsageRepository(logger: logger)
        self.rates = RateWindowRepository(logger: logger)
    }

    public func standing(orgID: UUID, on connection: PostgresConnection) async throws -> OrganizationStanding {
        guard let account = try await OrganizationAccountRepository(logger: logger).find(id: orgID, on: connection) else {
            throw StorageError.notFound("organisation \(orgID) does not exist")
        }
        return standing(of: account)
    }

    public func standing(of account: OrganizationAccount) -> OrganizationStanding {
        OrganizationStanding(
            plan: plans.plan(for: account.plan), subscriptionStatus: account.subscriptionStatus ?? .active,
            organizationStatus: account.status)
    }

    /// Throws `readOnly` when the organisation is suspended or its subscription canceled.
    public static func ensureCanAdd(_ standing: OrganizationStanding) throws(QuotaError) {
        if standing.organizationStatus == .suspended {
            throw QuotaError(
                code: .readOnly, limit: nil, allowed: nil, used: nil, requested: nil, retryAfterSeconds: nil,
                message: "the organisation is suspended: it can read but not add; contact the platform administrators")
        }
        if standing.subscriptionStatus == .canceled {
            throw QuotaError(
                code: .readOnly, limit: nil, allowed: nil, used: nil, requested: nil, retryAfterSeconds: nil,
                message: "the organisation's subscription is canceled: it can read but not add; renew the subscription")
        }
    }

    public func ensureCanAdd(orgID: UUID, on connection: PostgresConnection) async throws {
        try Self.ensureCanAdd(try await standing(orgID: orgID, on: connection))
    }

    /// Adds usage (documents, pages, storage, …) if the organisation may add and its plan allows it.
    public func consume(_ delta: UsageDelta, orgID: UUID, on connection: PostgresConnection) async throws {
        let standing = try await standing(orgID: orgID, on: connection)
        try Self.ensureCanAdd(standing)
        let limits = standing.plan.limits
        if let refused = try await usage.increment(
            delta, orgID: orgID, documentsLimit: limits.documentsPerMonth, pagesLimit: limits.pagesPerMonth,
            storageLimit: limits.storageBytes, on: connection)
        {
            let snapshot = try await usage.snapshot(orgID: orgID, on: connection)
            let (used, requested): (Int, Int) =
                switch refused {
                case .documentsPerMonth: (snapshot.documents, delta.documents)
                case .pagesPerMonth: (snapshot.pages, delta.pages)
                default: (snapshot.storageBytes, delta.storageBytes)
                }
            throw QuotaError.exceeded(refused, allowed: limits[refused] ?? 0, used: used, requested: requested, plan: standing.plan.name)
        }
    }

    /// `consume` in a transaction of its own (for callers that register usage before their own writes).
    public func consume(_ delta: UsageDelta, orgID: UUID, database: Database) async throws {
        try await database.inTransaction { connection in
            try await consume(delta, orgID: orgID, on: connection)
        }
    }

    /// Adds usage without checking limits: what the pipeline stages meter after the fact (pages OCR'd,
    /// chunks embedded).
    public func record(_ delta: UsageDelta, orgID: UUID, on connection: PostgresConnection) async throws {
        try await usage.record(delta, orgID: orgID, on: connection)
    }

    /// Refuses a single file larger than the plan's `max_file_bytes`.
    public func checkFileSize(_ bytes: Int, orgID: UUID, on connection: PostgresConnection) async throws {
        let standing = try await standing(orgID: orgID, on: connection)
        if let allowed = standing.plan.limits.maxFileBytes, bytes > allowed {
            throw QuotaError(
                code: .fileTooLarge, limit: .maxFileBytes, allowed: allowed, used: nil, requested: bytes, retryAfterSeconds: nil,
                message: "the file is \(bytes) bytes; plan '\(standing.plan.name)' allows at most \(allowed) bytes per file (max_file_bytes)")
        }
    }

    /// Counts one search against the plan's searches per minute (throws `rateLimited` with the seconds to
    /// wait) and meters it.
    public func takeSearch(orgID: UUID, on connection: PostgresConnection) async throws {
        let standing = try await standing(orgID: orgID, on: connection)
        if let perMinute = standing.plan.limits.searchesPerMinute {
            let decision = try await rates.take(key: "search:\(orgID)", windowSeconds: 60, limit: perMinute, on: connection)
            if !decision.allowed {
                throw QuotaError(
                    code: .rateLimited, limit: .searchesPerMinute, allowed: perMinute, used: decision.count, requested: 1,
                    retryAfterSeconds: decision.retryAfterSeconds,
                    message: "searches_per_minute limit reached: \(decision.count) of \(perMinute) on plan '\(standing.plan.name)'; retry in \(decision.retryAfterSeconds) s")
            }
        }
        try await usage.record(UsageDelta(searches: 1), orgID: orgID, on: connection)
    }

    /// Checks that `count` more members fit the plan's seats. Takes the organisation's row lock, so
    /// concurrent joins are counted one after the other; add the members in the same transaction.
    public func reserveSeats(_ count: Int, orgID: UUID, on connection: PostgresConnection) async throws {
        try await OrganizationAccountRepository(logger: logger).lock(orgID: orgID, on: connection)
        let standing = try await standing(orgID: orgID, on: connection)
        try Self.ensureCanAdd(standing)
        guard let seats = standing.plan.limits.seats else { return }
        let used = try await MembershipRepository(logger: logger).count(orgID: orgID, on: connection)
        if used + count > seats {
            throw QuotaError.exceeded(.seats, allowed: seats, used: used, requested: count, plan: standing.plan.name)
        }
    }

    /// Every limit of the organisation's plan with its current usage.
    public func report(orgID: UUID, plan: Plan, on connection: PostgresConnection) async throws -> (snapshot: UsageSnapshot, limits: [LimitUsage]) {
        let snapshot = try await usage.snapshot(orgID: orgID, on: connection)
        let seats = try await MembershipRepository(logger: logger).count(orgID: orgID, on: connection)
        let searches = try await rates.current(key: "search:\(orgID)", windowSeconds: 60, on: connection).count
        let limits = plan.limits
        let used: [LimitName: Int?] = [
            .documentsPerMonth: snapshot.documents, .pagesPerMonth: snapshot.pages, .storageBytes: snapshot.storageBytes,
            .seats: seats, .searchesPerMinute: searches, .maxFileBytes: nil,
        ]
        return (snapshot, LimitName.allCases.map { LimitUsage(limit: $0, used: used[$0] ?? nil, allowed: limits[$0]) })
    }

    /// The limits `plan` would put below the organisation's current usage (empty: the change is allowed).
    public func violations(movingTo plan: Plan, orgID: UUID, on connection: PostgresConnection) async throws -> [LimitUsage] {
        let (_, usages) = try await report(orgID: orgID, plan: plan, on: connection)
        return usages.filter { usage in
            guard let used = usage.used, let allowed = usage.allowed else { return false }
            // The per-minute rate is transient; it never blocks a plan change.
            return usage.limit != .searchesPerMinute && used > allowed
        }
    }
}
