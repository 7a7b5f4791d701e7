import Broker
import ControlPlane
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Pipeline
import Storage
import Testing
import TestSupport

/// Health, readiness, metrics, the error shape of unmatched and failing requests, the OpenAPI document,
/// and platform administration (organisations, suspension, queues, dead letters) against the real broker.
@Suite(.serialized)
struct AdminAndSystemTests {
    @Test func systemRoutesAndTheOneErrorShape() async throws {
        try await TestEnvironment.with { env in
            try await APIHarness.run(env) { api in
                let health = try await api.call(.get, "/healthz")
                #expect(health.status == 200 && health.string("status") == "ok")
                let ready = try await api.call(.get, "/readyz")
                #expect(ready.status == 200, "\(ready.body)")
                #expect((ready["checks"] as? [String: String]) == ["postgresql": "ok", "rabbitmq": "ok"])

                let missing = try await api.call(.get, "/nope")
                #expect(missing.status == 404 && missing.errorCode == "not_found")
                let wrongMethod = try await api.call(.delete, "/healthz")
                #expect(wrongMethod.status == 405 && wrongMethod.errorCode == "method_not_allowed")
                #expect(wrongMethod.headers[.allow] == "GET")
                let wrongOrgMethod = try await api.call(.post, "/v1/orgs/acme")
                #expect(wrongOrgMethod.status == 405 && wrongOrgMethod.headers[.allow] == "DELETE, GET, PATCH")
                let huge = try await api.call(.post, "/v1/auth/register", raw: "{\"name\": \"\(String(repeating: "x", count: 70_000))\"}")
                #expect(huge.status == 413)

                let metrics = try await api.call(.get, "/metrics")
                #expect(metrics.status == 200)
                #expect(metrics.body.contains(#"intellidocs_http_requests_total{method="GET",route="/healthz",status="200"} 1"#))
                #expect(metrics.body.contains("intellidocs_http_request_duration_seconds_bucket"))
            }

            // An unexpected error: 500 in the one shape, the detail only in the log.
            let router = try await buildRouter(APIHarness.configuration(env), try APIHarness.dependencies(env))
            router.get("boom") { _, _ -> String in throw TestFailure("secret internal detail") }
            try await Application(router: router, logger: env.logger).test(.ahc(.http)) { client in
                let api = APIClient(client: client, env: env, recorder: AuditRecorder())
                let boom = try await api.call(.get, "/boom")
                #expect(boom.status == 500 && boom.errorCode == "internal_error" && !boom.body.contains("secret"))
            }

            // RabbitMQ unreachable: not ready, naming it.
            try await APIHarness.run(env, configure: { $0.amqpURL = "amqp://guest:guest@127.0.0.1:1/%2f" }) { api in
                let notReady = try await api.call(.get, "/readyz")
                #expect(notReady.status == 503 && notReady.errorCode == "not_ready" && notReady.body.contains("rabbitmq"))
                #expect(!notReady.body.contains("postgresql unreachable"))
            }
        }
    }

    @Test func theOpenAPIDocumentDescribesExactlyTheRoutesOfTheRouter() async throws {
        try await TestEnvironment.with { env in
            let router = try await buildRouter(APIHarness.configuration(env), try APIHarness.dependencies(env))
            let registered = Set(router.routes.map { "\($0.method.rawValue) \($0.path.description)" })
            try await Application(router: router, logger: env.logger).test(.ahc(.http)) { client in
                let api = APIClient(client: client, env: env, recorder: AuditRecorder())
                let response = try await api.call(.get, "/openapi.json")
                #expect(response.status == 200)
                let document = response.json
                #expect(document["openapi"] as? String == "3.1.0")
                let paths = try #require(document["paths"] as? [String: [String: Any]])
                var documented = Set<String>()
                for (path, operations) in paths {
                    for (method, operation) in operations {
                        documented.insert("\(method.uppercased()) \(path)")
                        let operation = operation as? [String: Any]
                        #expect(operation?["responses"] != nil && operation?["summary"] != nil, "\(method) \(path)")
                    }
                }
                #expect(registered.subtracting(documented).isEmpty, "registered but not documented: \(registered.subtracting(documented).sorted())")
                #expect(documented.subtracting(registered).isEmpty, "documented but not registered: \(documented.subtracting(registered).sorted())")
                #expect(registered.count >= 36)
                // Every organisation route names its permission.
                for (path, operations) in paths where path.hasPrefix("/v1/orgs/{org}") {
                    for (method, operation) in operations {
                        #expect((operation as? [String: Any])?["x-permission"] is String, "\(method) \(path) has no x-permission")
                    }
                }
            }
        }
    }

