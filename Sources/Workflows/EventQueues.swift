public import Broker
public import Logging
public import Pipeline
public import Storage

/// The queues of workflow events and webhook calls: like a stage's, each has a quorum work queue, retry
/// queues (one per delay) and a dead-letter queue `<name>.dead` — but they are not pipeline stages: a
/// document's pipeline never waits for them and their failures never fail a document.
public struct EventQueues: Sendable, Equatable {
    public var workflow: PipelineDefinition.StageDefinition
    public var webhook: PipelineDefinition.StageDefinition

    public init(workflow: PipelineDefinition.StageDefinition, webhook: PipelineDefinition.StageDefinition) {
        self.workflow = workflow
        self.webhook = webhook
    }

    /// Workflow events retry quickly (they only wait for PostgreSQL); webhook calls back off up to half an
    /// hour, about an hour in all, so a receiver that is down for a deploy still gets its call.
    public static let standard = EventQueues(
        workflow: .init(
            name: "workflow", maxAttempts: 5, retryDelays: [.seconds(2), .seconds(10), .seconds(60)], prefetch: 20, batchSize: 1,
            concurrency: 2),
        webhook: .init(
            name: "webhook", maxAttempts: 8,
            retryDelays: [.seconds(5), .seconds(30), .seconds(120), .seconds(600), .seconds(1800)], prefetch: 20, batchSize: 1,
            concurrency: 8))

    /// For `Topology.apply` and the queue monitor.
    public var asPipeline: PipelineDefinition { PipelineDefinition(name: "events", stages: [workflow, webhook]) }

    /// `pipeline`'s stages followed by the standard event queues: what operators watch (`intellidocs queues`,
    /// `GET /v1/admin/queues`, the queue metrics) and what `intellidocs dlq --stage` accepts.
    public static func monitored(_ pipeline: PipelineDefinition) -> PipelineDefinition {
        PipelineDefinition(name: pipeline.name, stages: pipeline.stages + standard.asPipeline.stages)
    }

    /// The parking lot of the `workflow` or `webhook` queue (nil for other names). Replaying a webhook call
    /// makes its delivery pending again; a dead-lettered event was never marked processed, so it needs no
    /// reset. Neither touches the document.
    public func deadLetterQueue(_ name: String, broker: BrokerConnection, database: Database, logger: Logger) -> DeadLetterQueue? {
        switch name {
        case webhook.name:
            DeadLetterQueue(broker: broker, database: database, stage: webhook, logger: logger) { job, connection in
                try await WorkflowRepository(logger: logger).reopenDelivery(job.jobID, orgID: job.orgID, on: connection)
            }
        case workflow.name:
            DeadLetterQueue(broker: broker, database: database, stage: workflow, logger: logger) { _, _ in }
        default:
            nil
        }
    }

    public func apply(broker: BrokerConnection) async throws {
        try await Topology.apply(asPipeline, broker: broker)
    }
}
