public import Logging
import Metrics
public import ServiceLifecycle

/// Exports the per-stage queue figures as gauges (`intellidocs_queue_messages_ready{stage}`, `…_unacked`,
/// `…_consumers`, `intellidocs_queue_retrying{stage}`, `intellidocs_queue_dead_lettered{stage}`), read
/// from the RabbitMQ management API on a poll. Every process that serves /metrics may run one; dashboards
/// take `max by (stage)`.
public struct QueueMetricsPoller: Service {
    let monitor: QueueMonitor
    let virtualHost: String
    let interval: Duration
    let logger: Logger

    public init(monitor: QueueMonitor, virtualHost: String, interval: Duration = .seconds(5), logger: Logger) {
        self.monitor = monitor
        self.virtualHost = virtualHost
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        var warned = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                for stats in try await monitor.snapshot(virtualHost: virtualHost) {
                    let stage = [("stage", stats.stage)]
                    Gauge(label: "intellidocs_queue_messages_ready", dimensions: stage).record(stats.ready)
                    Gauge(label: "intellidocs_queue_messages_unacked", dimensions: stage).record(stats.unacked)
                    Gauge(label: "intellidocs_queue_consumers", dimensions: stage).record(stats.consumers)
                    Gauge(label: "intellidocs_queue_retrying", dimensions: stage).record(stats.retrying)
                    Gauge(label: "intellidocs_queue_dead_lettered", dimensions: stage).record(stats.deadLettered)
                }
                warned = false
            } catch {
                if !warned { logger.warning("cannot read queue figures for metrics", metadata: ["error": "\(error)"]) }
                warned = true
            }
            try? await Task.sleep(for: interval)
        }
    }
}
