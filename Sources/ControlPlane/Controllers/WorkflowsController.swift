import Foundation
import HTTPTypes
import Hummingbird
import Storage
import Workflows

/// `/v1/orgs/{org}/workflows` (admins): rules run on document events — conditions, actions, review
/// states — and their runs; `POST /v1/orgs/{org}/documents/{id}/transitions` moves a document between the
/// review states of the workflow that put it under review, by the roles that workflow allows.
///
/// Workflows run in the workers (`WorkflowEngine`, `WebhookSender`), not here: the API validates and
/// stores them. Webhook secrets are accepted and never shown again.
struct WorkflowsController {
    let services: APIServices
    static let maximumWorkflows = 100

    func register(on router: some RouterMethods<APIRequestContext>) {
        router.post("workflows", use: create)
        router.get("workflows", use: list)
        router.get("workflows/{id}", use: show)
        router.put("workflows/{id}", use: replace)
        router.delete("workflows/{id}", use: delete)
        router.get("workflows/{id}/runs", use: runs)
        router.post("documents/{id}/transitions", use: transition)
    }

    // MARK: Bodies

    /// `{"name", "trigger", "enabled"?, "conditions"?, "actions", "review"?}`; an `assign` action names the
    /// member by `user` (email or user id).
    struct WorkflowInput: JSONInput {
        static let fields: Set<String> = ["name", "trigger", "enabled", "conditions", "actions", "review"]
        let name: String
        let trigger: WorkflowTrigger
        let enabled: Bool?
        let conditions: [WorkflowRules.Condition]?
        let actions: [WorkflowRules.Action]
        let review: WorkflowRules.Review?

        var rules: WorkflowRules { WorkflowRules(conditions: conditions ?? [], actions: actions, review: review) }
    }

    struct WorkflowBody: Encodable, Sendable {
        let record: WorkflowRecord
        let rules: WorkflowRules?

        enum CodingKeys: String, CodingKey {
            case id, name, trigger, enabled, conditions, actions, review, createdAt = "created_at", updatedAt = "updated_at"
        }

