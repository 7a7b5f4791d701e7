public import Broker
import Foundation
public import Logging
import PostgresNIO
import Metrics
import Synchronization
public import ServiceLifecycle
public import Storage

/// Runs one stage: consume → prepare → commit → publish next → ack (DESIGN.md, A document's way).
///
/// `concurrency` batch processors share one consumer. Each delivery is acked only after its results are
/// committed and the next stage's job is confirmed by the broker; a crash anywhere before that leaves the
/// message unacked, the broker redelivers it, and the stage-run check turns the repeat into a re-publish.
public struct StageWorker<S: Stage>: Service {
    let stage: S
    let pipeline: PipelineDefinition
    let definition: PipelineDefinition.StageDefinition
    let broker: BrokerConnection
    let database: Database
    let logger: Logger
    let concurrency: Int
    let stageRuns: StageRunRepository
    let publisher: JobPublisher
    public let counters: WorkerCounters
    let metrics: StageMetrics

    public init(
        stage: S, pipeline: PipelineDefinition, broker: BrokerConnection, database: Database, logger: Logger,
        concurrency: Int? = nil, counters: WorkerCounters = WorkerCounters()
    ) throws(PipelineError) {
        guard let definition = pipeline.stage(named: stage.name) else {
            throw PipelineError(code: .unknownStage, message: "stage '\(stage.name)' is not in pipeline '\(pipeline.name)'")
        }
        self.stage = stage
        self.pipeline = pipeline
        self.definition = definition
        self.broker = broker
        self.database = database
        var logger = logger
        logger[metadataKey: "stage"] = "\(stage.name)"
        self.logger = logger
        self.concurrency = max(1, concurrency ?? definition.concurrency)
        self.stageRuns = StageRunRepository(logger: logger)
        self.publisher = JobPublisher(broker: broker)
        self.counters = counters
        self.metrics = StageMetrics(stage: stage.name)
    }

    public func run() async throws {
        let deliveries: AsyncStream<IncomingMessage>
        do {
            deliveries = try await broker.consume(queue: definition.queue, prefetch: max(definition.prefetch, definition.batchSize))
        } catch {
            // Seen when a quorum queue has no running replica (state `down` in `rabbitmqctl list_queues name
            // type state`): the broker answers INTERNAL_ERROR instead of a clear refusal.
            throw PipelineError(
                code: .topology,
                message: "cannot consume from queue '\(definition.queue)' (\(error)); check it with `rabbitmqctl list_queues name type state`: "
                    + "a quorum queue in state `down` has lost its replicas; if it is empty, delete it (`rabbitmqctl delete_queue \(definition.queue)`), "
                    + "run `intellidocs topology apply` and start the worker again")
        }
        let buffer = DeliveryBuffer(batchSize: definition.batchSize)
        logger.info("worker started", metadata: ["queue": "\(definition.queue)", "concurrency": "\(concurrency)"])
        await withDiscardingTaskGroup { group in
            group.addTask {
                // Graceful shutdown stops taking new deliveries; what is buffered is still finished.
                for await message in deliveries.cancelOnGracefulShutdown() {
                    await buffer.append(message)
                }
                await buffer.finish()
            }
            for _ in 0..<concurrency {
                group.addTask {
                    while true {
                        let batch = await buffer.next()
                        if batch.isEmpty { return }
                        await process(batch)
                    }
                }
            }
        }
        logger.info("worker stopped")
    }

