import Hummingbird
import Prometheus

/// Counts requests and records their durations per method, route template and status in the app's
/// Prometheus registry (served by `GET /metrics`). Sits outside `EdgeMiddleware`, which never throws.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let registry: PrometheusCollectorRegistry

    static var requests: MetricNameDescriptor {
        MetricNameDescriptor(
        namespace: "intellidocs", subsystem: "http", metricName: "requests", unitName: "total",
        helpText: "HTTP requests by method, route template and status.")
    }
    static var duration: MetricNameDescriptor {
        MetricNameDescriptor(
        namespace: "intellidocs", subsystem: "http", metricName: "request_duration", unitName: "seconds",
        helpText: "HTTP request durations by method and route template.")
    }
    static let buckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
    ]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let response = try await next(request, context)
        let route = context.endpointPath.map { $0 == "NotFound" ? "unmatched" : $0 } ?? "unmatched"
        registry.makeCounter(
            descriptor: Self.requests,
            labels: [("method", request.method.rawValue), ("route", route), ("status", String(response.status.code))]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: Self.duration, labels: [("method", request.method.rawValue), ("route", route)], buckets: Self.buckets
        ).record(ContinuousClock.now - started)
        return response
    }
}
