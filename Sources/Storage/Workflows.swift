public import Foundation
public import Logging
public import PostgresNIO

/// A workflow as stored (0009); `definition` is the JSON of its conditions, actions and review states,
/// which the `Workflows` module reads and validates.
public struct WorkflowRecord: Sendable, Equatable {
    public let id: UUID
    public let orgID: UUID
    public let name: String
    public let trigger: String
    public let enabled: Bool
    public let definition: String
    public let createdAt: Date
    public let updatedAt: Date
}

/// One evaluation of a workflow for one event, with the status of its webhook calls.
public struct WorkflowRunRecord: Sendable, Equatable {
    public let id: UUID
    public let workflowID: UUID
    public let eventID: UUID
    public let documentID: UUID
    public let trigger: String
    public let outcome: String
    /// JSON array of what was done.
    public let actions: String
    public let error: String?
    public let createdAt: Date
    public var deliveries: [WebhookDeliveryRecord]
}

public struct WebhookDeliveryRecord: Sendable, Equatable {
    public let id: UUID
    public let orgID: UUID
    public let runID: UUID
    public let actionIndex: Int
    public let url: String
    public let payload: String
    public let signature: String
    public let status: String
    public let attempts: Int
    public let responseStatus: Int?
    public let lastError: String?
}

/// A document as a workflow sees it.
public struct WorkflowDocument: Sendable, Equatable {
    public let id: UUID
    public let orgID: UUID
    public let orgSlug: String
    public let title: String
    public let sourcePath: String?
    public let mimeType: String?
    public let status: String
    public var tags: [String]
    public let pageCount: Int?
    public var reviewState: String?
    /// nil when not asked for, or before text extraction.
    public let text: String?

    public init(
        id: UUID, orgID: UUID, orgSlug: String, title: String, sourcePath: String?, mimeType: String?, status: String, tags: [String],
        pageCount: Int?, reviewState: String?, text: String?
    ) {
        self.id = id
        self.orgID = orgID
        self.orgSlug = orgSlug
        self.title = title
        self.sourcePath = sourcePath
        self.mimeType = mimeType
        self.status = status
        self.tags = tags
        self.pageCount = pageCount
        self.reviewState = reviewState
        self.text = text
    }

    /// The file name conditions match against: the last component of the path it was imported from, else the title.
    public var filename: String {
        if let sourcePath, let last = sourcePath.split(separator: "/").last { return String(last) }
        return title
    }
}

/// The two outboxes the relay publishes: workflow events and webhook deliveries.
public enum Outbox: Sendable, Hashable {
    case events, deliveries
}

/// An unpublished outbox row: its id becomes the job id.
public struct OutboxItem: Sendable, Equatable {
    public let id: UUID
    public let orgID: UUID
    public let documentID: UUID
}

/// A workflow event waiting to be handled (the outbox row).
public struct WorkflowEventRecord: Sendable, Equatable {
    public let id: UUID
    public let orgID: UUID
    public let documentID: UUID
    public let trigger: String
    public let processedAt: Date?
}

