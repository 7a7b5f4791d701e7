import Crypto
import Foundation
public import Logging
public import Pipeline
import PostgresNIO
public import Storage

/// Handles one workflow event (a `workflow` job whose job id is the event id): runs every enabled
/// workflow of the event's trigger, oldest first, against the document, applies the actions of those
/// that match, records a run per workflow, and queues the webhook calls — all in one transaction.
///
/// Idempotent: the event row is locked and marked processed in that transaction, so a redelivered job
/// finds it processed and does nothing; runs are unique per (event, workflow) as a second guard.
/// Webhook deliveries are rows in the same transaction, published by `OutboxRelay` after the commit.
public struct WorkflowEngine: Sendable {
    let database: Database
    let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    /// One thing a matched workflow did, as recorded in its run.
    struct ActionRecord: Encodable {
        let type: String
        var tags: [String]? = nil
        var state: String? = nil
        var from: String? = nil
        var userID: UUID? = nil
        var deliveryID: UUID? = nil
        var url: String? = nil
        var done = true
        var note: String? = nil

        enum CodingKeys: String, CodingKey {
            case type, tags, state, from, userID = "user_id", deliveryID = "delivery_id", url, done, note
        }
    }

    /// The body of a webhook call. The receiver checks `X-IntelliDocs-Signature` against these exact bytes.
    struct WebhookPayload: Encodable {
        struct Reference: Encodable {
            let id: UUID
            let name: String
        }
        struct Organization: Encodable {
            let id: UUID
            let slug: String
        }
        struct Document: Encodable {
            let id: UUID
            let title: String
            let mimeType: String?
            let status: String
            let tags: [String]
            let pageCount: Int?
            let reviewState: String?
            enum CodingKeys: String, CodingKey {
                case id, title, mimeType = "mime_type", status, tags, pageCount = "page_count", reviewState = "review_state"
            }
        }
        let event: String
        let eventID: UUID
        let deliveryID: UUID
        let time: Date
        let documentID: UUID
        let orgID: UUID
        let organization: Organization
        let workflow: Reference
        let document: Document
        enum CodingKeys: String, CodingKey {
            case event, eventID = "event_id", deliveryID = "delivery_id", time, documentID = "document_id", orgID = "org_id", organization
            case workflow, document
        }
    }

    public func handle(_ job: Job) async -> StageFailure? {
        do {
            try await database.client.withTransaction(logger: logger) { connection in
                try await handle(eventID: job.jobID, orgID: job.orgID, on: connection)
            }
            return nil
        } catch {
            return .transient("handling workflow event \(job.jobID) failed: \(String(reflecting: error))")
        }
    }

