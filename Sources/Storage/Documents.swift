public import Foundation
public import Logging
public import PostgresNIO

/// Document status (DESIGN.md, States): `queued → processing → succeeded | failed`; re-processing returns
/// a document to `queued`. The transitions are made by the pipeline runtime only (see `DocumentStatus.canMove`).
public enum DocumentStatus: String, Sendable, Codable, CaseIterable {
    case queued, processing, succeeded, failed

    public var isTerminal: Bool { self == .succeeded || self == .failed }
}

/// What an importer knows about a file before the pipeline touches it.
public struct NewDocument: Sendable {
    public var externalID: String?
    public var title: String
    public var sourcePath: String?
    public var mimeType: String?
    public var sizeBytes: Int
    /// Lower-case hex SHA-256 of the original bytes; also the blob key.
    public var sha256: String

    public init(externalID: String?, title: String, sourcePath: String?, mimeType: String?, sizeBytes: Int, sha256: String) {
        self.externalID = externalID
        self.title = title
        self.sourcePath = sourcePath
        self.mimeType = mimeType
        self.sizeBytes = sizeBytes
        self.sha256 = sha256
    }
}

/// One row of `documents`.
public struct DocumentRecord: Sendable, Codable, Equatable {
    public let id: UUID
    public let orgID: UUID
    public let externalID: String?
    public let title: String
    public let sourcePath: String?
    public let mimeType: String?
    public let sizeBytes: Int
    public let sha256: String
    public let status: DocumentStatus
    public let error: String?
    public let failedStage: String?
    public let pageCount: Int?
}

extension NewDocument {
    /// A first guess from the name; the ingest stage finds the real type from the content.
    public static func guessMimeType(_ name: String) -> String? {
        switch (name as NSString).pathExtension.lowercased() {
        case "txt", "text": "text/plain"
        case "md", "markdown": "text/markdown"
        case "html", "htm": "text/html"
        case "pdf": "application/pdf"
        case "png": "image/png"
        case "jpg", "jpeg": "image/jpeg"
        case "tif", "tiff": "image/tiff"
        case "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        default: nil
        }
    }
}

/// The result of registering one file.
public struct Registration: Sendable, Equatable {
    public let documentID: UUID
    /// True when the organisation already had a document with the same bytes: it is counted, not re-processed.
    public let duplicate: Bool
    /// True when this call created the row (what a quota pays for); false for duplicates and for rows an
    /// interrupted run of the same import created.
    public let inserted: Bool
}

/// Documents of one organisation. Every method takes the organisation: no query crosses tenants. Batch
/// statements find rows by id and check the organisation with `IS NOT DISTINCT FROM` (see
/// `ContentRepository` for why).
public struct DocumentRepository: Sendable {
    let database: Database
    public init(_ database: Database) { self.database = database }

    static let columns = "id, org_id, external_id, title, source_path, mime_type, size_bytes, sha256, status, error, failed_stage, page_count"

