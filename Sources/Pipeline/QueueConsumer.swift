public import Broker
import Foundation
public import Logging
public import ServiceLifecycle

/// Consumes jobs that are not pipeline stages — workflow events, webhook calls — with the same promises
/// as `StageWorker`: a job is acked only after its handler finished; a transient failure goes to the
/// queue's retry queue for the next delay while attempts remain; a permanent failure or the last attempt
/// goes to the dead-letter queue with the reason; a crash leaves the delivery for the broker to redeliver.
///
/// Unlike a stage, these jobs have no stage run and never fail their document: the handler records its
/// own outcome (a workflow run, a webhook delivery) and must be idempotent for a redelivered job.
public struct QueueConsumer: Service {
    /// Handles one job; `lastAttempt` tells it that a failure now is final, so it can record that.
    public typealias Handler = @Sendable (_ job: Job, _ lastAttempt: Bool) async -> StageFailure?

    let definition: PipelineDefinition.StageDefinition
    let broker: BrokerConnection
    let logger: Logger
    let handler: Handler
    let publisher: JobPublisher
    let metrics: StageMetrics
    public let counters: WorkerCounters

    public init(
        definition: PipelineDefinition.StageDefinition, broker: BrokerConnection, logger: Logger, counters: WorkerCounters = WorkerCounters(),
        handler: @escaping Handler
    ) {
        self.definition = definition
        self.broker = broker
        var logger = logger
        logger[metadataKey: "stage"] = "\(definition.name)"
        self.logger = logger
        self.handler = handler
        self.publisher = JobPublisher(broker: broker)
        self.metrics = StageMetrics(stage: definition.name)
        self.counters = counters
    }

    public func run() async throws {
        let deliveries: AsyncStream<IncomingMessage>
        do {
            deliveries = try await broker.consume(queue: definition.queue, prefetch: max(definition.prefetch, definition.concurrency))
        } catch {
            throw PipelineError(
                code: .topology,
                message: "cannot consume from queue '\(definition.queue)' (\(error)); run `intellidocs topology apply`, and check the queue with `rabbitmqctl list_queues name type state`")
        }
        let buffer = DeliveryBuffer(batchSize: 1)
        logger.info("consumer started", metadata: ["queue": "\(definition.queue)", "concurrency": "\(definition.concurrency)"])
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await message in deliveries.cancelOnGracefulShutdown() { await buffer.append(message) }
                await buffer.finish()
            }
            for _ in 0..<max(1, definition.concurrency) {
                group.addTask {
                    while true {
                        let batch = await buffer.next()
                        if batch.isEmpty { return }
                        for message in batch { await handle(message) }
                    }
                }
            }
        }
        logger.info("consumer stopped")
    }

    func handle(_ message: IncomingMessage) async {
        metrics.inFlight.increment()
        defer { metrics.inFlight.decrement() }
        let job: Job
        do {
            job = try Job.decode(message.body)
        } catch {
            await deadLetter(message, body: message.body, reason: error.message, kind: "malformed")
            return
        }
        let started = ContinuousClock.now
        if let failure = await handler(job, job.attempt >= definition.maxAttempts) {
            await fail(message, job, failure)
            return
        }
        metrics.duration.record(duration: ContinuousClock.now - started)
        metrics.succeeded.increment()
        counters.add(succeeded: 1)
        await broker.ack(message)
    }

    func fail(_ message: IncomingMessage, _ job: Job, _ failure: StageFailure) async {
        if failure.kind == .transient && job.attempt < definition.maxAttempts {
            let delay = definition.delay(afterAttempt: job.attempt)
            do {
                try await publisher.publish(job.retried(), to: definition.retryQueue(delay: delay))
                logger.warning("job failed; retrying", metadata: [
                    "job_id": "\(job.jobID)", "attempt": "\(job.attempt)", "delay": "\(delay)", "reason": "\(failure.reason)",
                ])
                metrics.retried.increment()
                counters.add(retried: 1)
                await broker.ack(message)
            } catch {
                await broker.nack(message, requeue: true)
            }
            return
        }
        let reason = failure.kind == .permanent ? failure.reason : "gave up after \(job.attempt) attempts: \(failure.reason)"
        metrics.failed.increment()
        await deadLetter(message, body: job.encoded(), reason: reason, kind: failure.kind.rawValue)
    }

    private func deadLetter(_ message: IncomingMessage, body: [UInt8], reason: String, kind: String) async {
        do {
            try await broker.publish(
                routingKey: definition.deadLetterQueue, body: body,
                headers: DeadLetterHeader.table(reason: reason, stage: definition.name, kind: kind),
                messageID: message.messageID)
            logger.error("job dead-lettered", metadata: ["reason": "\(reason)"])
            metrics.deadLettered.increment()
            counters.add(deadLettered: 1)
            await broker.ack(message)
        } catch {
            await broker.nack(message, requeue: true)
        }
    }
}
