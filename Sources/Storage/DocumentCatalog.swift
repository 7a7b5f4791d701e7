public import Foundation
public import Logging
public import PostgresNIO

/// A document as the API shows it: metadata, status and tags.
public struct DocumentSummary: Sendable, Equatable {
    public let id: UUID
    public let externalID: String?
    public let title: String
    public let mimeType: String?
    public let sizeBytes: Int
    public let sha256: String
    public let status: DocumentStatus
    public let error: String?
    public let failedStage: String?
    public let pageCount: Int?
    public let tags: [String]
    public let nearDuplicateOf: UUID?
    /// Where a workflow's review put it (nil: not under review).
    public let reviewState: String?
    public let assigneeID: UUID?
    public let createdAt: Date
    public let updatedAt: Date
}

/// One stage run of a document's timeline.
public struct StageRunRecord: Sendable, Equatable {
    public let stage: String
    public let status: StageRunStatus
    public let attempts: Int
    public let startedAt: Date?
    public let finishedAt: Date?
    public let error: String?
}

/// Filters of the document list; every one optional.
public struct DocumentListFilter: Sendable {
    public var status: DocumentStatus?
    public var tag: String?
    public var mimeType: String?
    /// Case-insensitive substring of the title or external id.
    public var text: String?
    public var reviewState: String?
    public var assigneeID: UUID?

    public init(status: DocumentStatus? = nil, tag: String? = nil, mimeType: String? = nil, text: String? = nil, reviewState: String? = nil, assigneeID: UUID? = nil) {
        self.status = status
        self.tag = tag
        self.mimeType = mimeType
        self.text = text
        self.reviewState = reviewState
        self.assigneeID = assigneeID
    }
}

/// Where a page of the document list continues: the last row's creation time and id (newest first).
public struct DocumentListPosition: Sendable, Equatable {
    public let createdAt: Date
    public let id: UUID
    public init(createdAt: Date, id: UUID) {
        self.createdAt = createdAt
        self.id = id
    }
}

