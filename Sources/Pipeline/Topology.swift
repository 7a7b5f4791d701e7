public import Broker

/// Declares a pipeline's queues (DESIGN.md, Messages), idempotently:
/// - work queue `Q`: quorum, with a delivery limit; a job that kills its worker every time is
///   dead-lettered by the broker into `Q.dead` with `x-first-death-reason: delivery_limit`;
/// - retry queues `Q.retry.<delay>`: messages wait there for the delay (queue TTL), then the broker
///   dead-letters them back into `Q`;
/// - parking lot `Q.dead`: quorum, kept until a person lists, replays or purges it.
///
/// All routing goes through the default exchange, by queue name.
public enum Topology {
    public static func apply(_ pipeline: PipelineDefinition, broker: BrokerConnection) async throws {
        for stage in pipeline.stages {
            do {
                try await broker.declareQueue(stage.deadLetterQueue, arguments: ["x-queue-type": .string("quorum")])
                try await broker.declareQueue(stage.queue, arguments: workQueueArguments(stage))
                for delay in stage.retryDelays {
                    try await broker.declareQueue(stage.retryQueue(delay: delay), arguments: retryQueueArguments(stage, delay: delay))
                }
            } catch {
                throw PipelineError(
                    code: .topology,
                    message: "declaring the queues of stage '\(stage.name)' failed: \(error). If a queue exists with other settings (e.g. a changed delivery_limit), delete it in the RabbitMQ management UI or with rabbitmqctl delete_queue, then run `intellidocs topology apply` again")
            }
        }
    }

    public static func workQueueArguments(_ stage: PipelineDefinition.StageDefinition) -> AMQPTable {
        [
            "x-queue-type": .string("quorum"),
            "x-delivery-limit": .int(Int64(stage.deliveryLimit)),
            "x-dead-letter-exchange": .string(""),
            "x-dead-letter-routing-key": .string(stage.deadLetterQueue),
        ]
    }

    public static func retryQueueArguments(_ stage: PipelineDefinition.StageDefinition, delay: Duration) -> AMQPTable {
        let milliseconds = delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000
        return [
            "x-queue-type": .string("classic"),
            "x-message-ttl": .int(milliseconds),
            "x-dead-letter-exchange": .string(""),
            "x-dead-letter-routing-key": .string(stage.queue),
        ]
    }
}