    /// Registers a batch of files in one statement. Files whose SHA-256 the organisation already has come
    /// back as duplicates with the existing id; new ones are `queued` and unpublished. Runs on the caller's
    /// connection, so that a quota can be charged in the same transaction.
    public func register(
        _ documents: [NewDocument], orgID: UUID, importID: UUID? = nil, on connection: PostgresConnection
    ) async throws -> [Registration] {
        if documents.isEmpty { return [] }
        // Within one batch, identical bytes are one document too.
        var firstIndexBySHA: [String: Int] = [:]
        var unique: [NewDocument] = []
        for document in documents where firstIndexBySHA[document.sha256] == nil {
            firstIndexBySHA[document.sha256] = unique.count
            unique.append(document)
        }
        let ids = unique.map { _ in UUID() }
        // json_to_recordset keeps NULLs (optional external ids, paths, types) that array binds cannot carry.
        struct Row: Encodable {
            let id: UUID, external_id: String?, title: String, source_path: String?, mime_type: String?
            let size_bytes: Int, sha256: String
        }
        let payload = zip(ids, unique).map { id, document in
            Row(id: id, external_id: document.externalID, title: document.title, source_path: document.sourcePath,
                mime_type: document.mimeType, size_bytes: document.sizeBytes, sha256: document.sha256)
        }
        let json = String(decoding: try JSONEncoder().encode(payload), as: UTF8.self)
        let rows = try await connection.query(
            """
            INSERT INTO documents (id, org_id, import_id, external_id, title, source_path, mime_type, size_bytes, sha256)
            SELECT u.id, \(orgID), \(importID), u.external_id, u.title, u.source_path, u.mime_type, u.size_bytes, u.sha256
            FROM json_to_recordset(\(json)::json)
                 AS u(id uuid, external_id text, title text, source_path text, mime_type text, size_bytes bigint, sha256 text)
            ON CONFLICT (org_id, sha256) DO NOTHING
            RETURNING sha256
            """, logger: database.logger)
        var inserted = Set<String>()
        for try await sha in rows.decode(String.self) { inserted.insert(sha) }
        let insertedIDs = zip(ids, unique).filter { inserted.contains($0.1.sha256) }.map(\.0)
        try await WorkflowRepository.recordEvents(
            "document.uploaded", documentIDs: insertedIDs, orgIDs: insertedIDs.map { _ in orgID }, on: connection, logger: database.logger)
        var existing: [String: UUID] = [:]
        var resumed = Set<String>()
        let missing = unique.map(\.sha256).filter { !inserted.contains($0) }
        if !missing.isEmpty {
            let found = try await connection.query(
                "SELECT sha256, id, import_id FROM documents WHERE org_id = \(orgID) AND sha256 = ANY(\(missing)::text[])",
                logger: database.logger)
            for try await (sha, id, firstImport) in found.decode((String, UUID, UUID?).self) {
                existing[sha] = id
                // Registered by an earlier, interrupted run of this same import: not a duplicate.
                if let importID, firstImport == importID { resumed.insert(sha) }
            }
        }
        return documents.enumerated().map { offset, document in
            let index = firstIndexBySHA[document.sha256]!
            if inserted.contains(document.sha256) {
                // A repeat inside this batch is a duplicate of the first occurrence.
                let isFirst = documents.firstIndex { $0.sha256 == document.sha256 } == offset
                return Registration(documentID: ids[index], duplicate: !isFirst, inserted: isFirst)
            }
            let isFirst = documents.firstIndex { $0.sha256 == document.sha256 } == offset
            return Registration(
                documentID: existing[document.sha256] ?? ids[index],
                duplicate: !(isFirst && resumed.contains(document.sha256)), inserted: false)
        }
    }

    /// Documents whose first job was never confirmed by the broker (an interrupted import), oldest first.
    public func unpublished(orgID: UUID, limit: Int) async throws -> [UUID] {
        let rows = try await database.client.query(
            """
            SELECT id FROM documents WHERE org_id = \(orgID) AND published_at IS NULL
            ORDER BY created_at, id LIMIT \(limit)
            """, logger: database.logger)
        var ids: [UUID] = []
        for try await id in rows.decode(UUID.self) { ids.append(id) }
        return ids
    }

    /// Which of `ids` were never confirmed by the broker (new rows, or rows whose publishing failed).
    public func unpublished(_ ids: [UUID], orgID: UUID, on connection: PostgresConnection) async throws -> [UUID] {
        if ids.isEmpty { return [] }
        let rows = try await connection.query(
            """
            SELECT id FROM documents
            WHERE id = ANY(\(ids)::uuid[]) AND org_id IS NOT DISTINCT FROM \(orgID) AND published_at IS NULL
            ORDER BY id
            """, logger: database.logger)
        var found: [UUID] = []
        for try await id in rows.decode(UUID.self) { found.append(id) }
        return found
    }

    public func markPublished(_ ids: [UUID], orgID: UUID) async throws {
        if ids.isEmpty { return }
        try await database.client.query(
            """
            UPDATE documents SET published_at = now()
            WHERE id IN (
                SELECT id FROM documents WHERE org_id IS NOT DISTINCT FROM \(orgID) AND id = ANY(\(ids)::uuid[]) ORDER BY id FOR NO KEY UPDATE
            )
            """,
            logger: database.logger)
    }