    func handle(eventID: UUID, orgID: UUID, on connection: PostgresConnection) async throws {
        let repository = WorkflowRepository(logger: logger)
        // Gone with its document or organisation, or handled by an earlier delivery of this job.
        guard let event = try await repository.lockEvent(eventID, orgID: orgID, on: connection), event.processedAt == nil else { return }
        let workflows = try await repository.enabled(orgID: orgID, trigger: event.trigger, on: connection)
        var parsed: [(WorkflowRecord, Result<WorkflowRules, any Error>)] = []
        for workflow in workflows {
            parsed.append((workflow, Result { try WorkflowRules.decode(stored: workflow.definition) }))
        }
        let needsText = parsed.contains { (try? $0.1.get()).map { ConditionEvaluator.needsText($0.conditions) } ?? false }
        guard var document = try await repository.document(event.documentID, orgID: orgID, withText: needsText, on: connection) else {
            try await repository.markEventProcessed(event.id, on: connection)
            return
        }
        for (workflow, result) in parsed {
            let runID = UUID()
            let rules: WorkflowRules
            switch result {
            case .success(let value): rules = value
            case .failure(let error):
                _ = try await repository.insertRun(
                    id: runID, orgID: orgID, workflowID: workflow.id, eventID: event.id, documentID: document.id, trigger: event.trigger,
                    outcome: "failed", actions: "[]", error: "the stored workflow could not be read (\(error)); save it again", on: connection)
                continue
            }
            switch ConditionEvaluator.evaluate(rules.conditions, document: document) {
            case .matched: break
            case .notMatched:
                _ = try await repository.insertRun(
                    id: runID, orgID: orgID, workflowID: workflow.id, eventID: event.id, documentID: document.id, trigger: event.trigger,
                    outcome: "not_matched", actions: "[]", error: nil, on: connection)
                continue
            case .stopped(let reason):
                _ = try await repository.insertRun(
                    id: runID, orgID: orgID, workflowID: workflow.id, eventID: event.id, documentID: document.id, trigger: event.trigger,
                    outcome: "failed", actions: "[]", error: reason, on: connection)
                continue
            }
            var done: [ActionRecord] = []
            var deliveries: [(id: UUID, index: Int, url: String, secret: String)] = []
            for (index, action) in rules.actions.enumerated() {
                switch action {
                case .addTags(let tags):
                    let catalog = DocumentCatalog(logger: logger)
                    try await catalog.addTags(tags, to: [document.id], orgID: orgID, on: connection)
                    document.tags = Array(Set(document.tags + tags)).sorted()
                    done.append(ActionRecord(type: action.type, tags: tags))
                case .removeTags(let tags):
                    try await repository.removeTags(tags, from: document.id, orgID: orgID, on: connection)
                    document.tags.removeAll { tags.contains($0) }
                    done.append(ActionRecord(type: action.type, tags: tags))
                case .setReviewState(let state):
                    let (_, from) = try await repository.setReviewState(
                        state, workflowID: workflow.id, documentID: document.id, orgID: orgID, actorID: nil,
                        comment: "set by workflow '\(workflow.name)'", on: connection)
                    document.reviewState = state
                    done.append(ActionRecord(type: action.type, state: state, from: from))
                case .assign(let userID):
                    let assigned = try await repository.setAssignee(userID, documentID: document.id, orgID: orgID, on: connection)
                    done.append(ActionRecord(
                        type: action.type, userID: userID, done: assigned,
                        note: assigned ? nil : "the user is no longer a member of the organisation; edit the workflow"))
                case .webhook(let url, let secret):
                    let id = UUID()
                    deliveries.append((id, index, url, secret))
                    done.append(ActionRecord(type: action.type, deliveryID: id, url: url))
                }
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let actions = String(decoding: try encoder.encode(done), as: UTF8.self)
            let inserted = try await repository.insertRun(
                id: runID, orgID: orgID, workflowID: workflow.id, eventID: event.id, documentID: document.id, trigger: event.trigger,
                outcome: "matched", actions: actions, error: nil, on: connection)
            guard inserted else { continue }
            encoder.dateEncodingStrategy = .iso8601
            for delivery in deliveries {
                let payload = WebhookPayload(
                    event: event.trigger, eventID: event.id, deliveryID: delivery.id, time: Date(), documentID: document.id, orgID: orgID,
                    organization: .init(id: orgID, slug: document.orgSlug), workflow: .init(id: workflow.id, name: workflow.name),
                    document: .init(
                        id: document.id, title: document.title, mimeType: document.mimeType, status: document.status, tags: document.tags,
                        pageCount: document.pageCount, reviewState: document.reviewState))
                let body = String(decoding: try encoder.encode(payload), as: UTF8.self)
                try await repository.insertDelivery(
                    id: delivery.id, orgID: orgID, runID: runID, actionIndex: delivery.index, url: delivery.url, payload: body,
                    signature: Self.signature(of: body, secret: delivery.secret), on: connection)
            }
        }
        try await repository.markEventProcessed(event.id, on: connection)
    }

    /// `sha256=<hex HMAC-SHA256 of the body keyed with the action's secret>`.
    public static func signature(of body: String, secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }
}
