import Blobs
import Broker
import Foundation
import Importing
import Logging
import Pipeline
import PostgresNIO
import Stages
import Storage
import TestSupport

/// The pipeline the tests run: the default stages with short retry delays.
let testPipeline = try! PipelineDefinition.parse(
    """
    version: 1
    name: test
    defaults:
      max_attempts: 3
      retry_delays: [1s, 2s]
      delivery_limit: 5
      prefetch: 100
      batch_size: 50
      concurrency: 2
    stages:
      - name: ingest
      - name: chunk
        options: {max_tokens: 200, overlap: 30}
      - name: index
    """)

extension TestEnvironment {
    /// Imports `paths` into `organization` through the real importer and broker.
    func importFiles(
        _ paths: [String], into organization: Organization, format: ImportFormat = .auto, maxFileBytes: Int? = nil
    ) async throws -> ImportResult {
        let broker = try await broker("importer")
        do {
            try await Topology.apply(testPipeline, broker: broker)
            var importer = Importer(
                database: database, blobs: blobs, publisher: JobPublisher(broker: broker), pipeline: testPipeline, logger: logger)
            if let maxFileBytes { importer.maxFileBytes = maxFileBytes }
            let result = try await importer.run(paths: paths, organization: organization, format: format)
            await broker.close()
            return result
        } catch {
            await broker.close()
            throw error
        }
    }

    /// Runs in-process workers for every stage while `body` runs, then stops them. `wrap` lets a test put
    /// a fault-injecting stage in place of a real one.
    func withWorkers<T: Sendable>(
        wrapChunk: (@Sendable (ChunkStage) -> FaultyStage<ChunkStage>)? = nil,
        _ body: @Sendable () async throws -> T
    ) async throws -> T {
        let broker = try await broker("workers")
        try await Topology.apply(testPipeline, broker: broker)
        let ingest = try StageWorker(stage: IngestStage(blobs: blobs), pipeline: testPipeline, broker: broker, database: database, logger: logger)
        let chunkStage = try ChunkStage(options: testPipeline.stage(named: "chunk")!.options)
        let index = try StageWorker(stage: IndexStage(), pipeline: testPipeline, broker: broker, database: database, logger: logger)
        do {
            let result = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await ingest.run() }
                if let wrapChunk {
                    let chunk = try StageWorker(stage: wrapChunk(chunkStage), pipeline: testPipeline, broker: broker, database: database, logger: logger)
                    group.addTask { try await chunk.run() }
                } else {
                    let chunk = try StageWorker(stage: chunkStage, pipeline: testPipeline, broker: broker, database: database, logger: logger)
                    group.addTask { try await chunk.run() }
                }
                group.addTask { try await index.run() }
                let result = try await body()
                group.cancelAll()
                return result
            }
            await broker.close()
            return result
        } catch {
            await broker.close()
            throw error
        }
    }

    func wait(for ids: [UUID], orgID: UUID, seconds: Int = 120) async throws -> WaitProgress {
        try await ImportWaiter(database: database).wait(for: ids, orgID: orgID, pollInterval: .milliseconds(100), timeout: .seconds(seconds))
    }
}

/// Wraps a stage and fails chosen documents: transiently for their first `transientAttempts` attempts, or
/// permanently while `permanent` contains them. A test removes the cause by clearing the set.
struct FaultyStage<Wrapped: Stage>: Stage {
    let wrapped: Wrapped
    let transientAttempts: Int
    let transientDocuments: Set<UUID>
    let permanent: FaultSwitch

    var name: String { wrapped.name }

    func prepare(_ jobs: [Job], context: StageContext) async -> [Result<Wrapped.Output, StageFailure>] {
        let real = await wrapped.prepare(jobs, context: context)
        return zip(jobs, real).map { job, result in
            if permanent.contains(job.documentID) { return .failure(.permanent("injected permanent fault")) }
            if transientDocuments.contains(job.documentID) && job.attempt <= transientAttempts {
                return .failure(.transient("injected transient fault on attempt \(job.attempt)"))
            }
            return result
        }
    }

    func write(_ results: [(job: Job, output: Wrapped.Output)], on connection: PostgresConnection, context: StageContext) async throws {
        try await wrapped.write(results, on: connection, context: context)
    }
}

/// A set of document ids that can be changed while workers run.
final class FaultSwitch: Sendable {
    private let ids: Mutex<Set<UUID>>
    init(_ ids: Set<UUID> = []) { self.ids = Mutex(ids) }
    func contains(_ id: UUID) -> Bool { ids.withLock { $0.contains(id) } }
    func clear() { ids.withLock { $0.removeAll() } }
}

import Synchronization