    public func get(_ id: UUID, orgID: UUID) async throws -> DocumentRecord? {
        let rows = try await database.client.query(
            "SELECT \(unescaped: Self.columns) FROM documents WHERE org_id = \(orgID) AND id = \(id)",
            logger: database.logger)
        for try await row in rows { return try Self.decode(row) }
        return nil
    }

    /// Documents by id within one organisation (order not guaranteed).
    public func get(_ ids: [UUID], orgID: UUID, on connection: PostgresConnection) async throws -> [DocumentRecord] {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.columns) FROM documents WHERE org_id IS NOT DISTINCT FROM \(orgID) AND id = ANY(\(ids)::uuid[])",
            logger: database.logger)
        var records: [DocumentRecord] = []
        for try await row in rows { records.append(try Self.decode(row)) }
        return records
    }

    /// The status of each of `ids` that is finished (`succeeded` or `failed`); used by `import --wait`.
    public func finishedStatuses(_ ids: [UUID], orgID: UUID) async throws -> [UUID: DocumentStatus] {
        let rows = try await database.client.query(
            """
            SELECT id, status FROM documents
            WHERE org_id IS NOT DISTINCT FROM \(orgID) AND id = ANY(\(ids)::uuid[]) AND status IN ('succeeded', 'failed')
            """, logger: database.logger)
        var statuses: [UUID: DocumentStatus] = [:]
        for try await (id, status) in rows.decode((UUID, String).self) {
            if let status = DocumentStatus(rawValue: status) { statuses[id] = status }
        }
        return statuses
    }

    /// Failed documents among `ids`, with the stage and reason (for `import --report`).
    public func failures(_ ids: [UUID], orgID: UUID) async throws -> [DocumentRecord] {
        let rows = try await database.client.query(
            """
            SELECT \(unescaped: Self.columns) FROM documents
            WHERE org_id IS NOT DISTINCT FROM \(orgID) AND id = ANY(\(ids)::uuid[]) AND status = 'failed'
            ORDER BY source_path
            """, logger: database.logger)
        var records: [DocumentRecord] = []
        for try await row in rows { records.append(try Self.decode(row)) }
        return records
    }

    static func decode(_ row: PostgresRow) throws -> DocumentRecord {
        let (id, org, external, title, source, mime, size, sha, status, error, stage, pages) = try row.decode(
            (UUID, UUID, String?, String, String?, String?, Int64, String, String, String?, String?, Int32?).self)
        return DocumentRecord(
            id: id, orgID: org, externalID: external, title: title, sourcePath: source, mimeType: mime,
            sizeBytes: Int(size), sha256: sha, status: DocumentStatus(rawValue: status) ?? .queued, error: error,
            failedStage: stage, pageCount: pages.map(Int.init))
    }
}

extension DocumentRepository {
    /// Records the type found from the content (the importer only guessed from the name).
    public static func setMimeTypes(_ types: [(UUID, String)], orgID: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        if types.isEmpty { return }
        try await lockInOrder(types.map(\.0), orgID: orgID, on: connection, logger: logger)
        try await connection.query(
            """
            UPDATE documents d SET mime_type = t.mime_type
            FROM unnest(\(types.map(\.0))::uuid[], \(types.map(\.1))::text[]) AS t(id, mime_type)
            WHERE d.id = t.id AND d.org_id IS NOT DISTINCT FROM \(orgID)
            """, logger: logger)
    }

    /// Locks documents' rows in id order until the end of the transaction. Every batch update of documents
    /// takes its rows in this order first (workers, the importer), so concurrent batches wait for each other
    /// instead of deadlocking. `NO KEY UPDATE`, as a plain UPDATE takes, leaves foreign-key checks unblocked.
    public static func lockInOrder(_ ids: [UUID], orgID: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        if ids.isEmpty { return }
        try await connection.query(
            "SELECT id FROM documents WHERE org_id IS NOT DISTINCT FROM \(orgID) AND id = ANY(\(ids)::uuid[]) ORDER BY id FOR NO KEY UPDATE",
            logger: logger)
    }
}
