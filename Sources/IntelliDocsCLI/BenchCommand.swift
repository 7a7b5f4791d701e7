import ArgumentParser
import Foundation
import Importing
import Pipeline
import ServiceLifecycle
import Storage

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
    static let configuration = CommandConfiguration(abstract: "Benchmarks that print JSON.", subcommands: [ImportBench.self, OCRBench.self, EmbedBench.self])

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
}
