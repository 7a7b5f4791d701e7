public import Broker
public import Pipeline

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

    public func apply(broker: BrokerConnection) async throws {
        try await Topology.apply(asPipeline, broker: broker)
    }
}