/// Workflows of one organisation, their runs and webhook deliveries, and the outbox that connects
/// document changes to the workflow queue.
public struct WorkflowRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    static let columns = "id, org_id, name, trigger, enabled, definition::text, created_at, updated_at"

    // MARK: Workflows

    /// Throws `StorageError(.conflict)` when the organisation already has a workflow of that name.
    public func create(
        orgID: UUID, name: String, trigger: String, enabled: Bool, definition: String, createdBy: UUID?, on connection: PostgresConnection
    ) async throws -> WorkflowRecord {
        do {
            let rows = try await connection.query(
                """
                INSERT INTO workflows (id, org_id, name, trigger, enabled, definition, created_by)
                VALUES (\(UUID()), \(orgID), \(name), \(trigger), \(enabled), \(definition)::jsonb, \(createdBy))
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            for try await row in rows { return try Self.decode(row) }
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            throw StorageError(code: .conflict, message: "the organisation already has a workflow named '\(name)'")
        }
        throw StorageError(code: .query, message: "creating the workflow returned no row")
    }

    public func update(
        _ id: UUID, orgID: UUID, name: String, trigger: String, enabled: Bool, definition: String, on connection: PostgresConnection
    ) async throws -> WorkflowRecord? {
        do {
            let rows = try await connection.query(
                """
                UPDATE workflows SET name = \(name), trigger = \(trigger), enabled = \(enabled), definition = \(definition)::jsonb, updated_at = now()
                WHERE id = \(id) AND org_id = \(orgID)
                RETURNING \(unescaped: Self.columns)
                """, logger: logger)
            for try await row in rows { return try Self.decode(row) }
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            throw StorageError(code: .conflict, message: "the organisation already has a workflow named '\(name)'")
        }
        return nil
    }

    public func delete(_ id: UUID, orgID: UUID, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query("DELETE FROM workflows WHERE id = \(id) AND org_id = \(orgID) RETURNING id", logger: logger)
        for try await _ in rows { return true }
        return false
    }

    public func get(_ id: UUID, orgID: UUID, on connection: PostgresConnection) async throws -> WorkflowRecord? {
        let rows = try await connection.query("SELECT \(unescaped: Self.columns) FROM workflows WHERE id = \(id) AND org_id = \(orgID)", logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    public func list(orgID: UUID, on connection: PostgresConnection) async throws -> [WorkflowRecord] {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.columns) FROM workflows WHERE org_id = \(orgID) ORDER BY created_at, id LIMIT 1000", logger: logger)
        var workflows: [WorkflowRecord] = []
        for try await row in rows { workflows.append(try Self.decode(row)) }
        return workflows
    }

    public func count(orgID: UUID, on connection: PostgresConnection) async throws -> Int {
        let rows = try await connection.query("SELECT count(*) FROM workflows WHERE org_id = \(orgID)", logger: logger)
        for try await count in rows.decode(Int.self) { return count }
        return 0
    }

    /// The enabled workflows of `trigger`, oldest first: the order they run in.
    public func enabled(orgID: UUID, trigger: String, on connection: PostgresConnection) async throws -> [WorkflowRecord] {
        let rows = try await connection.query(
            """
            SELECT \(unescaped: Self.columns) FROM workflows
            WHERE org_id = \(orgID) AND trigger = \(trigger) AND enabled ORDER BY created_at, id
            """, logger: logger)
        var workflows: [WorkflowRecord] = []
        for try await row in rows { workflows.append(try Self.decode(row)) }
        return workflows
    }

    static func decode(_ row: PostgresRow) throws -> WorkflowRecord {
        let (id, orgID, name, trigger, enabled, definition, created, updated) =
            try row.decode((UUID, UUID, String, String, Bool, String, Date, Date).self)
        return WorkflowRecord(id: id, orgID: orgID, name: name, trigger: trigger, enabled: enabled, definition: definition, createdAt: created, updatedAt: updated)
    }

    // MARK: Outbox

    /// Records `trigger` for the documents (pairs of id and organisation) whose organisation has an enabled
    /// workflow for it, in the caller's transaction; organisations without one pay an index probe.
    public static func recordEvents(
        _ trigger: String, documentIDs: [UUID], orgIDs: [UUID], on connection: PostgresConnection, logger: Logger
    ) async throws {
        if documentIDs.isEmpty { return }
        try await connection.query(
            """
            INSERT INTO workflow_events (id, org_id, document_id, trigger)
            SELECT gen_random_uuid(), e.org_id, e.document_id, \(trigger)
            FROM unnest(\(documentIDs)::uuid[], \(orgIDs)::uuid[]) AS e(document_id, org_id)
            WHERE EXISTS (SELECT 1 FROM workflows w WHERE w.org_id = e.org_id AND w.trigger = \(trigger) AND w.enabled)
            """, logger: logger)
    }

    /// Which outbox of unpublished rows have: the relay's cheap check before it opens transactions
    /// (two probes of partial indexes).
    public func pendingOutboxes(database: Database) async throws -> Set<Outbox> {
        let rows = try await database.client.query(
            """
            SELECT EXISTS (SELECT 1 FROM workflow_events WHERE published_at IS NULL),
                   EXISTS (SELECT 1 FROM webhook_deliveries WHERE published_at IS NULL)
            """, logger: logger)
        var pending = Set<Outbox>()
        for try await (events, deliveries) in rows.decode((Bool, Bool).self) {
            if events { pending.insert(.events) }
            if deliveries { pending.insert(.deliveries) }
        }
        return pending
    }

    /// Up to `limit` unpublished rows of the outbox, oldest first, locked (SKIP LOCKED: relays in several
    /// processes share the work).
    public func lockUnpublished(_ outbox: Outbox, limit: Int, on connection: PostgresConnection) async throws -> [OutboxItem] {
        let query: PostgresQuery = switch outbox {
        case .events:
            """
            SELECT id, org_id, document_id FROM workflow_events
            WHERE published_at IS NULL ORDER BY created_at LIMIT \(limit) FOR UPDATE SKIP LOCKED
            """
        case .deliveries:
            """
            SELECT d.id, d.org_id, r.document_id FROM webhook_deliveries d JOIN workflow_runs r ON r.id = d.run_id
            WHERE d.published_at IS NULL ORDER BY d.created_at LIMIT \(limit) FOR UPDATE OF d SKIP LOCKED
            """
        }
        let rows = try await connection.query(query, logger: logger)
        var items: [OutboxItem] = []
        for try await (id, orgID, documentID) in rows.decode((UUID, UUID, UUID).self) {
            items.append(OutboxItem(id: id, orgID: orgID, documentID: documentID))
        }
        return items
    }

    public func markPublished(_ outbox: Outbox, ids: [UUID], on connection: PostgresConnection) async throws {
        switch outbox {
        case .events:
            try await connection.query("UPDATE workflow_events SET published_at = now() WHERE id = ANY(\(ids)::uuid[])", logger: logger)
        case .deliveries:
            try await connection.query("UPDATE webhook_deliveries SET published_at = now() WHERE id = ANY(\(ids)::uuid[])", logger: logger)
        }
    }

    // MARK: Handling an event

    /// Locks the event for the worker handling it; nil when it does not exist in that organisation.
    public func lockEvent(_ id: UUID, orgID: UUID, on connection: PostgresConnection) async throws -> WorkflowEventRecord? {
        let rows = try await connection.query(
            "SELECT id, org_id, document_id, trigger, processed_at FROM workflow_events WHERE id = \(id) AND org_id = \(orgID) FOR UPDATE",
            logger: logger)
        for try await (id, orgID, documentID, trigger, processed) in rows.decode((UUID, UUID, UUID, String, Date?).self) {
            return WorkflowEventRecord(id: id, orgID: orgID, documentID: documentID, trigger: trigger, processedAt: processed)
        }
        return nil
    }

    /// Deletes up to `limit` events handled more than `age` ago, oldest first; returns how many. An event
    /// redelivered after its row is gone is skipped like any handled one (`lockEvent` finds nothing), and
    /// its runs stay.
    public func deleteHandledEvents(olderThan age: Duration, limit: Int, database: Database) async throws -> Int {
        let seconds = Double(age.components.seconds) + Double(age.components.attoseconds) / 1e18
        let rows = try await database.client.query(
            """
            WITH old AS (
                SELECT id FROM workflow_events
                WHERE processed_at IS NOT NULL AND processed_at < now() - make_interval(secs => \(seconds))
                ORDER BY processed_at LIMIT \(limit)
            )
            DELETE FROM workflow_events e USING old WHERE e.id = old.id RETURNING e.id
            """, logger: logger)
        var deleted = 0
        for try await _ in rows { deleted += 1 }
        return deleted
    }

    public func markEventProcessed(_ id: UUID, on connection: PostgresConnection) async throws {
        try await connection.query("UPDATE workflow_events SET processed_at = now() WHERE id = \(id)", logger: logger)
    }

    /// Records a run; false when this event already has a run of this workflow (a redelivery).
    public func insertRun(
        id: UUID, orgID: UUID, workflowID: UUID, eventID: UUID, documentID: UUID, trigger: String, outcome: String, actions: String,
        error: String?, on connection: PostgresConnection
    ) async throws -> Bool {
        let rows = try await connection.query(
            """
            INSERT INTO workflow_runs (id, org_id, workflow_id, event_id, document_id, trigger, outcome, actions, error)
            VALUES (\(id), \(orgID), \(workflowID), \(eventID), \(documentID), \(trigger), \(outcome), \(actions)::jsonb, \(error))
            ON CONFLICT (event_id, workflow_id) DO NOTHING RETURNING id
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }

    public func insertDelivery(
        id: UUID, orgID: UUID, runID: UUID, actionIndex: Int, url: String, payload: String, signature: String, on connection: PostgresConnection
    ) async throws {
        try await connection.query(
            """
            INSERT INTO webhook_deliveries (id, org_id, run_id, action_index, url, payload, signature)
            VALUES (\(id), \(orgID), \(runID), \(actionIndex), \(url), \(payload), \(signature))
            """, logger: logger)
    }

    /// Newest first, up to `limit`, each with its webhook deliveries.
    public func runs(workflowID: UUID, orgID: UUID, limit: Int, on connection: PostgresConnection) async throws -> [WorkflowRunRecord] {
        let rows = try await connection.query(
            """
            SELECT id, workflow_id, event_id, document_id, trigger, outcome, actions::text, error, created_at FROM workflow_runs
            WHERE workflow_id = \(workflowID) AND org_id = \(orgID) ORDER BY created_at DESC, id DESC LIMIT \(limit)
            """, logger: logger)
        var runs: [WorkflowRunRecord] = []
        for try await (id, workflowID, eventID, documentID, trigger, outcome, actions, error, created) in rows.decode(
            (UUID, UUID, UUID, UUID, String, String, String, String?, Date).self)
        {
            runs.append(WorkflowRunRecord(
                id: id, workflowID: workflowID, eventID: eventID, documentID: documentID, trigger: trigger, outcome: outcome, actions: actions,
                error: error, createdAt: created, deliveries: []))
        }
        if runs.isEmpty { return runs }
        let deliveries = try await connection.query(
            "SELECT \(unescaped: Self.deliveryColumns) FROM webhook_deliveries WHERE run_id = ANY(\(runs.map(\.id))::uuid[]) AND org_id = \(orgID) ORDER BY action_index",
            logger: logger)
        var byRun: [UUID: [WebhookDeliveryRecord]] = [:]
        for try await row in deliveries {
            let delivery = try Self.decodeDelivery(row)
            byRun[delivery.runID, default: []].append(delivery)
        }
        for index in runs.indices { runs[index].deliveries = byRun[runs[index].id] ?? [] }
        return runs
    }

    // MARK: Webhook deliveries

    static let deliveryColumns = "id, org_id, run_id, action_index, url, payload, signature, status, attempts, response_status, last_error"

    public func delivery(_ id: UUID, orgID: UUID, on connection: PostgresConnection) async throws -> WebhookDeliveryRecord? {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.deliveryColumns) FROM webhook_deliveries WHERE id = \(id) AND org_id = \(orgID)", logger: logger)
        for try await row in rows { return try Self.decodeDelivery(row) }
        return nil
    }

    /// Records one attempt: `delivered`, `failed` (no more attempts) or still `pending`.
    public func recordAttempt(
        _ id: UUID, status: String, responseStatus: Int?, error: String?, on connection: PostgresConnection
    ) async throws {
        try await connection.query(
            """
            UPDATE webhook_deliveries
            SET attempts = attempts + 1, status = \(status), response_status = \(responseStatus), last_error = \(error),
                finished_at = CASE WHEN \(status) = 'pending' THEN NULL ELSE now() END
            WHERE id = \(id) AND status = 'pending'
            """, logger: logger)
    }

    /// A failed delivery becomes pending again (its dead letter is being replayed).
    public func reopenDelivery(_ id: UUID, orgID: UUID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "UPDATE webhook_deliveries SET status = 'pending', finished_at = NULL WHERE id = \(id) AND org_id = \(orgID) AND status = 'failed'",
            logger: logger)
    }

    static func decodeDelivery(_ row: PostgresRow) throws -> WebhookDeliveryRecord {
        let (id, orgID, runID, index, url, payload, signature, status, attempts, responseStatus, lastError) =
            try row.decode((UUID, UUID, UUID, Int, String, String, String, String, Int, Int?, String?).self)
        return WebhookDeliveryRecord(
            id: id, orgID: orgID, runID: runID, actionIndex: index, url: url, payload: payload, signature: signature, status: status,
            attempts: attempts, responseStatus: responseStatus, lastError: lastError)
    }

    // MARK: The document a workflow looks at

    /// What conditions test and webhooks report. `text` (the pages joined, at most `textLimit` characters)
    /// only when asked for: most workflows do not look at it.
    public func document(_ id: UUID, orgID: UUID, withText: Bool, textLimit: Int = 1_000_000, on connection: PostgresConnection) async throws -> WorkflowDocument? {
        let rows = try await connection.query(
            """
            SELECT d.title, d.source_path, d.mime_type, d.status, d.tags, d.page_count, d.review_state, o.slug,
                   CASE WHEN \(withText) THEN
                     (SELECT left(string_agg(p.text, E'\n\n' ORDER BY p.page_number), \(textLimit)::int) FROM pages p WHERE p.document_id = d.id)
                   END
            FROM documents d JOIN organizations o ON o.id = d.org_id
            WHERE d.id = \(id) AND d.org_id = \(orgID)
            """, logger: logger)
        for try await (title, sourcePath, mimeType, status, tags, pageCount, reviewState, slug, text) in rows.decode(
            (String, String?, String?, String, [String], Int?, String?, String, String?).self)
        {
            return WorkflowDocument(
                id: id, orgID: orgID, orgSlug: slug, title: title, sourcePath: sourcePath, mimeType: mimeType, status: status, tags: tags,
                pageCount: pageCount, reviewState: reviewState, text: text)
        }
        return nil
    }

    public func removeTags(_ tags: [String], from id: UUID, orgID: UUID, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            UPDATE documents SET tags = ARRAY(SELECT t FROM unnest(tags) AS t WHERE NOT t = ANY(\(tags)::text[]) ORDER BY 1), updated_at = now()
            WHERE id = \(id) AND org_id = \(orgID)
            """, logger: logger)
    }

    // MARK: Review

    /// Sets the document's review state (and the workflow whose transitions govern it) and records the
    /// transition; returns the state it left, or nil when the document is not in the organisation.
    public func setReviewState(
        _ state: String, workflowID: UUID?, documentID: UUID, orgID: UUID, actorID: UUID?, comment: String?, expectedFrom: String?? = nil,
        on connection: PostgresConnection
    ) async throws -> (found: Bool, from: String?) {
        let current = try await connection.query(
            "SELECT review_state FROM documents WHERE id = \(documentID) AND org_id = \(orgID) FOR NO KEY UPDATE", logger: logger)
        var from: String?? = nil
        for try await state in current.decode(String?.self) { from = .some(state) }
        guard case .some(let previous) = from else { return (false, nil) }
        if case .some(let expected) = expectedFrom, expected != previous {
            throw StorageError(code: .conflict, message: "the document's review state changed meanwhile (now \(previous ?? "none")); reload and try again")
        }
        try await connection.query(
            """
            UPDATE documents SET review_state = \(state), review_workflow_id = coalesce(\(workflowID), review_workflow_id), updated_at = now()
            WHERE id = \(documentID) AND org_id = \(orgID)
            """, logger: logger)
        try await connection.query(
            """
            INSERT INTO document_transitions (id, org_id, document_id, workflow_id, from_state, to_state, comment, actor_id)
            VALUES (\(UUID()), \(orgID), \(documentID), coalesce(\(workflowID), (SELECT review_workflow_id FROM documents WHERE id = \(documentID))),
                    \(previous), \(state), \(comment), \(actorID))
            """, logger: logger)
        return (true, previous)
    }

    public func setAssignee(_ userID: UUID, documentID: UUID, orgID: UUID, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE documents SET assignee_id = \(userID), updated_at = now()
            WHERE id = \(documentID) AND org_id = \(orgID)
              AND EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = \(orgID) AND m.user_id = \(userID))
            RETURNING id
            """, logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// The document's review state and the workflow governing it.
    public func review(of documentID: UUID, orgID: UUID, on connection: PostgresConnection) async throws -> (found: Bool, state: String?, workflowID: UUID?) {
        let rows = try await connection.query(
            "SELECT review_state, review_workflow_id FROM documents WHERE id = \(documentID) AND org_id = \(orgID)", logger: logger)
        for try await (state, workflowID) in rows.decode((String?, UUID?).self) { return (true, state, workflowID) }
        return (false, nil, nil)
    }
}