    /// Handles one batch of deliveries; never throws: every delivery ends acked, dead-lettered, sent to a
    /// retry queue, or left unacked for the broker to redeliver.
    func process(_ messages: [IncomingMessage]) async {
        metrics.inFlight.increment(by: Double(messages.count))
        defer { metrics.inFlight.decrement(by: Double(messages.count)) }
        var pending: [(message: IncomingMessage, job: Job)] = []
        for message in messages {
            do {
                let job = try Job.decode(message.body)
                guard job.stage == stage.name else {
                    await deadLetterUndecodable(message, reason: "job for stage '\(job.stage)' arrived on the queue of '\(stage.name)'")
                    continue
                }
                pending.append((message, job))
            } catch {
                await deadLetterUndecodable(message, reason: error.message)
            }
        }
        // The same document twice in one batch (a redelivered job and the copy its re-publishing made, after
        // a worker died between publishing and acking): one job does the work; the copy is acked now, which
        // is safe because the kept job stays unacked until its outcome is settled.
        var seenDocuments = Set<UUID>()
        var unique: [(message: IncomingMessage, job: Job)] = []
        for item in pending {
            if seenDocuments.insert(item.job.documentID).inserted {
                unique.append(item)
            } else {
                await broker.ack(item.message)
            }
        }
        pending = unique
        if pending.isEmpty { return }
        let startedAt = Date()
        let batchStarted = ContinuousClock.now

        // 1. Jobs whose stage run already succeeded only need their next job re-published.
        let alreadyDone: Set<UUID>
        do {
            alreadyDone = try await database.client.withConnection { connection in
                try await stageRuns.succeeded(
                    stage: stage.name, documentIDs: pending.map(\.job.documentID), orgIDs: pending.map(\.job.orgID),
                    on: connection)
            }
        } catch {
            for item in pending { await fail(item.message, item.job, .transient("database unavailable: \(error)")) }
            return
        }
        let repeats = pending.filter { alreadyDone.contains($0.job.documentID) }
        if !repeats.isEmpty {
            logger.debug("re-publishing for already processed documents", metadata: ["count": "\(repeats.count)"])
            await publishNextAndAck(repeats)
        }
        let work = pending.filter { !alreadyDone.contains($0.job.documentID) }
        if work.isEmpty { return }

        // 2. Prepare, each job on its own.
        let context = StageContext(database: database, logger: logger, definition: definition)
        let results = await stage.prepare(work.map(\.job), context: context)
        var prepared: [(message: IncomingMessage, job: Job, output: S.Output)] = []
        for (item, result) in zip(work, results) {
            switch result {
            case .success(let output): prepared.append((item.message, item.job, output))
            case .failure(let failure): await fail(item.message, item.job, failure)
            }
        }
        if results.count < work.count {
            for item in work.dropFirst(results.count) {
                await fail(item.message, item.job, .transient("stage '\(stage.name)' returned no result for this job"))
            }
        }
        if prepared.isEmpty { return }

        // 3. Commit the batch; if that fails, commit one by one so one bad row cannot fail its neighbours.
        var committed: [(message: IncomingMessage, job: Job)] = []
        do {
            try await commit(prepared, startedAt: startedAt, context: context)
            committed = prepared.map { ($0.message, $0.job) }
        } catch {
            if prepared.count == 1 {
                await fail(prepared[0].message, prepared[0].job, .transient("writing results failed: \(String(describing: error))"))
            } else {
                logger.warning("batch commit failed; committing one by one", metadata: ["error": "\(String(describing: error))"])
                for item in prepared {
                    do {
                        try await commit([item], startedAt: startedAt, context: context)
                        committed.append((item.message, item.job))
                    } catch {
                        await fail(item.message, item.job, .transient("writing results failed: \(String(describing: error))"))
                    }
                }
            }
        }
        counters.add(succeeded: committed.count)
        metrics.succeeded.increment(by: committed.count)
        let elapsed = ContinuousClock.now - batchStarted
        for _ in committed { metrics.duration.record(duration: elapsed) }
        let committedIDs = Set(committed.map(\.job.jobID))
        var produced: [String: Int] = [:]
        for item in prepared where committedIDs.contains(item.job.jobID) {
            if let (kind, count) = stage.produced(item.output) { produced[kind, default: 0] += count }
        }
        for (kind, count) in produced { metrics.produced(kind: kind, count: count) }

        // 4. Publish the next jobs (confirmed), then ack.
        await publishNextAndAck(committed)
    }

    private func commit(
        _ items: [(message: IncomingMessage, job: Job, output: S.Output)], startedAt: Date, context: StageContext
    ) async throws {
        let isLast = pipeline.stage(after: stage.name) == nil
        try await database.client.withTransaction(logger: logger) { connection in
            // A twin of one of these jobs may have committed since step 1: it did the work, this copy does not.
            let done = try await stageRuns.claim(stage: stage.name, documentIDs: items.map(\.job.documentID), on: connection)
            let fresh = items.filter { !done.contains($0.job.documentID) }
            if fresh.isEmpty { return }
            try await stage.write(fresh.map { ($0.job, $0.output) }, on: connection, context: context)
            try await stageRuns.markSucceeded(
                stage: stage.name, documentIDs: fresh.map(\.job.documentID), orgIDs: fresh.map(\.job.orgID),
                attempts: fresh.map(\.job.attempt), startedAt: startedAt, isLastStage: isLast, on: connection)
        }
    }