/// The API's reads and edits of one organisation's documents (the pipeline writes through
/// `DocumentRepository`, `ContentRepository` and `StageRunRepository`).
public struct DocumentCatalog: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    static let columns = """
        id, external_id, title, mime_type, size_bytes, sha256, status, error, failed_stage, page_count, tags, near_duplicate_of,
        review_state, assignee_id, created_at, updated_at
        """

    public func get(_ id: UUID, orgID: UUID, on connection: PostgresConnection) async throws -> DocumentSummary? {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.columns) FROM documents WHERE id = \(id) AND org_id = \(orgID)", logger: logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    /// Newest first, `limit` rows after `position`.
    public func list(
        orgID: UUID, filter: DocumentListFilter, after position: DocumentListPosition?, limit: Int, on connection: PostgresConnection
    ) async throws -> [DocumentSummary] {
        let pattern = filter.text.map { "%" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%" }
        let rows = try await connection.query(
            """
            SELECT \(unescaped: Self.columns) FROM documents
            WHERE org_id = \(orgID)
              AND (\(filter.status?.rawValue)::text IS NULL OR status = \(filter.status?.rawValue))
              AND (\(filter.tag)::text IS NULL OR tags @> ARRAY[\(filter.tag)::text])
              AND (\(filter.mimeType)::text IS NULL OR mime_type = \(filter.mimeType))
              AND (\(pattern)::text IS NULL OR title ILIKE \(pattern) OR external_id ILIKE \(pattern))
              AND (\(filter.reviewState)::text IS NULL OR review_state = \(filter.reviewState))
              AND (\(filter.assigneeID)::uuid IS NULL OR assignee_id = \(filter.assigneeID))
              AND (\(position?.createdAt)::timestamptz IS NULL OR (created_at, id) < (\(position?.createdAt)::timestamptz, \(position?.id)::uuid))
            ORDER BY created_at DESC, id DESC
            LIMIT \(limit)
            """, logger: logger)
        var documents: [DocumentSummary] = []
        for try await row in rows { documents.append(try Self.decode(row)) }
        return documents
    }

    /// The document's stage runs in pipeline order of their start.
    public func timeline(_ id: UUID, orgID: UUID, on connection: PostgresConnection) async throws -> [StageRunRecord] {
        let rows = try await connection.query(
            """
            SELECT stage, status, attempts, started_at, finished_at, error FROM stage_runs
            WHERE document_id = \(id) AND org_id = \(orgID)
            ORDER BY started_at NULLS LAST, stage
            """, logger: logger)
        var runs: [StageRunRecord] = []
        for try await (stage, status, attempts, started, finished, error) in rows.decode((String, String, Int, Date?, Date?, String?).self) {
            runs.append(StageRunRecord(
                stage: stage, status: StageRunStatus(rawValue: status) ?? .pending, attempts: attempts, startedAt: started,
                finishedAt: finished, error: error))
        }
        return runs
    }

    /// Replaces the document's tags; false when the organisation has no such document.
    public func setTags(_ tags: [String], of id: UUID, orgID: UUID, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            "UPDATE documents SET tags = \(tags)::text[], updated_at = now() WHERE id = \(id) AND org_id = \(orgID) RETURNING id",
            logger: logger)
        for try await _ in rows { return true }
        return false
    }

    /// Adds tags to documents that lack them (uploads with `tags`).
    public func addTags(_ tags: [String], to ids: [UUID], orgID: UUID, on connection: PostgresConnection) async throws {
        if tags.isEmpty || ids.isEmpty { return }
        try await DocumentRepository.lockInOrder(ids, orgID: orgID, on: connection, logger: logger)
        try await connection.query(
            """
            UPDATE documents SET tags = ARRAY(SELECT DISTINCT unnest(tags || \(tags)::text[]) ORDER BY 1), updated_at = now()
            WHERE id = ANY(\(ids)::uuid[]) AND org_id IS NOT DISTINCT FROM \(orgID)
            """, logger: logger)
    }

    /// Sends the document through the pipeline again: its stage runs are forgotten (a succeeded run would
    /// otherwise make every stage skip it), its status is `queued`. The caller publishes the first job after
    /// the commit. False when the organisation has no such document.
    public func resetForReprocessing(_ id: UUID, orgID: UUID, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE documents SET status = 'queued', error = NULL, failed_stage = NULL, published_at = NULL, updated_at = now()
            WHERE id = \(id) AND org_id = \(orgID) RETURNING id
            """, logger: logger)
        var found = false
        for try await _ in rows { found = true }
        guard found else { return false }
        try await connection.query("DELETE FROM stage_runs WHERE document_id = \(id) AND org_id = \(orgID)", logger: logger)
        return true
    }

    /// Deletes the document with its pages, chunks, postings, vectors and near-duplicate buckets (foreign
    /// keys cascade; the postings' triggers keep the search statistics exact). Returns the deleted row, and
    /// whether any document (of any organisation) still references the same bytes, so the caller knows
    /// whether the blob may go.
    public func delete(_ id: UUID, orgID: UUID, on connection: PostgresConnection) async throws -> (document: DocumentSummary, blobStillUsed: Bool)? {
        let rows = try await connection.query(
            "DELETE FROM documents WHERE id = \(id) AND org_id = \(orgID) RETURNING \(unescaped: Self.columns)", logger: logger)
        var deleted: DocumentSummary?
        for try await row in rows { deleted = try Self.decode(row) }
        guard let deleted else { return nil }
        let others = try await connection.query("SELECT count(*) FROM documents WHERE sha256 = \(deleted.sha256)", logger: logger)
        var count = 0
        for try await value in others.decode(Int.self) { count = value }
        return (deleted, count > 0)
    }

    /// The pages' text with where it came from.
    public func pages(_ id: UUID, orgID: UUID, on connection: PostgresConnection) async throws -> [PageRecord] {
        try await ContentRepository(logger: logger).pages(documentIDs: [id], orgID: orgID, on: connection)
    }

    static func decode(_ row: PostgresRow) throws -> DocumentSummary {
        let (id, externalID, title, mimeType, size, sha, status, error, failedStage, pageCount, tags, nearDuplicateOf, reviewState, assignee, created, updated) =
            try row.decode((UUID, String?, String, String?, Int, String, String, String?, String?, Int?, [String], UUID?, String?, UUID?, Date, Date).self)
        return DocumentSummary(
            id: id, externalID: externalID, title: title, mimeType: mimeType, sizeBytes: size, sha256: sha,
            status: DocumentStatus(rawValue: status) ?? .queued, error: error, failedStage: failedStage, pageCount: pageCount, tags: tags,
            nearDuplicateOf: nearDuplicateOf, reviewState: reviewState, assigneeID: assignee, createdAt: created, updatedAt: updated)
    }
}
