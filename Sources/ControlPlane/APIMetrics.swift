import Metrics
public import Prometheus

/// Process-wide metrics for `intellidocs api`.
public enum APIMetrics {
    /// Points swift-metrics (used by libraries) at `registry`, so `GET /metrics` shows their figures
    /// next to the API's own. Call once per process; tests skip it and read only the app's registry.
    /// Returns the registry to hand to `APIDependencies`.
    public static func bootstrapProcessMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }
}
