/// A limit a plan sets, by its stable name (used in the plans file, in API responses and in errors).
public enum LimitName: String, Sendable, Codable, CaseIterable {
    case documentsPerMonth = "documents_per_month"
    case pagesPerMonth = "pages_per_month"
    case storageBytes = "storage_bytes"
    case seats
    case searchesPerMinute = "searches_per_minute"
    case maxFileBytes = "max_file_bytes"
}

/// The limits of one plan; nil means unlimited.
public struct PlanLimits: Sendable, Equatable, Codable {
    public var documentsPerMonth: Int?
    public var pagesPerMonth: Int?
    public var storageBytes: Int?
    public var seats: Int?
    public var searchesPerMinute: Int?
    public var maxFileBytes: Int?

    public init(
        documentsPerMonth: Int? = nil, pagesPerMonth: Int? = nil, storageBytes: Int? = nil, seats: Int? = nil,
        searchesPerMinute: Int? = nil, maxFileBytes: Int? = nil
    ) {
        self.documentsPerMonth = documentsPerMonth
        self.pagesPerMonth = pagesPerMonth
        self.storageBytes = storageBytes
        self.seats = seats
        self.searchesPerMinute = searchesPerMinute
        self.maxFileBytes = maxFileBytes
    }

    public subscript(_ name: LimitName) -> Int? {
        switch name {
        case .documentsPerMonth: documentsPerMonth
        case .pagesPerMonth: pagesPerMonth
        case .storageBytes: storageBytes
        case .seats: seats
        case .searchesPerMinute: searchesPerMinute
        case .maxFileBytes: maxFileBytes
        }
    }

    enum CodingKeys: String, CodingKey {
        case documentsPerMonth = "documents_per_month", pagesPerMonth = "pages_per_month", storageBytes = "storage_bytes"
        case seats, searchesPerMinute = "searches_per_minute", maxFileBytes = "max_file_bytes"
    }
}

/// A subscription plan (free, pro, enterprise, …) as the plans file defines it.
public struct Plan: Sendable, Equatable, Codable {
    public var name: String
    public var displayName: String
    public var priceCentsPerMonth: Int
    public var limits: PlanLimits

    public init(name: String, displayName: String, priceCentsPerMonth: Int = 0, limits: PlanLimits) {
        self.name = name
        self.displayName = displayName
        self.priceCentsPerMonth = priceCentsPerMonth
        self.limits = limits
    }

    enum CodingKeys: String, CodingKey {
        case name, displayName = "display_name", priceCentsPerMonth = "price_cents_per_month", limits
    }
}

/// Every plan, in the file's order, and the one an organisation without a subscription is on.
/// (`PlanCatalog.load(path:)` in ControlPlane reads it from YAML.)
public struct PlanCatalog: Sendable, Equatable {
    public let plans: [Plan]
    public let defaultPlan: Plan

    public init(plans: [Plan], defaultPlanName: String) throws(PlanCatalogError) {
        guard !plans.isEmpty else { throw PlanCatalogError("the plans file defines no plan") }
        var seen = Set<String>()
        for plan in plans where !seen.insert(plan.name).inserted {
            throw PlanCatalogError("the plans file defines plan '\(plan.name)' twice")
        }
        guard let defaultPlan = plans.first(where: { $0.name == defaultPlanName }) else {
            throw PlanCatalogError("the plans file's default plan '\(defaultPlanName)' is not among its plans")
        }
        self.plans = plans
        self.defaultPlan = defaultPlan
    }

    public func plan(named name: String) -> Plan? { plans.first { $0.name == name } }

    /// The plan an organisation is on: its subscription's, or the default one (also for a plan name the
    /// file no longer has, so that removing a plan never lifts every limit).
    public func plan(for name: String?) -> Plan {
        name.flatMap(plan(named:)) ?? defaultPlan
    }
}

/// The plans file is inconsistent; the message says what to fix.
public struct PlanCatalogError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
