import Blobs
import Broker
import Foundation
import Logging
import Pipeline
import Settings
import Embedding
import Search
import Stages
import Storage

/// Options every command that talks to the services shares.
struct GlobalOptions: ParsableArguments {
    @Option(help: "The pipeline definition (default: INTELLIDOCS_PIPELINE or pipelines/default.yml).")
    var pipeline: String?

    @Flag(help: "Log debug detail.")
    var verbose = false
}

import ArgumentParser

/// The services one command invocation uses, built from the settings and torn down at the end.
struct Services: Sendable {
    let settings: Settings
    let database: Database
    let logger: Logger
    let pipelineDefinition: PipelineDefinition

    /// Loads settings and the pipeline, starts the database pool, runs `body`, shuts everything down.
    static func with<T: Sendable>(
        _ options: GlobalOptions, label: String = "intellidocs",
        _ body: @Sendable (Services) async throws -> T
    ) async throws -> T {
        Observability.bootstrap()
        let settings = try Settings.load()
        var configuredLogger = Logger(label: label)
        // Commands log warnings and errors; long-running workers also say what they are doing.
        configuredLogger.logLevel = options.verbose ? .debug : (label == "intellidocs.worker" ? .info : .warning)
        let logger = configuredLogger
        let pipeline = try PipelineDefinition.load(path: options.pipeline ?? settings.pipelinePath)
        try StageCatalog.validate(pipeline)
        let database = try Database(url: settings.databaseURL, logger: logger)
        return try await database.withRunning { database in
            try await database.ping()
            return try await body(Services(settings: settings, database: database, logger: logger, pipelineDefinition: pipeline))
        }
    }

    func blobStore() throws -> FileBlobStore {
        try FileBlobStore(root: settings.blobDirectory)
    }

    /// A connected broker connection; the caller closes it.
    func connectBroker(name: String) async throws -> BrokerConnection {
        var configuration = try BrokerConfiguration(url: settings.amqpURL)
        configuration.connectionName = name
        let broker = BrokerConnection(configuration: configuration, logger: logger)
        do {
            try await broker.connect()
        } catch {
            throw CLIError("RabbitMQ is not reachable: \(error.message)")
        }
        return broker
    }

    /// Runs `body` with a connected broker, closing it afterwards whatever happens.
    func withBroker<T: Sendable>(name: String, _ body: @Sendable (BrokerConnection) async throws -> T) async throws -> T {
        let broker = try await connectBroker(name: name)
        do {
            let result = try await body(broker)
            await broker.close()
            return result
        } catch {
            await broker.close()
            throw error
        }
    }

    /// The search service, with the semantic leg when the embedding model is configured.
    ///
    /// `longRunning`: a searcher that answers many searches (the API, benchmarks, evaluation) keeps BM25
    /// postings in memory and builds an HNSW graph for organisations above the ANN threshold. A one-shot
    /// search asks SQL for keywords and scans the vectors exactly: a graph would be thrown away at exit,
    /// and its background build crashed inside OpenBLAS when the process exited under it.
    func searchService(longRunning: Bool = false) async throws -> SearchService {
        let keywordIndex = longRunning ? KeywordIndex(database: database) : nil
        guard let directory = settings.modelDirectory else { return SearchService(database: database, keywordIndex: keywordIndex) }
        let embedder: SentenceEmbedder
        do {
            embedder = try SentenceEmbedder(modelDirectory: directory)
        } catch {
            throw CLIError("\(error.description) (INTELLIDOCS_MODEL_DIR)")
        }
        let index = VectorIndex(
            database: database, dimension: embedder.dimension, model: SentenceEmbedder.modelName,
            approximate: ApproximateSearchOptions(threshold: longRunning ? settings.annThreshold : .max))
        return SearchService(database: database, semantic: SemanticLeg(embedder: embedder, index: index, database: database), keywordIndex: keywordIndex)
    }

    func organization(_ slug: String) async throws -> Organization {
        try await OrganizationRepository(database).require(slug: slug)
    }
}

/// A command failed in a way the user can fix; the message says how.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Writes one JSON value to standard output.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
