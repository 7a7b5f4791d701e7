public import ArgumentParser
import Broker
import Foundation
import Pipeline
import Search
import Storage
import Workflows

extension SearchMode: ExpressibleByArgument {}

struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search", abstract: "Search an organisation's documents.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "What to look for.") var query: String
    @Option(help: "Organisation slug.") var org: String
    @Option(help: "hybrid, keyword or semantic (default: hybrid when the embedding model is configured, else keyword).") var mode: SearchMode?
    @Option(help: "Number of results (1-100).") var limit = 10
    @Option(help: "Only documents carrying all these tags (repeatable).") var tag: [String] = []
    @Option(help: "Only documents of these MIME types (repeatable).") var mimeType: [String] = []
    @Flag(help: "Leave out near duplicates of older documents (the older one stands for them).") var collapseDuplicates = false
    @Flag(help: "Print {\"query\", \"results\": [...]} as JSON.") var json = false

    struct Output: Encodable {
        let query: String
        let results: [SearchResult]
    }

    func run() async throws {
        guard limit >= 1 && limit <= 100 else { throw ValidationError("--limit must be between 1 and 100") }
        try await Services.with(options) { services in
            let organization = try await services.organization(org)
            let service = try await services.searchService()
            let mode = mode ?? (service.hasSemanticLeg ? .hybrid : .keyword)
            let filters = SearchFilters(tags: tag, mimeTypes: mimeType, collapseNearDuplicates: collapseDuplicates)
            let results = try await service.search(
                SearchRequest(query: query, mode: mode, limit: limit, filters: filters), orgID: organization.id).results
            if json {
                try printJSON(Output(query: query, results: results))
                return
            }
            if results.isEmpty { print("no results for \"\(query)\" in \(org)") }
            for (rank, result) in results.enumerated() {
                let label = result.externalID.map { "\(result.title) [\($0)]" } ?? result.title
                print("\(rank + 1). \(label)  page \(result.page)  score \(String(format: "%.4f", result.score))")
                let bold = isatty(STDOUT_FILENO) == 1
                let snippet = result.snippet.replacingOccurrences(of: "<mark>", with: bold ? "\u{1B}[1m" : "")
                    .replacingOccurrences(of: "</mark>", with: bold ? "\u{1B}[0m" : "")
                    // Snippets are HTML-escaped; a terminal shows the text itself.
                    .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                    .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
                print("   " + snippet.replacingOccurrences(of: "\n", with: " "))
            }
        }
    }
}

struct Queues: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Per-stage queue figures: ready, unacked, consumers, retrying, dead-lettered.")
    @OptionGroup var options: GlobalOptions
    @Flag(help: "Print {\"stages\": [...]} as JSON (one snapshot).") var json = false
    @Flag(help: "A live view refreshed every second, with rates, durations and time to drain (Ctrl-C to stop).") var watch = false

    /// `stages`: the pipeline's stages, in order (the contract); `event_queues`: workflow events and webhook calls.
    struct Output: Encodable {
        let stages: [StageQueueStats]
        let eventQueues: [StageQueueStats]
        enum CodingKeys: String, CodingKey { case stages, eventQueues = "event_queues" }
    }

    func validate() throws {
        if json && watch { throw ValidationError("--json prints one snapshot; leave out --watch") }
    }

    func run() async throws {
        try await Services.with(options) { services in
            let snapshot: @Sendable () async throws -> [StageQueueStats] = {
                if services.settings.amqpManagementURL != nil {
                    return try await QueueMonitor(
                        pipeline: EventQueues.monitored(services.pipelineDefinition), managementURL: services.settings.amqpManagementURL, broker: nil
                    ).snapshot(virtualHost: try BrokerConfiguration(url: services.settings.amqpURL).virtualHost)
                }
                return try await services.withBroker(name: "intellidocs queues") { broker in
                    try await QueueMonitor(pipeline: EventQueues.monitored(services.pipelineDefinition), managementURL: nil, broker: broker).snapshot()
                }
            }
            if json {
                let all = try await snapshot()
                let pipelineStages = Set(services.pipelineDefinition.stages.map(\.name))
                try printJSON(Output(stages: all.filter { pipelineStages.contains($0.stage) }, eventQueues: all.filter { !pipelineStages.contains($0.stage) }))
            } else if watch {
                try await QueueWatch(snapshot: snapshot, database: services.database).run()
            } else {
                print(QueueWatch.table(try await snapshot(), timings: [:], previousDead: [:], colour: false))
            }
        }
    }
}

