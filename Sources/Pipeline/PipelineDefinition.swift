import Foundation
import Yams

/// A pipeline read from `pipelines/*.yml`: the ordered stages and, per stage, its queue topology and
/// retry policy.
///
/// ```yaml
/// version: 1
/// name: default
/// defaults:
///   max_attempts: 4          # including the first try
///   retry_delays: [5s, 30s, 5m]
///   delivery_limit: 5        # quorum-queue redeliveries before the broker dead-letters a job
///   prefetch: 100
///   batch_size: 50
///   concurrency: 1
/// stages:
///   - name: ingest
///   - name: chunk
///     options: {max_tokens: 200, overlap: 30}
///   - name: index
/// ```
public struct PipelineDefinition: Sendable, Equatable {
    public struct StageDefinition: Sendable, Equatable {
        public var name: String
        /// The work queue; retry queues are `<queue>.retry.<delay>`, the parking lot `<queue>.dead`.
        public var queue: String
        public var maxAttempts: Int
        public var retryDelays: [Duration]
        public var deliveryLimit: Int
        public var prefetch: Int
        public var batchSize: Int
        public var concurrency: Int
        /// Stage-specific settings, as written.
        public var options: [String: String]
        /// Line in the file, for error messages about this stage.
        public var line: Int

        public var deadLetterQueue: String { "\(queue).dead" }
        public func retryQueue(delay: Duration) -> String { "\(queue).retry.\(PipelineDefinition.format(delay))" }
        public var retryQueues: [String] { retryDelays.map(retryQueue(delay:)) }

        /// The delay before attempt `attempt + 1` after attempt `attempt` failed (attempts count from 1).
        public func delay(afterAttempt attempt: Int) -> Duration {
            retryDelays[min(max(attempt - 1, 0), retryDelays.count - 1)]
        }

        public init(
            name: String, queue: String? = nil, maxAttempts: Int = 4,
            retryDelays: [Duration] = [.seconds(5), .seconds(30), .seconds(300)], deliveryLimit: Int = 5,
            prefetch: Int = 100, batchSize: Int = 50, concurrency: Int = 1, options: [String: String] = [:],
            line: Int = 0
        ) {
            self.name = name
            self.queue = queue ?? name
            self.maxAttempts = maxAttempts
            self.retryDelays = retryDelays
            self.deliveryLimit = deliveryLimit
            self.prefetch = prefetch
            self.batchSize = batchSize
            self.concurrency = concurrency
            self.options = options
            self.line = line
        }
    }

    public var name: String
    public var stages: [StageDefinition]

    public init(name: String, stages: [StageDefinition]) {
        self.name = name
        self.stages = stages
    }

    public func stage(named name: String) -> StageDefinition? { stages.first { $0.name == name } }

    /// The stage after `name`, or nil for the last one.
    public func stage(after name: String) -> StageDefinition? {
        guard let index = stages.firstIndex(where: { $0.name == name }), index + 1 < stages.count else { return nil }
        return stages[index + 1]
    }

    public var firstStage: StageDefinition { stages[0] }

