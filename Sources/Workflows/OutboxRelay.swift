import Foundation
public import Logging
public import Pipeline
import PostgresNIO
public import ServiceLifecycle
public import Storage

/// Moves the outbox to the broker: workflow events and webhook deliveries written by committed
/// transactions are published (confirmed) to their queues, then marked published.
///
/// Rows are taken `FOR UPDATE SKIP LOCKED`, so relays in several processes share the work. A relay that
/// dies after publishing but before marking leaves the rows unpublished and they are published again: the
/// handlers are idempotent (an event is handled once, a delivered webhook is not called again), so the
/// outcome is at-least-once without loss.
///
/// The relay also keeps the outbox from growing without end: about once an hour it deletes events handled
/// more than `eventRetention` ago (a week by default), in batches. Their runs, which the API shows, stay.
public struct OutboxRelay: Service {
    let database: Database
    let publisher: JobPublisher
    let queues: EventQueues
    let logger: Logger
    let interval: Duration
    let eventRetention: Duration
    let batchLimit = 500
    /// How often handled events are looked for.
    static let pruneInterval: Duration = .seconds(3600)

    public init(
        database: Database, publisher: JobPublisher, queues: EventQueues, logger: Logger, interval: Duration = .milliseconds(200),
        eventRetention: Duration = .seconds(7 * 86_400)
    ) {
        self.database = database
        self.publisher = publisher
        self.queues = queues
        self.logger = logger
        self.interval = interval
        self.eventRetention = eventRetention
    }

    public func run() async throws {
        var failures = 0
        let clock = ContinuousClock()
        var nextPrune = clock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if clock.now >= nextPrune {
                nextPrune = clock.now + Self.pruneInterval
                do {
                    try await pruneHandledEvents()
                } catch {
                    logger.warning("outbox relay: deleting old handled events failed; trying again in an hour", metadata: ["error": "\(String(reflecting: error))"])
                }
            }
            var moved = 0
            do {
                moved = try await relayOnce()
                failures = 0
            } catch {
                // PostgreSQL or RabbitMQ is away: back off (up to 5 s) instead of logging five times a second.
                failures += 1
                let delay = min(interval * (1 << min(failures, 5)), .seconds(5))
                logger.warning(
                    "outbox relay: publishing failed; trying again", metadata: ["error": "\(String(reflecting: error))", "retry_in": "\(delay)"])
                await pause(delay)
                continue
            }
            // A full batch means more are waiting: go on at once.
            if moved < batchLimit {
                await pause(interval)
            }
        }
    }

    /// Sleeps, but wakes at once on graceful shutdown.
    private func pause(_ duration: Duration) async {
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
    }

    /// Deletes the events handled more than `eventRetention` ago, a batch at a time (short statements that
    /// hold few locks); returns how many.
    @discardableResult
    public func pruneHandledEvents() async throws -> Int {
        let repository = WorkflowRepository(logger: logger)
        var total = 0
        while !Task.isCancelled {
            let deleted = try await repository.deleteHandledEvents(olderThan: eventRetention, limit: 5_000, database: database)
            total += deleted
            if deleted < 5_000 { break }
        }
        if total > 0 { logger.info("outbox relay: deleted old handled workflow events", metadata: ["count": "\(total)"]) }
        return total
    }

    /// Publishes what is waiting; returns how many rows it published.
    @discardableResult
    public func relayOnce() async throws -> Int {
        let repository = WorkflowRepository(logger: logger)
        // One cheap statement while idle, instead of two transactions every interval.
        let pending = try await repository.pendingOutboxes(database: database)
        var total = 0
        for (outbox, queue) in [(Outbox.events, queues.workflow), (.deliveries, queues.webhook)] where pending.contains(outbox) {
            total += try await database.client.withTransaction(logger: logger) { connection in
                let items = try await repository.lockUnpublished(outbox, limit: batchLimit, on: connection)
                if items.isEmpty { return 0 }
                let jobs = items.map { item in
                    var job = Job(orgID: item.orgID, documentID: item.documentID, stage: queue.name)
                    job.jobID = item.id
                    return job
                }
                let failures = await publisher.publish(jobs, to: queue.queue)
                let published = items.enumerated().filter { failures[$0.offset] == nil }.map(\.element.id)
                try await repository.markPublished(outbox, ids: published, on: connection)
                return published.count
            }
        }
        return total
    }
}
