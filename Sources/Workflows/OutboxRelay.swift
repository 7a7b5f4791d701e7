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
public struct OutboxRelay: Service {
    let database: Database
    let publisher: JobPublisher
    let queues: EventQueues
    let logger: Logger
    let interval: Duration
    let batchLimit = 500

    public init(database: Database, publisher: JobPublisher, queues: EventQueues, logger: Logger, interval: Duration = .milliseconds(200)) {
        self.database = database
        self.publisher = publisher
        self.queues = queues
        self.logger = logger
        self.interval = interval
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var moved = 0
            do {
                moved = try await relayOnce()
            } catch {
                logger.warning("outbox relay: publishing failed; trying again", metadata: ["error": "\(String(reflecting: error))"])
            }
            // A full batch means more are waiting: go on at once.
            if moved < batchLimit {
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Publishes what is waiting; returns how many rows it published.
    @discardableResult
    public func relayOnce() async throws -> Int {
        let repository = WorkflowRepository(logger: logger)
        var total = 0
        total += try await database.client.withTransaction(logger: logger) { connection in
            let events = try await repository.lockUnpublishedEvents(limit: batchLimit, on: connection)
            if events.isEmpty { return 0 }
            let jobs = events.map { event in
                var job = Job(orgID: event.orgID, documentID: event.documentID, stage: queues.workflow.name)
                job.jobID = event.id
                return job
            }
            let failures = await publisher.publish(jobs, to: queues.workflow.queue)
            let published = events.enumerated().filter { failures[$0.offset] == nil }.map(\.element.id)
            try await repository.markEventsPublished(published, on: connection)
            return published.count
        }
        total += try await database.client.withTransaction(logger: logger) { connection in
            let deliveries = try await repository.lockUnpublishedDeliveries(limit: batchLimit, on: connection)
            if deliveries.isEmpty { return 0 }
            let jobs = deliveries.map { delivery in
                var job = Job(orgID: delivery.orgID, documentID: delivery.documentID, stage: queues.webhook.name)
                job.jobID = delivery.id
                return job
            }
            let failures = await publisher.publish(jobs, to: queues.webhook.queue)
            let published = deliveries.enumerated().filter { failures[$0.offset] == nil }.map(\.element.id)
            try await repository.markDeliveriesPublished(published, on: connection)
            return published.count
        }
        return total
    }
}
