import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Storage

/// `/healthz`, `/readyz`, `/metrics` and `/openapi.json`: no authentication.
struct SystemController {
    let services: APIServices

    func register(on router: some RouterMethods<APIRequestContext>) {
        router.get("healthz", use: health)
        router.get("readyz", use: ready)
        router.get("metrics", use: metrics)
        router.get("openapi.json", use: openAPI)
    }

    struct Health: Encodable, Sendable { let status: String }

    /// The process is up and serving.
    @Sendable func health(_ request: Request, context: APIRequestContext) async throws -> OK<Health> {
        OK(Health(status: "ok"))
    }

    struct Readiness: Encodable, Sendable {
        let status: String
        let checks: [String: String]
    }

    /// PostgreSQL and RabbitMQ answer; `503 not_ready` naming the failing one otherwise.
    @Sendable func ready(_ request: Request, context: APIRequestContext) async throws -> OK<Readiness> {
        async let database = check(timeout: .seconds(3)) {
            try await services.database.client.query("SELECT 1", logger: services.logger)
        }
        async let broker = check(timeout: .seconds(5)) {
            try await services.broker.withConnection(name: "intellidocs api readiness", logger: context.logger) { _ in }
        }
        let checks = ["postgresql": await database, "rabbitmq": await broker]
        let failing = checks.filter { $0.value != "ok" }.keys.sorted()
        if !failing.isEmpty {
            context.logger.warning("not ready", metadata: ["failing": "\(failing.joined(separator: ","))"])
            throw APIError(
                .serviceUnavailable, code: "not_ready",
                message: "not ready: \(failing.map { "\($0) \(checks[$0]!)" }.joined(separator: "; "))")
        }
        return OK(Readiness(status: "ready", checks: checks))
    }

    /// "ok", "unreachable" or "timeout": no error detail leaves the server.
    private func check(timeout: Duration, _ probe: @escaping @Sendable () async throws -> Void) async -> String {
        await withTaskGroup(of: String.self) { group in
            group.addTask {
                do {
                    try await probe()
                    return "ok"
                } catch {
                    return "unreachable"
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return "timeout"
            }
            let first = await group.next() ?? "timeout"
            group.cancelAll()
            return first
        }
    }

    /// Prometheus text format of the app's registry.
    @Sendable func metrics(_ request: Request, context: APIRequestContext) async throws -> Response {
        var bytes: [UInt8] = []
        services.metrics.emit(into: &bytes)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    @Sendable func openAPI(_ request: Request, context: APIRequestContext) async throws -> Response {
        let data = OpenAPIDocument.json
        return Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