        /// Actions as given, except that a webhook's secret is replaced by `"has_secret": true`.
        struct ShownAction: Encodable {
            let action: WorkflowRules.Action
            enum CodingKeys: String, CodingKey { case type, tags, state, userID = "user_id", url, hasSecret = "has_secret" }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(action.type, forKey: .type)
                switch action {
                case .addTags(let tags), .removeTags(let tags): try container.encode(tags, forKey: .tags)
                case .setReviewState(let state): try container.encode(state, forKey: .state)
                case .assign(let userID): try container.encode(userID, forKey: .userID)
                case .webhook(let url, _):
                    try container.encode(url, forKey: .url)
                    try container.encode(true, forKey: .hasSecret)
                }
            }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(record.id, forKey: .id)
            try container.encode(record.name, forKey: .name)
            try container.encode(record.trigger, forKey: .trigger)
            try container.encode(record.enabled, forKey: .enabled)
            try container.encode(rules?.conditions ?? [], forKey: .conditions)
            try container.encode((rules?.actions ?? []).map(ShownAction.init), forKey: .actions)
            try container.encode(rules?.review, forKey: .review)
            try container.encode(record.createdAt, forKey: .createdAt)
            try container.encode(record.updatedAt, forKey: .updatedAt)
        }
    }

    struct WorkflowList: Encodable, Sendable {
        let workflows: [WorkflowBody]
    }

    /// One recorded action of a run (see `WorkflowEngine.ActionRecord`).
    struct RunAction: Codable, Sendable {
        let type: String
        let tags: [String]?
        let state: String?
        let from: String?
        let userID: UUID?
        let deliveryID: UUID?
        let url: String?
        let done: Bool?
        let note: String?
        enum CodingKeys: String, CodingKey {
            case type, tags, state, from, userID = "user_id", deliveryID = "delivery_id", url, done, note
        }
    }

    struct WebhookBody: Encodable, Sendable {
        let deliveryID: UUID
        let url: String
        let status: String
        let attempts: Int
        let responseStatus: Int?
        let lastError: String?
        enum CodingKeys: String, CodingKey {
            case deliveryID = "delivery_id", url, status, attempts, responseStatus = "response_status", lastError = "last_error"
        }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(deliveryID, forKey: .deliveryID)
            try container.encode(url, forKey: .url)
            try container.encode(status, forKey: .status)
            try container.encode(attempts, forKey: .attempts)
            try container.encode(responseStatus, forKey: .responseStatus)
            try container.encode(lastError, forKey: .lastError)
        }
    }

    struct RunBody: Encodable, Sendable {
        let id: UUID
        let documentID: UUID
        let eventID: UUID
        let trigger: String
        let outcome: String
        let actions: [RunAction]
        let error: String?
        let webhooks: [WebhookBody]
        let createdAt: Date
        enum CodingKeys: String, CodingKey {
            case id, documentID = "document_id", eventID = "event_id", trigger, outcome, actions, error, webhooks, createdAt = "created_at"
        }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(documentID, forKey: .documentID)
            try container.encode(eventID, forKey: .eventID)
            try container.encode(trigger, forKey: .trigger)
            try container.encode(outcome, forKey: .outcome)
            try container.encode(actions, forKey: .actions)
            try container.encode(error, forKey: .error)
            try container.encode(webhooks, forKey: .webhooks)
            try container.encode(createdAt, forKey: .createdAt)
        }
    }

    struct RunList: Encodable, Sendable {
        let runs: [RunBody]
    }

    struct TransitionInput: JSONInput {
        static let fields: Set<String> = ["to", "comment"]
        let to: String
        let comment: String?
        func validate() throws(APIError) {
            guard !to.isEmpty, to.count <= 40 else { throw APIError.validation("to", "must be a review state name") }
            if let comment, comment.count > 2000 { throw APIError.validation("comment", "at most 2000 characters") }
        }
    }

    // MARK: Routes

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Reply<WorkflowBody> {
        let access = try context.require(.workflowsManage)
        let input = try await decode(request, context: context, orgID: access.orgID)
        let record = try await services.database.inTransaction { connection in
            // Every event runs every workflow of its trigger: a bound keeps that cost in check.
            let existing = try await repository.count(orgID: access.orgID, on: connection)
            guard existing < Self.maximumWorkflows else {
                throw APIError.conflict(
                    "the organisation has \(existing) workflows, the most it may have; delete or combine some first", code: "workflow_limit")
            }
            let record: WorkflowRecord
            do {
                record = try await repository.create(
                    orgID: access.orgID, name: input.name.trimmingCharacters(in: .whitespacesAndNewlines), trigger: input.trigger.rawValue,
                    enabled: input.enabled ?? true, definition: input.rules.encoded(), createdBy: context.principal?.user?.id, on: connection)
            } catch let error as StorageError where error.code == .conflict {
                throw APIError.conflict("\(error.message); choose another name", code: "workflow_name_taken")
            }
            try await services.audit.append(
                AuditEntry("workflow.created", orgID: access.orgID, target: .workflow(record.id),
                           details: ["name": record.name, "trigger": record.trigger], request: request, context: context),
                on: connection)
            return record
        }
        return Reply(.created, WorkflowBody(record: record, rules: input.rules))
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> OK<WorkflowList> {
        let access = try context.require(.workflowsManage)
        let records = try await services.database.withConnection { try await repository.list(orgID: access.orgID, on: $0) }
        return OK(WorkflowList(workflows: records.map { WorkflowBody(record: $0, rules: try? WorkflowRules.decode(stored: $0.definition)) }))
    }

    @Sendable func show(_ request: Request, context: APIRequestContext) async throws -> OK<WorkflowBody> {
        let access = try context.require(.workflowsManage)
        let id = try Self.workflowID(context)
        guard let record = try await services.database.withConnection({ try await repository.get(id, orgID: access.orgID, on: $0) }) else {
            throw APIError.notFound("workflow")
        }
        return OK(WorkflowBody(record: record, rules: try? WorkflowRules.decode(stored: record.definition)))
    }

    /// Replaces the whole workflow (webhook secrets must be given again).
    @Sendable func replace(_ request: Request, context: APIRequestContext) async throws -> OK<WorkflowBody> {
        let access = try context.require(.workflowsManage)
        let id = try Self.workflowID(context)
        // Not found before invalid: the answer about another organisation's workflow id is always 404.
        guard try await services.database.withConnection({ try await repository.get(id, orgID: access.orgID, on: $0) }) != nil else {
            throw APIError.notFound("workflow")
        }
        let input = try await decode(request, context: context, orgID: access.orgID)
        let record = try await services.database.inTransaction { connection in
            let updated: WorkflowRecord?
            do {
                updated = try await repository.update(
                    id, orgID: access.orgID, name: input.name.trimmingCharacters(in: .whitespacesAndNewlines), trigger: input.trigger.rawValue,
                    enabled: input.enabled ?? true, definition: input.rules.encoded(), on: connection)
            } catch let error as StorageError where error.code == .conflict {
                throw APIError.conflict("\(error.message); choose another name", code: "workflow_name_taken")
            }
            guard let record = updated else { throw APIError.notFound("workflow") }
            try await services.audit.append(
                AuditEntry("workflow.updated", orgID: access.orgID, target: .workflow(id),
                           details: ["name": record.name, "trigger": record.trigger, "enabled": "\(record.enabled)"], request: request, context: context),
                on: connection)
            return record
        }
        return OK(WorkflowBody(record: record, rules: input.rules))
    }

    /// Deletes the workflow and its runs; documents it put under review keep their state, without
    /// transitions (none can be taken until another workflow sets a state).
    @Sendable func delete(_ request: Request, context: APIRequestContext) async throws -> HTTPResponse.Status {
        let access = try context.require(.workflowsManage)
        let id = try Self.workflowID(context)
        try await services.database.inTransaction { connection in
            guard try await repository.delete(id, orgID: access.orgID, on: connection) else { throw APIError.notFound("workflow") }
            try await services.audit.append(
                AuditEntry("workflow.deleted", orgID: access.orgID, target: .workflow(id), request: request, context: context), on: connection)
        }
        return .noContent
    }

    @Sendable func runs(_ request: Request, context: APIRequestContext) async throws -> OK<RunList> {
        let access = try context.require(.workflowsManage)
        let id = try Self.workflowID(context)
        let limitText = request.uri.queryParameters["limit"].map(String.init)
        let limit = try limitText.map { text throws(APIError) -> Int in
            guard let value = Int(text), (1...500).contains(value) else { throw APIError.validation("limit", "must be 1 to 500") }
            return value
        } ?? 100
        let runs = try await services.database.withConnection { connection in
            guard try await repository.get(id, orgID: access.orgID, on: connection) != nil else { throw APIError.notFound("workflow") }
            return try await repository.runs(workflowID: id, orgID: access.orgID, limit: limit, on: connection)
        }
        return OK(RunList(runs: runs.map { run in
            RunBody(
                id: run.id, documentID: run.documentID, eventID: run.eventID, trigger: run.trigger, outcome: run.outcome,
                actions: (try? JSONDecoder().decode([RunAction].self, from: Data(run.actions.utf8))) ?? [], error: run.error,
                webhooks: run.deliveries.map {
                    WebhookBody(deliveryID: $0.id, url: $0.url, status: $0.status, attempts: $0.attempts, responseStatus: $0.responseStatus, lastError: $0.lastError)
                },
                createdAt: run.createdAt)
        }))
    }

    /// Moves the document to `to` along a transition of the workflow governing its review, if the caller's
    /// role is one the transition allows (or above); audited, and recorded in the document's transitions.
    @Sendable func transition(_ request: Request, context: APIRequestContext) async throws -> OK<DocumentsController.DocumentBody> {
        let access = try context.require(.documentsRead)
        let documentID = try DocumentsController.documentID(context)
        let input = try await request.decodeInput(TransitionInput.self, context: context)
        let document = try await services.database.inTransaction { connection in
            let review = try await repository.review(of: documentID, orgID: access.orgID, on: connection)
            guard review.found else { throw APIError.notFound("document") }
            guard let state = review.state else {
                throw APIError.conflict(
                    "the document is not under review; a workflow with a set_review_state action puts documents under review", code: "not_under_review")
            }
            guard let workflowID = review.workflowID, let workflow = try await repository.get(workflowID, orgID: access.orgID, on: connection),
                  let rules = try? WorkflowRules.decode(stored: workflow.definition), let states = rules.review
            else {
                throw APIError.conflict(
                    "the workflow that put this document under review was deleted or no longer defines review states; a workflow must set its state again",
                    code: "review_workflow_gone")
            }
            guard let transition = states.transition(from: state, to: input.to) else {
                let targets = states.targets(from: state)
                throw APIError(
                    .unprocessableContent, code: "transition_not_allowed",
                    message: "'\(workflow.name)' has no transition \(state) → \(input.to); from \(state) the document can go to: "
                        + (targets.isEmpty ? "nothing (a final state)" : targets.joined(separator: ", ")),
                    field: "to")
            }
            let roles = transition.roles.compactMap(MemberRole.init(rawValue:))
            guard let least = roles.min(), access.role >= least else {
                throw APIError.forbidden(
                    "\(state) → \(input.to) may be taken by \(transition.roles.joined(separator: ", ")) (or a higher role); you are \(access.role.rawValue)",
                    code: "transition_forbidden")
            }
            do {
                _ = try await repository.setReviewState(
                    input.to, workflowID: nil, documentID: documentID, orgID: access.orgID, actorID: context.principal?.user?.id,
                    comment: input.comment, expectedFrom: .some(state), on: connection)
            } catch let error as StorageError where error.code == .conflict {
                throw APIError.conflict(error.message, code: "review_state_changed")
            }
            try await services.audit.append(
                AuditEntry("document.transitioned", orgID: access.orgID, target: AuditTarget(type: "document", id: documentID.uuidString),
                           details: ["from": state, "to": input.to, "workflow_id": workflowID.uuidString, "comment": input.comment ?? ""],
                           request: request, context: context),
                on: connection)
            guard let document = try await services.documents.get(documentID, orgID: access.orgID, on: connection) else {
                throw APIError.notFound("document")
            }
            return document
        }
        return OK(DocumentsController.DocumentBody(document))
    }

    // MARK: Helpers

    var repository: WorkflowRepository { WorkflowRepository(logger: services.logger) }

    static func workflowID(_ context: APIRequestContext) throws(APIError) -> UUID {
        guard let id = context.parameters.get("id").flatMap(UUID.init(uuidString:)) else { throw APIError.notFound("workflow") }
        return id
    }

    /// Decodes and validates a workflow, resolving each `assign` action's `user` (email or id) to a member.
    func decode(_ request: Request, context: APIRequestContext, orgID: UUID) async throws -> WorkflowInput {
        let input = try await request.decodeInput(WorkflowInput.self, context: context) { object in
            // Operators by their other names (`eq`, `matches`, …) are stored by their canonical ones.
            if var conditions = object["conditions"] as? [Any] {
                for index in conditions.indices {
                    guard var condition = conditions[index] as? [String: Any], let name = condition["field"] as? String,
                          let field = WorkflowRules.Condition.Field(rawValue: name), let op = condition["op"] as? String
                    else { continue }
                    condition["op"] = WorkflowRules.Condition.canonicalOperator(op, for: field)
                    conditions[index] = condition
                }
                object["conditions"] = conditions
            }
            guard var actions = object["actions"] as? [Any] else { return }
            for index in actions.indices {
                guard var action = actions[index] as? [String: Any], action["type"] as? String == "assign" else { continue }
                let given = ["user", "user_id", "email", "assignee"].compactMap { action.removeValue(forKey: $0) as? String }
                guard let user = given.first else {
                    throw APIError.validation("actions[\(index)].user", "name the member by email or user id")
                }
                let userID = try await services.database.withConnection { connection -> UUID? in
                    let record = if let id = UUID(uuidString: user) {
                        try await services.users.find(id: id, on: connection)
                    } else {
                        try await services.users.find(email: user.lowercased(), on: connection)
                    }
                    guard let record, try await services.memberships.role(orgID: orgID, userID: record.id, on: connection) != nil else { return nil }
                    return record.id
                }
                guard let userID else { throw APIError.validation("actions[\(index)].user", "'\(user)' is not a member of this organisation") }
                action["user_id"] = userID.uuidString
                actions[index] = action
            }
            object["actions"] = actions
        }
        do {
            try await WorkflowValidator(addresses: services.configuration.webhookAddresses).validate(name: input.name, rules: input.rules)
        } catch {
            throw APIError.validation(error.field, error.message)
        }
        return input
    }
}

extension AuditTarget {
    static func workflow(_ id: UUID) -> AuditTarget { AuditTarget(type: "workflow", id: id.uuidString) }
}
