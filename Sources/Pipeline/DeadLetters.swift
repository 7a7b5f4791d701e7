public import Broker
public import Foundation
public import Logging
public import PostgresNIO
public import Storage

/// A job in a stage's parking lot, as a person needs to see it.
public struct DeadLetter: Sendable, Codable, Equatable {
    public let documentID: UUID?
    public let orgID: UUID?
    public let attempt: Int?
    public let reason: String
    public let failure: String
    public let failedAt: String?

    enum CodingKeys: String, CodingKey {
        case documentID = "document_id", orgID = "org_id", attempt, reason, failure, failedAt = "failed_at"
    }
}

/// `intellidocs dlq list|replay|purge`: reading, replaying and emptying a stage's dead-letter queue.
public struct DeadLetterQueue: Sendable {
    let broker: BrokerConnection
    let database: Database
    let definition: PipelineDefinition.StageDefinition
    let logger: Logger
    /// Puts the job's record back before it is replayed (in its own transaction).
    let reset: @Sendable (Job, PostgresConnection) async throws -> Void

    /// A pipeline stage's parking lot: a replayed job's document and stage run return to `queued`.
    public init(broker: BrokerConnection, database: Database, stage: PipelineDefinition.StageDefinition, logger: Logger) {
        let stageRuns = StageRunRepository(logger: logger)
        self.init(broker: broker, database: database, stage: stage, logger: logger) { job, connection in
            try await stageRuns.requeue(stage: stage.name, documentID: job.documentID, orgID: job.orgID, on: connection)
        }
    }

    /// A queue whose jobs are not stage runs (workflow events, webhook calls): `reset` says what a replay resets.
    public init(
        broker: BrokerConnection, database: Database, stage: PipelineDefinition.StageDefinition, logger: Logger,
        reset: @escaping @Sendable (Job, PostgresConnection) async throws -> Void
    ) {
        self.broker = broker
        self.database = database
        self.definition = stage
        self.logger = logger
        self.reset = reset
    }

    /// Up to `limit` dead letters, left in the queue (read, then returned unacked).
    public func list(limit: Int) async throws -> [DeadLetter] {
        // Messages are held unacked while reading, so `get` does not return the same one twice; all of
        // them go back to the queue at the end, also when reading fails half-way.
        var held: [IncomingMessage] = []
        var letters: [DeadLetter] = []
        do {
            while letters.count < limit, let message = try await broker.get(queue: definition.deadLetterQueue) {
                held.append(message)
                letters.append(Self.describe(message))
            }
        } catch {
            for message in held { await broker.nack(message, requeue: true) }
            throw error
        }
        for message in held { await broker.nack(message, requeue: true) }
        return letters
    }

    /// Moves up to `limit` dead letters back to the stage's work queue as fresh first attempts, returning
    /// their documents to `queued`. Returns how many were replayed.
    public func replay(limit: Int) async throws -> Int {
        let publisher = JobPublisher(broker: broker)
        var replayed = 0
        while replayed < limit, let message = try await broker.get(queue: definition.deadLetterQueue) {
            guard var job = try? Job.decode(message.body) else {
                // An undecodable message cannot be replayed; keep it for a person to inspect.
                await broker.nack(message, requeue: true)
                logger.warning("skipping an undecodable dead letter; purge it once inspected")
                break
            }
            job.attempt = 1
            job.enqueuedAt = Date()
            let reset = job
            try await database.client.withTransaction(logger: logger) { connection in
                try await self.reset(reset, connection)
            }
            try await publisher.publish(reset, to: definition.queue)
            await broker.ack(message)
            replayed += 1
        }
        return replayed
    }

    /// Deletes every dead letter of the stage; returns how many there were.
    public func purge() async throws -> Int {
        try await broker.purgeQueue(definition.deadLetterQueue)
    }

    static func describe(_ message: IncomingMessage) -> DeadLetter {
        let job = try? Job.decode(message.body)
        func header(_ name: String) -> String? {
            if case .string(let value)? = message.headers[name] { return value }
            return nil
        }
        // Jobs the broker dead-lettered itself (delivery limit) carry x-first-death-reason instead of ours.
        let brokerReason = header("x-first-death-reason").map { "dead-lettered by the broker: \($0) (the job crashed its worker repeatedly)" }
        return DeadLetter(
            documentID: job?.documentID, orgID: job?.orgID, attempt: job?.attempt,
            reason: header(DeadLetterHeader.reason) ?? brokerReason ?? "unknown",
            failure: header(DeadLetterHeader.kind) ?? (brokerReason == nil ? "unknown" : "delivery_limit"),
            failedAt: header(DeadLetterHeader.failedAt))
    }
}
