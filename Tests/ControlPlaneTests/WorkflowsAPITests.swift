import Blobs
import Broker
import ControlPlane
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Pipeline
import ServiceLifecycle
import Stages
import Storage
import Synchronization
import Testing
import Workflows
import TestSupport

/// Workflows over HTTP against the real server, PostgreSQL, RabbitMQ and workers: a workflow tags
/// processed invoices, puts them under review, assigns them and calls a local webhook receiver with a
/// valid signature, retried while the receiver fails; a webhook that never succeeds is dead-lettered;
/// `document.uploaded` and `document.failed` fire; review transitions respect roles; a redelivered event
/// changes nothing; bad definitions are refused; another organisation sees none of it.
@Suite(.serialized)
struct WorkflowsAPITests {
    static let pipeline = try! PipelineDefinition.parse(
        """
        version: 1
        name: workflow-test
        defaults: {max_attempts: 2, retry_delays: [1s], delivery_limit: 5, prefetch: 20, batch_size: 10, concurrency: 1}
        stages:
          - name: ingest
          - name: chunk
            options: {measure: approximate, max_tokens: 200, overlap: 30}
          - name: index
        """)

    /// Webhook retries after 1 s, three attempts in all.
    static let queues = EventQueues(
        workflow: .init(name: "workflow", maxAttempts: 3, retryDelays: [.seconds(1)], prefetch: 10, batchSize: 1, concurrency: 2),
        webhook: .init(name: "webhook", maxAttempts: 3, retryDelays: [.seconds(1)], prefetch: 10, batchSize: 1, concurrency: 4))

    static let secret = "whsec-test-0123456789abcdef"

    @Test func workflowsTagReviewAssignAndCallSignedWebhooks() async throws {
        try await TestEnvironment.with { env in
            let receiver = WebhookReceiver(failFirst: 2)
            try await receiver.run { port in
                try await Self.withStack(env) { api in
                    try await Self.exercise(api, env: env, receiver: receiver, port: port)
                }
            }
        }
    }

    /// The relay deletes workflow events handled longer ago than the retention, and only those: not
    /// recent ones, not unhandled ones; a redelivery of a deleted event is then a no-op.
    @Test func handledEventsAreDeletedAfterTheRetention() async throws {
        try await TestEnvironment.with { env in
            let org = try await env.organization("retention")
            let document = UUID()
            try await env.execute(
                "INSERT INTO documents (id, org_id, title, size_bytes, sha256) VALUES (\(document), \(org.id), 'a', 1, \(String(repeating: "0", count: 64)))")
            let (old, recent, unhandled) = (UUID(), UUID(), UUID())
            for (id, processed) in [(old, "now() - interval '8 days'"), (recent, "now() - interval '1 day'"), (unhandled, "NULL")] {
                try await env.execute(
                    "INSERT INTO workflow_events (id, org_id, document_id, trigger, published_at, processed_at) VALUES (\(id), \(org.id), \(document), 'document.processed', now(), \(unescaped: processed))")
            }
            let broker = try await env.broker()
            let relay = OutboxRelay(
                database: env.database, publisher: JobPublisher(broker: broker), queues: Self.queues, logger: env.logger,
                eventRetention: .seconds(7 * 86_400))
            #expect(try await relay.pruneHandledEvents() == 1)
            let left = try await env.count("SELECT count(*) FROM workflow_events WHERE id = ANY(\([recent, unhandled])::uuid[])")
            #expect(left == 2)
            #expect(try await env.count("SELECT count(*) FROM workflow_events WHERE id = \(old)") == 0)
            #expect(try await relay.pruneHandledEvents() == 0)
            // A late redelivery of the deleted event changes nothing.
            let engine = WorkflowEngine(database: env.database, logger: env.logger)
            var job = Job(orgID: org.id, documentID: document, stage: "workflow")
            job.jobID = old
            #expect(await engine.handle(job) == nil)
            #expect(try await env.count("SELECT count(*) FROM workflow_runs WHERE event_id = \(old)") == 0)
            await broker.close()
        }
    }

