import Foundation
public import Storage
import Yams

extension PlanCatalog {
    /// The default plans file: `INTELLIDOCS_PLANS`, else `config/plans.yml` under the working directory.
    public static let defaultPath = "config/plans.yml"

    /// Reads the plans file:
    ///
    /// ```yaml
    /// version: 1
    /// default: free            # the plan of an organisation without a subscription
    /// plans:
    ///   - name: free
    ///     display_name: Free
    ///     price_cents_per_month: 0
    ///     limits:              # omit a limit, or write `unlimited`, for no limit
    ///       documents_per_month: 100
    ///       pages_per_month: 1000
    ///       storage_bytes: 104857600
    ///       seats: 3
    ///       searches_per_minute: 30
    ///       max_file_bytes: 10485760
    /// ```
    public static func load(path: String) throws(APIConfigurationError) -> PlanCatalog {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw APIConfigurationError("the plans file \(path) cannot be read; set INTELLIDOCS_PLANS to the plans YAML (see config/plans.yml)")
        }
        return try parse(yaml: text, source: path)
    }

    public static func parse(yaml text: String, source: String = "plans") throws(APIConfigurationError) -> PlanCatalog {
        let loaded: Any?
        do {
            loaded = try Yams.load(yaml: text)
        } catch {
            throw APIConfigurationError("\(source) is not valid YAML: \(error)")
        }
        guard let root = loaded as? [String: Any] else { throw APIConfigurationError("\(source) must be a mapping with `default` and `plans`") }
        guard let defaultName = root["default"] as? String else { throw APIConfigurationError("\(source) needs `default: <plan name>`") }
        guard let entries = root["plans"] as? [[String: Any]] else { throw APIConfigurationError("\(source) needs a `plans` list") }
        var plans: [Plan] = []
        for (index, entry) in entries.enumerated() {
            guard let name = entry["name"] as? String, name.range(of: "^[a-z0-9][a-z0-9_-]{0,39}$", options: .regularExpression) != nil else {
                throw APIConfigurationError("\(source): plan \(index + 1) needs a `name` of lower-case letters, digits, '-' or '_'")
            }
            let limitsEntry = entry["limits"] as? [String: Any] ?? [:]
            for key in limitsEntry.keys where LimitName(rawValue: key) == nil {
                throw APIConfigurationError(
                    "\(source): plan '\(name)' has an unknown limit '\(key)'; known: \(LimitName.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            func limit(_ limit: LimitName) throws(APIConfigurationError) -> Int? {
                switch limitsEntry[limit.rawValue] {
                case nil, is NSNull: return nil
                case let value as String where value == "unlimited": return nil
                case let value as Int where value >= 0: return value
                default:
                    throw APIConfigurationError("\(source): plan '\(name)' limit \(limit.rawValue) must be a whole number ≥ 0 or `unlimited`")
                }
            }
            plans.append(Plan(
                name: name, displayName: entry["display_name"] as? String ?? name.capitalized,
                priceCentsPerMonth: entry["price_cents_per_month"] as? Int ?? 0,
                limits: PlanLimits(
                    documentsPerMonth: try limit(.documentsPerMonth), pagesPerMonth: try limit(.pagesPerMonth),
                    storageBytes: try limit(.storageBytes), seats: try limit(.seats),
                    searchesPerMinute: try limit(.searchesPerMinute), maxFileBytes: try limit(.maxFileBytes))))
        }
        do {
            return try PlanCatalog(plans: plans, defaultPlanName: defaultName)
        } catch {
            throw APIConfigurationError("\(source): \(error)")
        }
    }
}