/// `intellidocs queues --watch`: redraws the per-stage table every second until interrupted.
struct QueueWatch {
    let snapshot: @Sendable () async throws -> [StageQueueStats]
    let database: Database

    func run() async throws {
        let colour = isatty(STDOUT_FILENO) == 1
        var previousDead: [String: Int] = [:]
        var timings: [String: StageTimings] = [:]
        var refreshes = 0
        while !Task.isCancelled {
            let stats = try await snapshot()
            // Durations move slowly: read them every fifth refresh, not every second.
            if refreshes % 5 == 0 { timings = (try? await StageTimings.recent(database: database)) ?? timings }
            refreshes += 1
            let screen = Self.table(stats, timings: timings, previousDead: previousDead, colour: colour)
            print((colour ? "\u{1B}[H\u{1B}[2J" : "") + "intellidocs queues — \(Date())\n\n" + screen, terminator: "\n")
            try? FileHandle.standardOutput.synchronize()
            previousDead = Dictionary(uniqueKeysWithValues: stats.map { ($0.stage, $0.deadLettered) })
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// The table: one row per stage and a total; the slowest stage to drain is yellow, a stage whose
    /// dead letters grew since the last refresh is red.
    static func table(_ stats: [StageQueueStats], timings: [String: StageTimings], previousDead: [String: Int], colour: Bool) -> String {
        func eta(_ row: StageQueueStats) -> Double? {
            guard row.ready + row.unacked > 0 else { return 0 }
            guard let out = row.outRate, out > 0.01 else { return nil }
            return Double(row.ready + row.unacked) / out
        }
        func format(_ seconds: Double?) -> String {
            guard let seconds else { return "∞" }
            if seconds < 1 { return seconds == 0 ? "-" : "<1s" }
            if seconds < 120 { return "\(Int(seconds))s" }
            if seconds < 7200 { return "\(Int(seconds / 60))m" }
            return "\(Int(seconds / 3600))h"
        }
        func rate(_ value: Double?) -> String { value.map { String(format: "%.1f", $0) } ?? "-" }
        func milliseconds(_ value: Double?) -> String { value.map { String(format: "%.0fms", $0 * 1000) } ?? "-" }
        let bottleneck = stats.filter { $0.ready + $0.unacked > 0 }.max { (eta($0) ?? .infinity) < (eta($1) ?? .infinity) }?.stage
        let header = ["stage", "ready", "in progress", "consumers", "in/s", "out/s", "retrying", "dead", "p50", "p95", "drain in"]
        let widths = [10, 9, 12, 10, 8, 8, 9, 7, 8, 8, 9]
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.padding(toLength: max($1, $0.count + 1), withPad: " ", startingAt: 0) }.joined()
        }
        var lines = [line(header)]
        for row in stats {
            var text = line([
                row.stage, "\(row.ready)", "\(row.unacked)", "\(row.consumers)", rate(row.inRate), rate(row.outRate),
                "\(row.retrying)", "\(row.deadLettered)", milliseconds(timings[row.stage]?.p50), milliseconds(timings[row.stage]?.p95),
                format(eta(row)),
            ])
            if colour {
                if row.deadLettered > (previousDead[row.stage] ?? row.deadLettered) {
                    text = "\u{1B}[31m" + text + "\u{1B}[0m"
                } else if row.stage == bottleneck {
                    text = "\u{1B}[33m" + text + "\u{1B}[0m"
                }
            }
            lines.append(text)
        }
        let backlog = stats.reduce(0) { $0 + $1.ready + $1.unacked + $1.retrying }
        let slowest = stats.compactMap { eta($0) }.max()
        lines.append(line([
            "total", "\(stats.reduce(0) { $0 + $1.ready })", "\(stats.reduce(0) { $0 + $1.unacked })",
            "\(stats.reduce(0) { $0 + $1.consumers })", "", "", "\(stats.reduce(0) { $0 + $1.retrying })",
            "\(stats.reduce(0) { $0 + $1.deadLettered })", "", "", backlog == 0 ? "-" : format(slowest),
        ]))
        return lines.joined(separator: "\n")
    }
}

struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Document, page and chunk counts of an organisation.")
    @OptionGroup var options: GlobalOptions
    @Option(help: "Organisation slug.") var org: String
    @Flag(help: "Print as JSON.") var json = false

    func run() async throws {
        try await Services.with(options) { services in
            let organization = try await services.organization(org)
            let stats = try await OrganizationStats.load(orgID: organization.id, database: services.database)
            if json {
                try printJSON(stats)
            } else {
                let d = stats.documents
                print("documents: \(d.total) (succeeded \(d.succeeded), failed \(d.failed), in progress \(d.inProgress)); pages: \(stats.pages); chunks: \(stats.chunks); near duplicates: \(stats.nearDuplicates)")
            }
        }
    }
}

struct DLQ: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "A stage's dead-letter queue (parking lot).", subcommands: [List.self, Replay.self, Purge.self])

    struct StageOptions: ParsableArguments {
        @OptionGroup var options: GlobalOptions
        @Option(help: "The stage whose dead letters to use.") var stage: String
    }

    static func withQueue<T: Sendable>(_ stageOptions: StageOptions, _ body: @Sendable (DeadLetterQueue) async throws -> T) async throws -> T {
        try await Services.with(stageOptions.options) { services in
            let queues = EventQueues.monitored(services.pipelineDefinition)
            guard let stage = queues.stage(named: stageOptions.stage) else {
                throw CLIError("stage '\(stageOptions.stage)' is not in the pipeline (it has: \(queues.stages.map(\.name).joined(separator: ", ")))")
            }
            return try await services.withBroker(name: "intellidocs dlq") { broker in
                let queue = EventQueues.standard.deadLetterQueue(stage.name, broker: broker, database: services.database, logger: services.logger)
                    ?? DeadLetterQueue(broker: broker, database: services.database, stage: stage, logger: services.logger)
                return try await body(queue)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show dead letters with their reasons (they stay in the queue).")
        @OptionGroup var stageOptions: StageOptions
        @Option(help: "Show at most this many.") var limit = 100
        @Flag(help: "Print {\"stage\", \"dead_letters\": [...]} as JSON.") var json = false

        struct Output: Encodable {
            let stage: String
            let deadLetters: [DeadLetter]
            enum CodingKeys: String, CodingKey { case stage, deadLetters = "dead_letters" }
        }

        func run() async throws {
            let letters = try await DLQ.withQueue(stageOptions) { try await $0.list(limit: limit) }
            if json {
                try printJSON(Output(stage: stageOptions.stage, deadLetters: letters))
                return
            }
            if letters.isEmpty { print("no dead letters for stage \(stageOptions.stage)") }
            for letter in letters {
                print("\(letter.documentID?.uuidString.lowercased() ?? "(undecodable)")  attempt \(letter.attempt ?? 0)  \(letter.failure): \(letter.reason)")
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send dead letters back to the stage as fresh attempts.")
        @OptionGroup var stageOptions: StageOptions
        @Option(help: "Replay at most this many.") var limit = 1_000_000

        func run() async throws {
            let count = try await DLQ.withQueue(stageOptions) { try await $0.replay(limit: limit) }
            print("replayed \(count) dead letter(s) of stage \(stageOptions.stage)")
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete every dead letter of the stage.")
        @OptionGroup var stageOptions: StageOptions

        func run() async throws {
            let count = try await DLQ.withQueue(stageOptions) { try await $0.purge() }
            print("purged \(count) dead letter(s) of stage \(stageOptions.stage)")
        }
    }
}
