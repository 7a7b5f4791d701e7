import ArgumentParser
import Foundation
import Importing
import Pipeline
import Search
import ServiceLifecycle
import Storage
import Synchronization

struct SampleCorpusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample-corpus", abstract: "Write a generated corpus of text, Markdown and HTML documents.")
    @Argument(help: "Folder to write into.") var folder: String
    @Option(help: "Number of documents.") var count = 200
    @Option(help: "Random seed.") var seed: UInt64 = 1

    func run() throws {
        let paths = try SampleCorpus.write(count: count, to: folder, seed: seed)
        print("wrote \(paths.count) documents to \(folder)")
    }
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks that print JSON.", subcommands: [ImportBench.self, SearchBench.self, OCRBench.self, EmbedBench.self])

    struct ImportBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Import generated text documents through every stage with in-process workers; print documents/second.")
        @OptionGroup var options: GlobalOptions
        @Option(help: "Documents to generate (about 1–2 KB each).") var documents = 5000
        @Option(help: "Batch processors per stage.") var concurrency: Int?

        struct Result: Encodable {
            let benchmark = "import"
            let documents: Int
            let succeeded: Int
            let failed: Int
            let chunks: Int
            let importSeconds: Double
            let seconds: Double
            let documentsPerSecond: Double
            enum CodingKeys: String, CodingKey {
                case benchmark, documents, succeeded, failed, chunks, seconds
                case importSeconds = "import_seconds", documentsPerSecond = "documents_per_second"
            }
        }

        func run() async throws {
            try await Services.with(options, label: "intellidocs.bench") { services in
                let folder = FileManager.default.temporaryDirectory.appendingPathComponent("intellidocs-bench-\(UUID().uuidString)").path
                defer { try? FileManager.default.removeItem(atPath: folder) }
                try SampleCorpus.write(count: documents, to: folder, seed: UInt64.random(in: 1...UInt64.max), formats: false)
                let slug = "bench-\(UUID().uuidString.prefix(8).lowercased())"
                let organization = try await OrganizationRepository(services.database).create(slug: slug, name: "Benchmark")
                let (workers, brokers) = try await makeWorkers(services, stages: services.pipelineDefinition.stages.map(\.name), concurrency: concurrency)
                let importBroker = try await services.connectBroker(name: "intellidocs bench import")
                let result: Result = try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in workers { group.addTask { try await worker.run() } }
                    let started = ContinuousClock.now
                    let imported = try await Importer(
                        database: services.database, blobs: try services.blobStore(), publisher: JobPublisher(broker: importBroker),
                        pipeline: services.pipelineDefinition, logger: services.logger
                    ).run(paths: [folder], organization: organization, format: .auto)
                    let importSeconds = (ContinuousClock.now - started) / .seconds(1)
                    let progress = ProgressLine()
                    let state = try await ImportWaiter(database: services.database).wait(
                        for: imported.documentIDs, orgID: organization.id, pollInterval: .milliseconds(100)
                    ) { progress.update("\($0.succeeded + $0.failed)/\($0.total) done") }
                    progress.finish()
                    let seconds = (ContinuousClock.now - started) / .seconds(1)
                    group.cancelAll()
                    let stats = try await OrganizationStats.load(orgID: organization.id, database: services.database)
                    return Result(
                        documents: documents, succeeded: state.succeeded, failed: state.failed, chunks: stats.chunks,
                        importSeconds: (importSeconds * 100).rounded() / 100, seconds: (seconds * 100).rounded() / 100,
                        documentsPerSecond: (Double(state.succeeded) / seconds * 10).rounded() / 10)
                }
                await importBroker.close()
                for broker in brokers { await broker.close() }
                try printJSON(result)
            }
        }
    }

    struct SearchBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "search",
            abstract: "Search latency under load: N clients run the queries in turn for S seconds; print qps and p50/p95/p99.",
            discussion: "The first pass over the queries (at most 50) warms the caches (vector index, PostgreSQL) and is not measured.")
        @OptionGroup var options: GlobalOptions
        @Option(help: "Organisation slug.") var org: String
        @Option(help: "queries.jsonl ({\"_id\", \"text\"} per line).") var queries: String
        @Option(help: "hybrid, keyword or semantic (default: hybrid when the model is configured, else keyword).") var mode: SearchMode?
        @Option(help: "Clients searching at once.") var concurrency = 16
        @Option(help: "Seconds to measure.") var seconds = 20
        @Option(help: "Results per query.") var limit = 10
        @Flag(help: "Print {\"queries\", \"qps\", \"p50_ms\", \"p95_ms\", \"p99_ms\"} as JSON.") var json = false

        struct Result: Encodable {
            let queries: Int
            let qps: Double
            let p50: Double
            let p95: Double
            let p99: Double
            enum CodingKeys: String, CodingKey { case queries, qps, p50 = "p50_ms", p95 = "p95_ms", p99 = "p99_ms" }
        }

        func validate() throws {
            if concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
            if seconds < 1 { throw ValidationError("--seconds must be at least 1") }
            if limit < 1 || limit > 100 { throw ValidationError("--limit must be between 1 and 100") }
        }

        func run() async throws {
            let texts = try BEIRFiles.queries(path: queries).map(\.text)
            guard !texts.isEmpty else { throw CLIError("\(queries) holds no queries") }
            try await Services.with(options, label: "intellidocs.bench") { services in
                let organization = try await services.organization(org)
                let service = try await services.searchService(longRunning: true)
                try await service.warmUp(orgID: organization.id)
                let mode = mode ?? (service.hasSemanticLeg ? .hybrid : .keyword)
                let limit = limit
                let orgID = organization.id
                for text in texts.prefix(50) {
                    _ = try await service.search(SearchRequest(query: text, mode: mode, limit: limit), orgID: orgID)
                }
                let next = QueryCursor()
                let clock = ContinuousClock()
                let deadline = clock.now + .seconds(seconds)
                let started = clock.now
                let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
                    for _ in 0..<concurrency {
                        group.addTask {
                            var mine: [Double] = []
                            while clock.now < deadline {
                                let index = next.take() % texts.count
                                let begin = clock.now
                                _ = try await service.search(SearchRequest(query: texts[index], mode: mode, limit: limit), orgID: orgID)
                                mine.append((clock.now - begin) / .milliseconds(1))
                            }
                            return mine
                        }
                    }
                    var all: [Double] = []
                    for try await part in group { all += part }
                    return all.sorted()
                }
                let elapsed = (clock.now - started) / .seconds(1)
                func percentile(_ p: Double) -> Double {
                    guard !latencies.isEmpty else { return 0 }
                    let rank = Int((p * Double(latencies.count)).rounded(.up)) - 1
                    return (latencies[min(max(rank, 0), latencies.count - 1)] * 10).rounded() / 10
                }
                let result = Result(
                    queries: latencies.count, qps: (Double(latencies.count) / elapsed * 10).rounded() / 10,
                    p50: percentile(0.50), p95: percentile(0.95), p99: percentile(0.99))
                if json {
                    try printJSON(result)
                } else {
                    print("\(mode.rawValue), \(concurrency) clients, \(result.queries) queries in \(String(format: "%.1f", elapsed)) s: \(result.qps) qps, p50 \(result.p50) ms, p95 \(result.p95) ms, p99 \(result.p99) ms")
                }
            }
        }
    }
}

/// Hands out query numbers to the benchmark's clients, in turn.
private final class QueryCursor: Sendable {
    private let next = Atomic<Int>(0)
    func take() -> Int { next.add(1, ordering: .relaxed).oldValue }
}
