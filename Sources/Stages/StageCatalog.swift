public import Blobs
public import Broker
public import Logging
public import Pipeline
public import ServiceLifecycle
public import Storage
public import Embedding
import Synchronization

/// Builds the worker for a stage named in a pipeline definition. The one place that knows every stage
/// by name: the runtime itself never does.
public struct StageCatalog: Sendable {
    public static let knownStages = ["ingest", "ocr", "chunk", "embed", "index"]

    let blobs: any BlobStore
    let model: ModelResources

    public init(blobs: any BlobStore, modelDirectory: String? = nil) {
        self.blobs = blobs
        self.model = ModelResources(directory: modelDirectory)
    }

    /// Checks that every stage of the definition is one this binary has.
    public static func validate(_ pipeline: PipelineDefinition) throws(PipelineError) {
        for stage in pipeline.stages where !knownStages.contains(stage.name) {
            throw PipelineError(
                code: .unknownStage,
                message: "pipeline '\(pipeline.name)' line \(stage.line): unknown stage '\(stage.name)' (this binary has: \(knownStages.joined(separator: ", ")))")
        }
    }

    public func worker(
        for name: String, pipeline: PipelineDefinition, broker: BrokerConnection, database: Database, logger: Logger,
        concurrency: Int? = nil, counters: WorkerCounters = WorkerCounters()
    ) throws(PipelineError) -> any Service {
        guard let definition = pipeline.stage(named: name) else {
            throw PipelineError(
                code: .unknownStage,
                message: "stage '\(name)' is not in pipeline '\(pipeline.name)' (it has: \(pipeline.stages.map(\.name).joined(separator: ", ")))")
        }
        switch name {
        case "ingest":
            return try StageWorker(stage: IngestStage(blobs: blobs, reader: DocumentReader(pipeline: pipeline)), pipeline: pipeline, broker: broker, database: database, logger: logger, concurrency: concurrency, counters: counters)
        case "ocr":
            return try StageWorker(stage: OCRStage(blobs: blobs, options: definition.options), pipeline: pipeline, broker: broker, database: database, logger: logger, concurrency: concurrency, counters: counters)
        case "chunk":
            let tokenizer = definition.options["measure"] == "wordpiece" ? try model.embedder().tokenizer : nil
            return try StageWorker(stage: ChunkStage(options: definition.options, tokenizer: tokenizer), pipeline: pipeline, broker: broker, database: database, logger: logger, concurrency: concurrency, counters: counters)
        case "embed":
            return try StageWorker(stage: EmbedStage(embedder: model.embedder(), options: definition.options), pipeline: pipeline, broker: broker, database: database, logger: logger, concurrency: concurrency, counters: counters)
        case "index":
            return try StageWorker(stage: IndexStage(), pipeline: pipeline, broker: broker, database: database, logger: logger, concurrency: concurrency, counters: counters)
        default:
            throw PipelineError(code: .unknownStage, message: "unknown stage '\(name)' (this binary has: \(Self.knownStages.joined(separator: ", ")))")
        }
    }
}

/// The embedding model, loaded once per process on first use and shared by the chunk and embed stages.
public final class ModelResources: Sendable {
    let directory: String?
    private let loaded = Mutex<SentenceEmbedder?>(nil)

    public init(directory: String?) { self.directory = directory }

    public func embedder() throws(PipelineError) -> SentenceEmbedder {
        if let embedder = loaded.withLock({ $0 }) { return embedder }
        guard let directory else {
            throw PipelineError(
                code: .invalidDefinition,
                message: "this pipeline needs the embedding model: set INTELLIDOCS_MODEL_DIR (deploy/local/stack up installs it and `deploy/local/stack env` prints it)")
        }
        do {
            let embedder = try SentenceEmbedder(modelDirectory: directory)
            loaded.withLock { $0 = embedder }
            return embedder
        } catch {
            throw PipelineError(code: .invalidDefinition, message: error.description)
        }
    }
}