    private func publishNextAndAck(_ items: [(message: IncomingMessage, job: Job)]) async {
        guard let next = pipeline.stage(after: stage.name) else {
            for item in items { await broker.ack(item.message) }
            return
        }
        let failures = await publisher.publish(items.map { $0.job.next(stage: next.name) }, to: next.queue)
        for (index, item) in items.enumerated() {
            if let error = failures[index] {
                // Not acked: the broker redelivers it and the stage-run check re-publishes.
                logger.warning("next job not confirmed; leaving the delivery for redelivery", metadata: [
                    "document_id": "\(item.job.documentID)", "error": "\(error)",
                ])
                await broker.nack(item.message, requeue: true)
            } else {
                await broker.ack(item.message)
            }
        }
    }

    /// Routes a failed job: a retry queue while attempts remain for a transient failure, else the
    /// dead-letter queue with the document failed.
    func fail(_ message: IncomingMessage, _ job: Job, _ failure: StageFailure) async {
        var logger = self.logger
        logger[metadataKey: "document_id"] = "\(job.documentID)"
        logger[metadataKey: "org_id"] = "\(job.orgID)"
        logger[metadataKey: "traceparent"] = "\(job.traceparent)"
        let retry = failure.kind == .transient && job.attempt < definition.maxAttempts
        do {
            if retry {
                let delay = definition.delay(afterAttempt: job.attempt)
                try await database.client.withConnection { connection in
                    try await stageRuns.markRetrying(
                        stage: stage.name, documentID: job.documentID, orgID: job.orgID, attempt: job.attempt,
                        error: failure.reason, on: connection)
                }
                try await publisher.publish(job.retried(), to: definition.retryQueue(delay: delay))
                logger.warning("job failed; retrying", metadata: [
                    "attempt": "\(job.attempt)", "delay": "\(delay)", "reason": "\(failure.reason)",
                ])
                counters.add(retried: 1)
                metrics.retried.increment()
            } else {
                let reason = failure.kind == .permanent
                    ? failure.reason : "gave up after \(job.attempt) attempts: \(failure.reason)"
                try await database.client.withTransaction(logger: logger) { connection in
                    try await stageRuns.markFailed(
                        stage: stage.name, documentID: job.documentID, orgID: job.orgID, attempt: job.attempt,
                        error: reason, on: connection)
                }
                try await publisher.publish(job, to: definition.deadLetterQueue, headers: deadLetterHeaders(reason, kind: failure.kind.rawValue))
                logger.error("job failed; dead-lettered", metadata: ["attempt": "\(job.attempt)", "reason": "\(reason)"])
                counters.add(deadLettered: 1)
                metrics.failed.increment()
                metrics.deadLettered.increment()
            }
            await broker.ack(message)
        } catch {
            // Could not record or route the failure: leave it to the broker to redeliver.
            logger.error("could not route a failed job; it will be redelivered", metadata: ["error": "\(error)"])
            await broker.nack(message, requeue: true)
        }
    }

    private func deadLetterUndecodable(_ message: IncomingMessage, reason: String) async {
        logger.error("undecodable job dead-lettered", metadata: ["reason": "\(reason)"])
        do {
            try await broker.publish(
                routingKey: definition.deadLetterQueue, body: message.body,
                headers: deadLetterHeaders(reason, kind: "malformed"), messageID: message.messageID)
            counters.add(deadLettered: 1)
            metrics.deadLettered.increment()
            await broker.ack(message)
        } catch {
            await broker.nack(message, requeue: true)
        }
    }

    private func deadLetterHeaders(_ reason: String, kind: String) -> AMQPTable {
        DeadLetterHeader.table(reason: reason, stage: stage.name, kind: kind)
    }
}

/// Running totals of one worker, read by `intellidocs run` for progress and by benchmarks.
public final class WorkerCounters: Sendable {
    private let state = Mutex((succeeded: 0, retried: 0, deadLettered: 0))
    public init() {}
    public func add(succeeded: Int = 0, retried: Int = 0, deadLettered: Int = 0) {
        state.withLock {
            $0.succeeded += succeeded
            $0.retried += retried
            $0.deadLettered += deadLettered
        }
    }
    public var snapshot: (succeeded: Int, retried: Int, deadLettered: Int) { state.withLock { $0 } }
}
