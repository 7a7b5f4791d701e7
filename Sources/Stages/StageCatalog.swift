public import Blobs
public import Broker
public import Logging
public import Pipeline
public import ServiceLifecycle
public import Storage

/// Builds the worker for a stage named in a pipeline definition. The one place that knows every stage
/// by name: the runtime itself never does.
public struct StageCatalog: Sendable {
    public static let knownStages = ["ingest", "chunk", "index"]

    let blobs: any BlobStore

    public init(blobs: any BlobStore) { self.blobs = blobs }

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
            return try StageWorker(stage: IngestStage(blobs: blobs), pipeline: pipeline, broker: broker, database: database, logger: logger, concurrency: concurrency, counters: counters)
        case "chunk":
            return try StageWorker(stage: ChunkStage(options: definition.options), pipeline: pipeline, broker: broker, database: database, logger: logger, concurrency: concurrency, counters: counters)
        case "index":
            return try StageWorker(stage: IndexStage(), pipeline: pipeline, broker: broker, database: database, logger: logger, concurrency: concurrency, counters: counters)
        default:
            throw PipelineError(code: .unknownStage, message: "unknown stage '\(name)' (this binary has: \(Self.knownStages.joined(separator: ", ")))")
        }
    }
}