    public static func load(path: String) throws(PipelineError) -> PipelineDefinition {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw PipelineError(
                code: .invalidDefinition,
                message: "cannot read the pipeline definition \(path); set INTELLIDOCS_PIPELINE or run from the repository root")
        }
        return try parse(text, file: path)
    }

    /// Parses and validates a definition; every error names the file, the line and the reason.
    public static func parse(_ text: String, file: String = "pipeline") throws(PipelineError) -> PipelineDefinition {
        func fail(_ node: Node?, _ reason: String) -> PipelineError {
            let line = node?.mark.map { "\($0.line)" } ?? "?"
            return PipelineError(code: .invalidDefinition, message: "\(file):\(line): \(reason)")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw PipelineError(code: .invalidDefinition, message: "\(file): not valid YAML: \(error)")
        } catch {
            throw PipelineError(code: .invalidDefinition, message: "\(file): not valid YAML: \(error)")
        }
        guard let root, let mapping = root.mapping else { throw fail(root, "the file must be a mapping with `version`, `name` and `stages`") }
        for (key, _) in mapping where !["version", "name", "defaults", "stages"].contains(key.string ?? "") {
            throw fail(key, "unknown key '\(key.string ?? "?")' (expected version, name, defaults, stages)")
        }
        guard let version = root["version"] else { throw fail(root, "missing `version: 1`") }
        guard version.int == 1 else { throw fail(version, "unsupported version '\(version.string ?? "?")'; this binary reads version 1") }
        let name = root["name"]?.string ?? "default"

        var defaults = StageDefinition(name: "")
        if let node = root["defaults"] {
            defaults = try applySettings(node, to: defaults, allowName: false, fail: fail)
        }
        guard let stagesNode = root["stages"] else { throw fail(root, "missing `stages`") }
        guard let stageNodes = stagesNode.sequence, !stageNodes.isEmpty else {
            throw fail(stagesNode, "`stages` must be a non-empty list of `- name: STAGE` entries")
        }
        var stages: [StageDefinition] = []
        for node in stageNodes {
            var stage = defaults
            stage.line = node.mark?.line ?? 0
            stage.name = ""
            stage.options = [:]
            stage = try applySettings(node, to: stage, allowName: true, fail: fail)
            if stage.name.isEmpty { throw fail(node, "a stage needs a `name`") }
            if stages.contains(where: { $0.name == stage.name }) { throw fail(node, "stage '\(stage.name)' appears twice") }
            if stage.queue.isEmpty { stage.queue = stage.name }
            if stages.contains(where: { $0.queue == stage.queue }) { throw fail(node, "queue '\(stage.queue)' is used by two stages") }
            stages.append(stage)
        }
        return PipelineDefinition(name: name, stages: stages)
    }

    private static func applySettings(
        _ node: Node, to initial: StageDefinition, allowName: Bool, fail: (Node?, String) -> PipelineError
    ) throws(PipelineError) -> StageDefinition {
        guard let mapping = node.mapping else { throw fail(node, "expected a mapping of settings") }
        var stage = initial
        var queueGiven = false
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            func positive() throws(PipelineError) -> Int {
                guard let number = value.int, number > 0 else { throw fail(value, "`\(key)` must be a positive whole number") }
                return number
            }
            switch key {
            case "name" where allowName:
                guard let text = value.string, text.range(of: "^[a-z][a-z0-9_-]*$", options: .regularExpression) != nil else {
                    throw fail(value, "a stage name must be lower-case letters, digits, '-' or '_'")
                }
                stage.name = text
            case "queue" where allowName:
                guard let text = value.string, !text.isEmpty, text.count < 200 else { throw fail(value, "`queue` must be a non-empty name") }
                stage.queue = text
                queueGiven = true
            case "max_attempts": stage.maxAttempts = try positive()
            case "delivery_limit": stage.deliveryLimit = try positive()
            case "prefetch": stage.prefetch = try positive()
            case "batch_size": stage.batchSize = try positive()
            case "concurrency": stage.concurrency = try positive()
            case "retry_delays":
                guard let items = value.sequence, !items.isEmpty else { throw fail(value, "`retry_delays` must be a list like [5s, 30s, 5m]") }
                var delays: [Duration] = []
                for item in items {
                    guard let text = item.string, let delay = parseDuration(text) else {
                        throw fail(item, "'\(item.string ?? "?")' is not a delay: use a number with ms, s, m or h (e.g. 30s)")
                    }
                    delays.append(delay)
                }
                stage.retryDelays = delays
            case "options" where allowName:
                guard let options = value.mapping else { throw fail(value, "`options` must be a mapping") }
                for (optionKey, optionValue) in options {
                    guard let k = optionKey.string, let v = optionValue.string else { throw fail(optionKey, "options must be plain key: value pairs") }
                    stage.options[k] = v
                }
            default:
                throw fail(keyNode, "unknown setting '\(key)'")
            }
        }
        if allowName && !queueGiven { stage.queue = stage.name }
        return stage
    }

    static func parseDuration(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)), number > 0 else { return nil }
            return .milliseconds(Int64((number * scale * 1000).rounded()))
        }
        return nil
    }

    static func format(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}

/// A pipeline error: a bad definition, a job that cannot be decoded, a topology the broker refused.
public struct PipelineError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable { case invalidDefinition, malformedJob, topology, unknownStage }
    public let code: Code
    public let message: String
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}