    @Test func platformAdministration() async throws {
        try await TestEnvironment.with { env in
            try await APIHarness.run(env) { api in
                let hash = try await PasswordHasher().hash(testPassword)
                _ = try await api.seedUser("root@example.com", passwordHash: hash)
                _ = try await api.seedUser("owner@example.com", passwordHash: hash)
                let root = try await api.login("root@example.com")
                let owner = try await api.login("owner@example.com")
                #expect(try await api.call(.post, "/v1/orgs", token: owner.access, json: ["slug": "acme", "name": "Acme"]).status == 201)
                let ownerKey = try await api.call(.post, "/v1/orgs/acme/api-keys", token: owner.access, json: ["name": "k", "scopes": ["admin"]])
                let key = try #require(ownerKey.string("secret"))

                // Not yet an admin; keys never are.
                for token in [root.access, key] {
                    #expect(try await api.call(.get, "/v1/admin/orgs", token: token).status == 403)
                }
                #expect(try await api.call(.get, "/v1/admin/queues").status == 401)
                // `intellidocs admin grant` sets the flag the same way.
                try await env.database.inTransaction { connection in
                    _ = try await UserRepository(logger: env.logger).setPlatformAdmin(email: "root@example.com", true, on: connection)
                }

                let organizations = try await api.call(.get, "/v1/admin/orgs", token: root.access)
                #expect(organizations.status == 200)
                let listed = organizations["organizations"] as? [[String: Any]]
                #expect(listed?.count == 1 && listed?.first?["slug"] as? String == "acme" && listed?.first?["members"] as? Int == 1)
                // The flag opens no organisation's own routes.
                #expect(try await api.call(.get, "/v1/orgs/acme", token: root.access).status == 404)

                // Suspension: reads work, adding does not.
                let suspended = try await api.call(.post, "/v1/admin/orgs/acme/suspend", token: root.access)
                #expect(suspended.status == 200 && suspended.string("status") == "suspended")
                #expect(try await api.call(.get, "/v1/orgs/acme", token: owner.access).status == 200)
                #expect(try await api.call(.get, "/v1/orgs/acme", token: key).status == 200)
                let refused = try await api.call(.post, "/v1/orgs/acme/api-keys", token: owner.access, json: ["name": "n", "scopes": ["read"]])
                #expect(refused.status == 403 && refused.errorCode == "organization_read_only")
                #expect(try await api.call(.post, "/v1/admin/orgs/acme/unsuspend", token: root.access).string("status") == "active")
                #expect(try await api.call(.post, "/v1/orgs/acme/api-keys", token: owner.access, json: ["name": "n", "scopes": ["read"]]).status == 201)
                #expect(try await api.call(.post, "/v1/admin/orgs/nope/suspend", token: root.access).status == 404)

                // Queues and dead letters on this test's vhost.
                let pipeline = try env.pipeline()
                let stage = try #require(pipeline.stages.first)
                let broker = try await env.broker()
                try await Topology.apply(pipeline, broker: broker)
                let job = Job(orgID: UUID(), documentID: UUID(), stage: stage.name, attempt: 4)
                try await broker.publish(routingKey: stage.deadLetterQueue, body: job.encoded())
                try await broker.publish(routingKey: stage.deadLetterQueue, body: job.encoded())

                let queues = try await api.call(.get, "/v1/admin/queues", token: root.access)
                #expect(queues.status == 200, "\(queues.body)")
                let figures = queues["queues"] as? [[String: Any]] ?? []
                #expect(figures.compactMap { $0["stage"] as? String } == pipeline.stages.map(\.name))
                #expect((queues["event_queues"] as? [[String: Any]])?.compactMap { $0["stage"] as? String } == ["workflow", "webhook"])

                let replay = try await api.call(.post, "/v1/admin/dlq/\(stage.name)/replay?limit=1", token: root.access)
                #expect(replay.status == 200 && replay["replayed"] as? Int == 1, "\(replay.body)")
                #expect(try await broker.queueInfo(stage.queue)?.messageCount == 1)
                let purge = try await api.call(.delete, "/v1/admin/dlq/\(stage.name)", token: root.access)
                #expect(purge.status == 200 && purge["purged"] as? Int == 1, "\(purge.body)")
                #expect(try await broker.queueInfo(stage.deadLetterQueue)?.messageCount == 0)
                #expect(try await api.call(.delete, "/v1/admin/dlq/nope", token: root.access).status == 404)
                await broker.close()
                try await api.expectAudited()
            }
        }
    }
}