    static func exercise(_ api: APIClient, env: TestEnvironment, receiver: WebhookReceiver, port: Int) async throws {
        let (owner, viewer, outsider, orgID) = try await DocumentsAPITests.accounts(api, env: env)
        let hash = try await PasswordHasher().hash(testPassword)
        var memberIDs: [String: UUID] = [:]
        for (name, role) in [("admin", MemberRole.admin), ("member", .member)] {
            let id = try await api.seedUser("\(name)@example.com", passwordHash: hash)
            memberIDs[name] = id
            try await env.database.inTransaction { try await MembershipRepository(logger: env.logger).add(orgID: orgID, userID: id, role: role, on: $0) }
        }
        let admin = try await api.login("admin@example.com")
        let member = try await api.login("member@example.com")

        let hook = "http://127.0.0.1:\(port)/hook"
        let invoices: [String: Any] = [
            "name": "Invoices to review",
            "trigger": "document.processed",
            "conditions": [["field": "text", "op": "contains", "value": "INVOICE"], ["field": "filename", "op": "glob", "value": "*.txt"],
                           ["field": "text", "op": "regex", "value": "(?i)invoice\\s+(no\\.?|number)\\s*\\d+"]],
            "actions": [["type": "add_tags", "tags": ["invoice", "finance"]], ["type": "set_review_state", "state": "to_review"],
                        ["type": "assign", "user": "member@example.com"], ["type": "webhook", "url": hook, "secret": secret]],
            "review": ["states": ["to_review", "approved", "rejected"],
                       "transitions": [["from": "to_review", "to": "approved", "roles": ["admin"]],
                                       ["from": "to_review", "to": "rejected", "roles": ["member"]],
                                       ["from": "rejected", "to": "to_review", "roles": ["member"]]]],
        ]

        // Who may define workflows, and what is refused.
        #expect(try await api.call(.post, "/v1/orgs/acme/workflows", token: member.access, json: invoices).status == 403)
        #expect(try await api.call(.get, "/v1/orgs/acme/workflows", token: viewer.access).status == 403)
        for (label, change, field) in [
            ("bad regex", ["conditions": [["field": "text", "op": "regex", "value": "(unclosed"]]] as [String: Any], "conditions[0].value"),
            ("op of another field", ["conditions": [["field": "page_count", "op": "contains", "value": "x"]]], "conditions[0].op"),
            ("ftp webhook", ["actions": [["type": "webhook", "url": "ftp://example.com/x", "secret": secret]]], "actions[0].url"),
            ("empty secret", ["actions": [["type": "webhook", "url": hook, "secret": ""]]], "actions[0].secret"),
            ("unknown action", ["actions": [["type": "launch_rocket"]]], "actions[0].type"),
            ("state not defined", ["actions": [["type": "set_review_state", "state": "archived"]]], "actions[0].state"),
            ("assign outsider", ["actions": [["type": "assign", "user": "outsider@example.com"]]], "actions[0].user"),
            ("bad trigger", ["trigger": "document.exploded"], "trigger"),
            ("transition to nowhere", ["review": ["states": ["a"], "transitions": [["from": "a", "to": "b", "roles": ["admin"]]]],
                                       "actions": [["type": "add_tags", "tags": ["x"]]]], "review.transitions[0].to"),
        ] {
            let body = invoices.merging(change) { _, new in new }
            let refused = try await api.call(.post, "/v1/orgs/acme/workflows", token: admin.access, json: body)
            #expect(refused.status == 400 && (refused.json["error"] as? [String: Any])?["field"] as? String == field, "\(label): \(refused.body)")
        }
        #expect(try await env.count("SELECT count(*)::int8 FROM workflows") == 0)

        let created = try await api.call(.post, "/v1/orgs/acme/workflows", token: admin.access, json: invoices)
        #expect(created.status == 201, "\(created.body)")
        let workflowID = try #require(created.string("id"))
        #expect(!created.body.contains(secret) && created.body.contains("\"has_secret\":true"))
        let duplicateName = try await api.call(.post, "/v1/orgs/acme/workflows", token: admin.access, json: invoices)
        #expect(duplicateName.status == 409 && duplicateName.errorCode == "workflow_name_taken")
        let uploaded: [String: Any] = [
            "name": "Label text uploads", "trigger": "document.uploaded",
            "conditions": [["field": "mime_type", "op": "starts_with", "value": "text/"]], "actions": [["type": "add_tags", "tags": ["incoming"]]],
        ]
        #expect(try await api.call(.post, "/v1/orgs/acme/workflows", token: admin.access, json: uploaded).status == 201)
        let failed: [String: Any] = [
            "name": "Flag broken files", "trigger": "document.failed", "actions": [["type": "add_tags", "tags": ["broken"]]],
        ]
        #expect(try await api.call(.post, "/v1/orgs/acme/workflows", token: admin.access, json: failed).status == 201)
        let letters: [String: Any] = [
            "name": "Letters to a dead receiver", "trigger": "document.processed",
            // Operators by other names and a range as an object: stored canonically.
            "conditions": [["field": "filename", "op": "matches", "value": "letter*"], ["field": "page_count", "op": "range", "value": ["min": 1, "max": 5]]],
            "actions": [["type": "webhook", "url": "http://127.0.0.1:\(port)/always-500", "secret": secret]],
        ]
        let lettersCreated = try await api.call(.post, "/v1/orgs/acme/workflows", token: admin.access, json: letters)
        #expect(lettersCreated.status == 201, "\(lettersCreated.body)")
        #expect((lettersCreated["conditions"] as? [[String: Any]])?.compactMap { $0["op"] as? String } == ["glob", "between"])
        let listed = try await api.call(.get, "/v1/orgs/acme/workflows", token: admin.access)
        #expect((listed["workflows"] as? [[String: Any]])?.count == 4 && !listed.body.contains(secret))

        // Documents: an invoice, a letter and a corrupt PDF.
        var upload = MultipartBody()
        upload.file("invoice-42.txt", Array("ACME Ltd.\n\nInvoice number 42 for 12 crates of marmalade. Payment due in 30 days.".utf8))
        upload.file("letter.txt", Array("Dear neighbour, the harbour festival starts on Saturday. Bring lanterns.".utf8))
        upload.file("broken.pdf", Array("%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without an end".utf8))
        let response = try await api.call(.post, "/v1/orgs/acme/documents", token: owner.access, bytes: upload.bytes, headers: upload.headers)
        #expect(response.status == 202, "\(response.body)")
        let ids = (response["documents"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        try #require(ids.count == 3)
        let (invoiceID, letterID, brokenID) = (ids[0], ids[1], ids[2])
        let statuses = try await DocumentsAPITests.waitForTerminal(api, ids: ids, token: owner.access, seconds: 60)
        #expect(statuses == [invoiceID: "succeeded", letterID: "succeeded", brokenID: "failed"], "\(statuses)")

        // Workflows run after the pipeline, asynchronously: wait for their effects.
        let invoice = try await Self.waitFor(api, token: owner.access, "/v1/orgs/acme/documents/\(invoiceID)") {
            ($0["tags"] as? [String])?.contains("invoice") == true
        }
        #expect(Set(invoice["tags"] as? [String] ?? []) == ["incoming", "invoice", "finance"])
        #expect(invoice["review_state"] as? String == "to_review")
        #expect((invoice["assignee_id"] as? String).flatMap(UUID.init(uuidString:)) == memberIDs["member"])
        let letter = try await Self.waitFor(api, token: owner.access, "/v1/orgs/acme/documents/\(letterID)") {
            ($0["tags"] as? [String])?.contains("incoming") == true
        }
        #expect(letter["tags"] as? [String] == ["incoming"] && letter["review_state"] is NSNull)
        let broken = try await Self.waitFor(api, token: owner.access, "/v1/orgs/acme/documents/\(brokenID)") {
            ($0["tags"] as? [String])?.contains("broken") == true
        }
        #expect(broken["tags"] as? [String] == ["broken"])

        // The webhook: failed twice by the receiver, delivered on the third attempt, same bytes and signature each time.
        try await Self.waitUntil("the webhook is delivered") { receiver.calls(path: "/hook").count >= 3 }
        let calls = receiver.calls(path: "/hook")
        #expect(calls.count == 3, "\(calls.count) calls")
        #expect(Set(calls.map(\.body)).count == 1 && Set(calls.map(\.delivery)).count == 1)
        #expect(calls.map(\.attempt) == ["1", "2", "3"])
        let call = try #require(calls.last)
        let mac = HMAC<SHA256>.authenticationCode(for: Data(call.body.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        #expect(call.signature == "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
        let payload = try #require(try JSONSerialization.jsonObject(with: Data(call.body.utf8)) as? [String: Any])
        #expect(payload["event"] as? String == "document.processed")
        #expect((payload["document_id"] as? String)?.lowercased() == invoiceID.lowercased())
        #expect(((payload["document"] as? [String: Any])?["id"] as? String)?.lowercased() == invoiceID.lowercased())
        #expect(payload["time"] is String && payload["delivery_id"] as? String == call.delivery || (payload["delivery_id"] as? String)?.lowercased() == call.delivery)
        #expect((payload["organization"] as? [String: Any])?["slug"] as? String == "acme")
        #expect((payload["workflow"] as? [String: Any])?["name"] as? String == "Invoices to review")

        // Runs: the invoice matched (webhook delivered on attempt 3), the letter and the PDF did not.
        let runs = try await Self.waitFor(api, token: admin.access, "/v1/orgs/acme/workflows/\(workflowID)/runs") { body in
            ((body["runs"] as? [[String: Any]]) ?? []).contains { (($0["webhooks"] as? [[String: Any]])?.first?["status"] as? String) == "delivered" }
        }
        let runList = runs["runs"] as? [[String: Any]] ?? []
        #expect(runList.count == 2, "\(runList)")
        let matched = try #require(runList.first { $0["document_id"] as? String == invoiceID })
        #expect(matched["outcome"] as? String == "matched")
        #expect((matched["actions"] as? [[String: Any]])?.map { $0["type"] as? String } == ["add_tags", "set_review_state", "assign", "webhook"])
        let webhook = try #require((matched["webhooks"] as? [[String: Any]])?.first)
        #expect(webhook["attempts"] as? Int == 3 && webhook["response_status"] as? Int == 200)
        #expect(runList.first { $0["document_id"] as? String == letterID }?["outcome"] as? String == "not_matched")

        // A receiver that always fails: three attempts, then `failed` and parked in webhook.dead.
        let lettersID = try #require(lettersCreated.string("id"))
        let lettersRuns = try await Self.waitFor(api, token: admin.access, "/v1/orgs/acme/workflows/\(lettersID)/runs", seconds: 30) { body in
            ((body["runs"] as? [[String: Any]]) ?? []).contains { (($0["webhooks"] as? [[String: Any]])?.first?["status"] as? String) == "failed" }
        }
        let lettersRun = try #require((lettersRuns["runs"] as? [[String: Any]])?.first { $0["document_id"] as? String == letterID })
        #expect(lettersRun["outcome"] as? String == "matched")
        let dead = try #require((lettersRun["webhooks"] as? [[String: Any]])?.first)
        #expect(dead["attempts"] as? Int == 3 && dead["response_status"] as? Int == 500)
        #expect((dead["last_error"] as? String)?.contains("500") == true)
        #expect(receiver.calls(path: "/always-500").count == 3)
        let broker = try await env.broker()
        try await Self.waitUntil("the dead letter is parked") { (try? await broker.queueInfo(Self.queues.webhook.deadLetterQueue))??.messageCount == 1 }
        // Once the receiver is fixed, replaying the dead letter (`intellidocs dlq replay --stage webhook`) delivers it.
        receiver.heal()
        let parked = try #require(Self.queues.deadLetterQueue("webhook", broker: broker, database: env.database, logger: env.logger))
        #expect(try await parked.replay(limit: 10) == 1)
        try await Self.waitUntil("the replayed call is answered") { receiver.calls(path: "/always-500").count == 4 }
        _ = try await Self.waitFor(api, token: admin.access, "/v1/orgs/acme/workflows/\(lettersID)/runs") { body in
            ((body["runs"] as? [[String: Any]]) ?? []).contains { (($0["webhooks"] as? [[String: Any]])?.first?["status"] as? String) == "delivered" }
        }
        #expect(try await api.call(.get, "/v1/orgs/acme/documents/\(letterID)", token: owner.access).string("status") == "succeeded")

        // A redelivered event changes nothing: no second run, no second call.
        // Events: uploaded ×3, processed ×2, failed ×1; runs: one per event and workflow of its trigger (3 + 2×2 + 1).
        #expect(try await env.count("SELECT count(*)::int8 FROM workflow_events WHERE processed_at IS NOT NULL") == 6)
        #expect(try await env.count("SELECT count(*)::int8 FROM workflow_runs") == 8)
        let rows = try await env.database.client.query(
            "SELECT id, org_id, document_id FROM workflow_events WHERE trigger = 'document.processed'", logger: env.logger)
        for try await (id, org, document) in rows.decode((UUID, UUID, UUID).self) {
            var job = Job(orgID: org, documentID: document, stage: "workflow")
            job.jobID = id
            try await JobPublisher(broker: broker).publish(job, to: Self.queues.workflow.queue)
        }
        try await Task.sleep(for: .seconds(2))
        #expect(try await env.count("SELECT count(*)::int8 FROM workflow_runs") == 8)
        #expect(receiver.calls(path: "/hook").count == 3)
        await broker.close()

        // Review transitions: the roles of each transition decide.
        let transitions = "/v1/orgs/acme/documents/\(invoiceID)/transitions"
        let byViewer = try await api.call(.post, transitions, token: viewer.access, json: ["to": "approved"])
        #expect(byViewer.status == 403 && byViewer.errorCode == "transition_forbidden")
        let byMember = try await api.call(.post, transitions, token: member.access, json: ["to": "approved"])
        #expect(byMember.status == 403 && byMember.errorCode == "transition_forbidden")
        let nowhere = try await api.call(.post, transitions, token: admin.access, json: ["to": "archived"])
        #expect(nowhere.status == 422 && nowhere.errorCode == "transition_not_allowed" && nowhere.body.contains("approved, rejected"))
        let rejected = try await api.call(.post, transitions, token: member.access, json: ["to": "rejected", "comment": "amount is wrong"])
        #expect(rejected.status == 200 && rejected.string("review_state") == "rejected", "\(rejected.body)")
        #expect(try await api.call(.post, transitions, token: member.access, json: ["to": "to_review"]).string("review_state") == "to_review")
        let approved = try await api.call(.post, transitions, token: admin.access, json: ["to": "approved"])
        #expect(approved.status == 200 && approved.string("review_state") == "approved")
        let final = try await api.call(.post, transitions, token: owner.access, json: ["to": "rejected"])
        #expect(final.status == 422 && final.body.contains("nothing"))
        let notUnderReview = try await api.call(.post, "/v1/orgs/acme/documents/\(letterID)/transitions", token: admin.access, json: ["to": "approved"])
        #expect(notUnderReview.status == 409 && notUnderReview.errorCode == "not_under_review")
        let byState = try await api.call(.get, "/v1/orgs/acme/documents?review_state=approved", token: viewer.access)
        #expect((byState["documents"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [invoiceID])
        let assigned = try await api.call(.get, "/v1/orgs/acme/documents?assignee=\(memberIDs["member"]!)", token: viewer.access)
        #expect((assigned["documents"] as? [[String: Any]])?.count == 1)
        #expect(try await env.count(
            "SELECT count(*)::int8 FROM document_transitions WHERE document_id = \(UUID(uuidString: invoiceID)!)") == 4)
        #expect(try await env.count("SELECT count(*)::int8 FROM audit_log WHERE action = 'document.transitioned'") == 3)

        // Another organisation sees none of it.
        #expect(try await api.call(.get, "/v1/orgs/acme/workflows", token: outsider.access).status == 404)
        #expect(try await api.call(.get, "/v1/orgs/other/workflows/\(workflowID)", token: outsider.access).status == 404)
        #expect(try await api.call(.get, "/v1/orgs/other/workflows/\(workflowID)/runs", token: outsider.access).status == 404)
        #expect(try await api.call(.put, "/v1/orgs/other/workflows/\(workflowID)", token: outsider.access, json: invoices).status == 404)
        #expect(try await api.call(.delete, "/v1/orgs/other/workflows/\(workflowID)", token: outsider.access).status == 404)
        #expect(try await api.call(.post, "/v1/orgs/other/documents/\(invoiceID)/transitions", token: outsider.access, json: ["to": "rejected"]).status == 404)
        let otherList = try await api.call(.get, "/v1/orgs/other/workflows", token: outsider.access)
        #expect(otherList.status == 200 && (otherList["workflows"] as? [[String: Any]])?.isEmpty == true)

        // Replace (disable) and delete; the document keeps its state.
        var disabled = invoices
        disabled["enabled"] = false
        let replaced = try await api.call(.put, "/v1/orgs/acme/workflows/\(workflowID)", token: admin.access, json: disabled)
        #expect(replaced.status == 200 && replaced["enabled"] as? Bool == false)
        #expect(try await api.call(.delete, "/v1/orgs/acme/workflows/\(workflowID)", token: admin.access).status == 204)
        #expect(try await api.call(.get, "/v1/orgs/acme/workflows/\(workflowID)", token: admin.access).status == 404)
        let afterDelete = try await api.call(.post, transitions, token: owner.access, json: ["to": "rejected"])
        #expect(afterDelete.status == 409 && afterDelete.errorCode == "review_workflow_gone")
        try await api.expectAudited()
    }

    // MARK: Harness

    /// The API (private webhook addresses allowed, for the local receiver), stage workers of `pipeline`,
    /// and the workflow and webhook consumers with the outbox relay, while `body` runs.
    static func withStack(_ env: TestEnvironment, _ body: @Sendable (APIClient) async throws -> Void) async throws {
        let blobRoot = FileManager.default.temporaryDirectory.appendingPathComponent("wf-blobs-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: blobRoot) }
        let blobs = try FileBlobStore(root: blobRoot)
        let publishing = try await env.broker()
        let workerBroker = try await env.broker()
        do {
            try await Topology.apply(Self.pipeline, broker: publishing)
            try await Self.queues.apply(broker: publishing)
            let catalog = StageCatalog(blobs: blobs)
            var workers: [any Service] = try Self.pipeline.stages.map {
                try catalog.worker(for: $0.name, pipeline: Self.pipeline, broker: workerBroker, database: env.database, logger: env.logger)
            }
            let engine = WorkflowEngine(database: env.database, logger: env.logger)
            let sender = WebhookSender(database: env.database, addresses: WebhookAddressPolicy(allowPrivate: true), logger: env.logger)
            workers.append(OutboxRelay(
                database: env.database, publisher: JobPublisher(broker: workerBroker), queues: Self.queues, logger: env.logger,
                interval: .milliseconds(100)))
            workers.append(QueueConsumer(definition: Self.queues.workflow, broker: workerBroker, logger: env.logger) { job, _ in await engine.handle(job) })
            workers.append(QueueConsumer(definition: Self.queues.webhook, broker: workerBroker, logger: env.logger) { job, last in
                await sender.handle(job, lastAttempt: last)
            })
            let running = workers
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in running { group.addTask { try await worker.run() } }
                try await APIHarness.run(env, configure: { $0.webhookAddresses = WebhookAddressPolicy(allowPrivate: true) }, dependencies: {
                    $0.pipeline = Self.pipeline
                    $0.blobs = blobs
                    $0.publisher = JobPublisher(broker: publishing)
                }) { api in
                    try await body(api)
                }
                group.cancelAll()
            }
        } catch {
            await publishing.close()
            await workerBroker.close()
            throw error
        }
        await publishing.close()
        await workerBroker.close()
    }

    /// GETs `path` until `done` holds for its JSON.
    static func waitFor(
        _ api: APIClient, token: String, _ path: String, seconds: Int = 30, _ done: ([String: Any]) -> Bool
    ) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while true {
            let response = try await api.call(.get, path, token: token)
            if response.status == 200 && done(response.json) { return response.json }
            if ContinuousClock.now > deadline { throw TestFailure("\(path) did not reach the expected state in \(seconds) s: \(response.body)") }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    static func waitUntil(_ what: String, seconds: Int = 30, _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !(await condition()) {
            if ContinuousClock.now > deadline { throw TestFailure("timed out waiting until \(what)") }
            try await Task.sleep(for: .milliseconds(200))
        }
    }
}

/// A webhook receiver on a free loopback port: `/hook` answers 500 to its first `failFirst` calls and 200
/// after; `/always-500` always fails. Every call is recorded.
final class WebhookReceiver: Sendable {
    struct Call: Sendable {
        let path: String
        let body: String
        let signature: String?
        let delivery: String?
        let attempt: String?
        /// The Host the caller named (`authority`).
        let host: String?
    }

    let failFirst: Int
    private let recorded = Mutex<[Call]>([])
    private let healed = Mutex(false)

    /// From now on `/always-500` answers 200 too.
    func heal() { healed.withLock { $0 = true } }

    init(failFirst: Int) { self.failFirst = failFirst }

    func calls(path: String) -> [Call] { recorded.withLock { $0.filter { $0.path == path } } }

    func run(_ body: @Sendable (Int) async throws -> Void) async throws {
        let router = Router()
        router.post("{path}") { request, context -> HTTPResponse.Status in
            let bytes = try await request.body.collect(upTo: 1 << 20)
            let path = "/" + (context.parameters.get("path") ?? "")
            let call = Call(
                path: path, body: String(buffer: bytes), signature: request.headers[HTTPField.Name("X-IntelliDocs-Signature")!],
                delivery: request.headers[HTTPField.Name("X-IntelliDocs-Delivery")!], attempt: request.headers[HTTPField.Name("X-IntelliDocs-Attempt")!],
                host: request.head.authority)
            let count = self.recorded.withLock { calls in
                calls.append(call)
                return calls.filter { $0.path == path }.count
            }
            if path == "/always-500" && !self.healed.withLock({ $0 }) { return .internalServerError }
            if path == "/hook" && count <= self.failFirst { return .internalServerError }
            return .ok
        }
        let port = Mutex<Int?>(nil)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            let deadline = ContinuousClock.now + .seconds(10)
            while port.withLock({ $0 }) == nil {
                if ContinuousClock.now > deadline { throw TestFailure("the webhook receiver did not start") }
                try await Task.sleep(for: .milliseconds(20))
            }
            try await body(port.withLock { $0 }!)
            group.cancelAll()
        }
    }
}
