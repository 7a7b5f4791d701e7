public import Foundation
import Yams

/// Everything a process needs to reach the outside world, read once at start-up.
///
/// Values come from environment variables (`INTELLIDOCS_*`), optionally backed by a YAML config file
/// named by `INTELLIDOCS_CONFIG` (keys are the variable names without the prefix, lower-cased:
/// `database_url`, `amqp_url`, …). The environment wins over the file so that a deployment can override a
/// single value. A missing or malformed value fails at start with a message naming the variable.
public struct Settings: Sendable {
    public var databaseURL: String
    public var amqpURL: String
    /// RabbitMQ management API (`http://user:pass@host:port`), used for queue figures; optional.
    public var amqpManagementURL: String?
    public var blobDirectory: String
    /// The pipeline definition; defaults to `pipelines/default.yml` under the working directory.
    public var pipelinePath: String
    public var modelDirectory: String?
    /// HS256 key of the API's access tokens (`INTELLIDOCS_JWT_SECRET`, ≥ 32 bytes); needed by `intellidocs api`.
    public var jwtSecret: String? = nil
    /// HMAC-SHA256 key of the billing webhook (`INTELLIDOCS_BILLING_WEBHOOK_SECRET`); optional.
    public var billingWebhookSecret: String? = nil
    /// The subscription plans file (`INTELLIDOCS_PLANS`, default `config/plans.yml`).
    public var plansPath: String = "config/plans.yml"
    /// Organisations with more chunk vectors than this are searched through an HNSW graph instead of an
    /// exact scan (`INTELLIDOCS_ANN_THRESHOLD`, default 50,000; set it above the largest organisation to
    /// keep every search exact).
    public var annThreshold: Int = 50_000

    public init(
        databaseURL: String, amqpURL: String, amqpManagementURL: String? = nil, blobDirectory: String,
        pipelinePath: String = "pipelines/default.yml", modelDirectory: String? = nil
    ) {
        self.databaseURL = databaseURL
        self.amqpURL = amqpURL
        self.amqpManagementURL = amqpManagementURL
        self.blobDirectory = blobDirectory
        self.pipelinePath = pipelinePath
        self.modelDirectory = modelDirectory
    }

    /// Reads the settings from `environment` (and the config file it may name).
    public static func load(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(SettingsError) -> Settings {
        var values = environment
        if let configPath = environment["INTELLIDOCS_CONFIG"], !configPath.isEmpty {
            for (key, value) in try readConfigFile(configPath) where values[key] == nil {
                values[key] = value
            }
        }
        func required(_ name: String, hint: String) throws(SettingsError) -> String {
            guard let value = values[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else {
                throw SettingsError(variable: name, problem: "is not set; \(hint)")
            }
            return value
        }
        let stackHint = "run `eval \"$(deploy/local/stack env)\"` after `deploy/local/stack up`"
        let database = try required("INTELLIDOCS_DATABASE_URL", hint: stackHint)
        guard database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") else {
            throw SettingsError(
                variable: "INTELLIDOCS_DATABASE_URL",
                problem: "must start with postgres:// (got a value starting with '\(database.prefix(12))')")
        }
        let amqp = try required("INTELLIDOCS_AMQP_URL", hint: stackHint)
        guard amqp.hasPrefix("amqp://") else {
            throw SettingsError(variable: "INTELLIDOCS_AMQP_URL", problem: "must start with amqp://")
        }
        let management = values["INTELLIDOCS_AMQP_MANAGEMENT_URL"].flatMap { $0.isEmpty ? nil : $0 }
        if let management, URL(string: management)?.host == nil {
            throw SettingsError(
                variable: "INTELLIDOCS_AMQP_MANAGEMENT_URL", problem: "is not a URL like http://user:pass@host:port")
        }
        let blobs = try required("INTELLIDOCS_BLOB_DIR", hint: stackHint)
        var settings = Settings(
            databaseURL: database,
            amqpURL: amqp,
            amqpManagementURL: management,
            blobDirectory: blobs,
            pipelinePath: values["INTELLIDOCS_PIPELINE"].flatMap { $0.isEmpty ? nil : $0 } ?? "pipelines/default.yml",
            modelDirectory: values["INTELLIDOCS_MODEL_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        )
        settings.jwtSecret = values["INTELLIDOCS_JWT_SECRET"].flatMap { $0.isEmpty ? nil : $0 }
        settings.billingWebhookSecret = values["INTELLIDOCS_BILLING_WEBHOOK_SECRET"].flatMap { $0.isEmpty ? nil : $0 }
        settings.plansPath = values["INTELLIDOCS_PLANS"].flatMap { $0.isEmpty ? nil : $0 } ?? "config/plans.yml"
        if let threshold = values["INTELLIDOCS_ANN_THRESHOLD"]?.trimmingCharacters(in: .whitespaces), !threshold.isEmpty {
            guard let value = Int(threshold.replacingOccurrences(of: "_", with: "")), value >= 0 else {
                throw SettingsError(
                    variable: "INTELLIDOCS_ANN_THRESHOLD", problem: "must be a whole number of vectors, 0 or more (got '\(threshold.prefix(20))')")
            }
            settings.annThreshold = value
        }
        return settings
    }

    private static func readConfigFile(_ path: String) throws(SettingsError) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            throw SettingsError(variable: "INTELLIDOCS_CONFIG", problem: "names \(path), which cannot be read")
        }
        let loaded: Any?
        do {
            loaded = try Yams.load(yaml: text)
        } catch {
            throw SettingsError(variable: "INTELLIDOCS_CONFIG", problem: "file \(path) is not valid YAML: \(error)")
        }
        guard let mapping = loaded as? [String: Any] else {
            throw SettingsError(variable: "INTELLIDOCS_CONFIG", problem: "file \(path) must be a mapping of key: value")
        }
        var result: [String: String] = [:]
        for (key, value) in mapping {
            result["INTELLIDOCS_" + key.uppercased()] = "\(value)"
        }
        return result
    }
}

/// A setting is missing or malformed. The message names the variable and what to do.
public struct SettingsError: Error, CustomStringConvertible, Sendable {
    public let variable: String
    public let problem: String
    public var description: String { "configuration error: \(variable) \(problem)" }
}
