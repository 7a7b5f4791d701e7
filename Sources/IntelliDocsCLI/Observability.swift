import Embedding
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Synchronization

/// Process-wide observability set-up: the Prometheus registry behind swift-metrics, and the log format.
enum Observability {
    /// The registry every metric of this process lands in (bootstrapped once).
    static let registry = PrometheusCollectorRegistry()
    private static let bootstrapped = Mutex(false)

    /// Bootstraps swift-metrics with Prometheus and swift-log with the chosen format; idempotent.
    /// `INTELLIDOCS_METRICS=off` leaves swift-metrics on its no-op backend: nothing is recorded, which is
    /// how `deploy/local/bench-scale` measures what monitoring costs.
    static func bootstrap() {
        let first = bootstrapped.withLock { done in
            defer { done = true }
            return !done
        }
        guard first else { return }
        if !metricsDisabled {
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            // Embedding speed depends on it (1.65× between OpenBLAS's AVX2 and AVX-512 kernels here).
            Gauge(label: "intellidocs_blas_kernel_info", dimensions: [("kernel", SentenceEmbedder.blasKernel)]).record(1)
        }
        let json = ProcessInfo.processInfo.environment["INTELLIDOCS_LOG_FORMAT"]?.lowercased() == "json"
        LoggingSystem.bootstrap { label in
            json ? JSONLogHandler(label: label) as any LogHandler : StreamLogHandler.standardError(label: label) as any LogHandler
        }
    }

    /// Whether `INTELLIDOCS_METRICS` turns metric recording off (`off`, `false` or `0`).
    static var metricsDisabled: Bool {
        ["off", "false", "0"].contains(ProcessInfo.processInfo.environment["INTELLIDOCS_METRICS"]?.lowercased() ?? "")
    }

    /// The Prometheus text exposition of every metric.
    static func exposition() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}

/// Serves `GET /metrics` (and `/healthz`) for a worker process on `127.0.0.1:port` or `0.0.0.0:port`.
struct MetricsServer: Service {
    let host: String
    let port: Int
    let logger: Logger

    func run() async throws {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: Observability.exposition())))
        }
        router.get("/healthz") { _, _ in "ok" }
        let application = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "intellidocs-worker"),
            logger: logger)
        do {
            try await application.run()
        } catch {
            // Metrics are not worth stopping the work for (e.g. two workers on one machine, one port).
            logger.warning("cannot serve /metrics; the worker goes on without it", metadata: [
                "address": "\(host):\(port)", "error": "\(error)", "hint": "give each worker its own --metrics-port",
            ])
            try? await gracefulShutdown()
        }
    }
}

/// One JSON object per log line (`INTELLIDOCS_LOG_FORMAT=json`), for log shippers: time, level, label,
/// message and every metadata key (document_id, org_id, stage, traceparent, …) as top-level fields.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { fields[key] = "\(value)" }
        fields["time"] = ISO8601DateFormatter().string(from: Date())
        fields["level"] = event.level.rawValue
        fields["label"] = label
        fields["message"] = "\(event.message)"
        if let source = Optional(event.source), !source.isEmpty { fields["source"] = source }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(fields) else { return }
        FileHandle.standardError.write(data + Data("\n".utf8))
    }
}
