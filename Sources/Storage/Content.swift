public import Foundation
public import Logging
public import PostgresNIO

/// Where a page's text came from.
public enum PageSource: String, Sendable, Codable {
    case text
    case textLayer = "text-layer"
    case ocr
}

public struct PageRecord: Sendable, Equatable {
    public let documentID: UUID
    public let number: Int
    public let text: String
    public let source: PageSource
    public let confidence: Float?
    /// A placeholder for a scanned page: its text is empty until the ocr stage reads it (migration 0002).
    public let needsOCR: Bool

    public init(documentID: UUID, number: Int, text: String, source: PageSource, confidence: Float?, needsOCR: Bool = false) {
        self.documentID = documentID
        self.number = number
        self.text = text
        self.source = source
        self.confidence = confidence
        self.needsOCR = needsOCR
    }

    /// A page that must be OCR'd before it has text.
    public static func needingOCR(documentID: UUID, number: Int) -> PageRecord {
        PageRecord(documentID: documentID, number: number, text: "", source: .ocr, confidence: nil, needsOCR: true)
    }
}

public struct ChunkRecord: Sendable, Equatable {
    public let documentID: UUID
    public let index: Int
    public let page: Int
    public let endPage: Int
    public let startOffset: Int
    public let endOffset: Int
    public let text: String

    public init(documentID: UUID, index: Int, page: Int, endPage: Int, startOffset: Int, endOffset: Int, text: String) {
        self.documentID = documentID
        self.index = index
        self.page = page
        self.endPage = endPage
        self.startOffset = startOffset
        self.endOffset = endOffset
        self.text = text
    }
}

/// Pages and chunks. Writes replace whatever an earlier attempt left for the same documents, so a stage
/// that runs twice for a document leaves exactly one set of results (the idempotency recipe).
///
/// Statements about a batch of documents find rows by document id and check the organisation with
/// `org_id IS NOT DISTINCT FROM $1`, which no index serves. With a plain `org_id = $1` the planner, whose
/// statistics often think a new organisation has almost no rows, walked that organisation's whole index
/// prefix instead: 49 ms per 100-document batch at 20,000 documents, the slowest statement of an import.
public struct ContentRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    public func replacePages(_ pages: [PageRecord], documentIDs: [UUID], orgID: UUID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "DELETE FROM pages WHERE org_id IS NOT DISTINCT FROM \(orgID) AND document_id = ANY(\(documentIDs)::uuid[])", logger: logger)
        if pages.isEmpty { return }
        try await connection.query(
            """
            INSERT INTO pages (document_id, page_number, org_id, text, source, confidence, needs_ocr)
            SELECT p.document_id, p.page_number, \(orgID), p.text, p.source, nullif(p.confidence, 'NaN'::real), p.needs_ocr
            FROM unnest(\(pages.map(\.documentID))::uuid[], \(pages.map { Int32($0.number) })::int[],
                        \(pages.map(\.text))::text[], \(pages.map(\.source.rawValue))::text[],
                        \(pages.map { $0.confidence ?? .nan })::real[], \(pages.map(\.needsOCR))::boolean[])
                 AS p(document_id, page_number, text, source, confidence, needs_ocr)
            """, logger: logger)
        let counts = Dictionary(grouping: pages, by: \.documentID).mapValues { Int32($0.count) }
        try await DocumentRepository.lockInOrder(Array(counts.keys), orgID: orgID, on: connection, logger: logger)
        try await connection.query(
            """
            UPDATE documents d SET page_count = c.pages, updated_at = now()
            FROM unnest(\(Array(counts.keys))::uuid[], \(Array(counts.values))::int[]) AS c(id, pages)
            WHERE d.id = c.id AND d.org_id IS NOT DISTINCT FROM \(orgID)
            """, logger: logger)
    }

    public func pages(documentIDs: [UUID], orgID: UUID, on connection: PostgresConnection) async throws -> [PageRecord] {
        let rows = try await connection.query(
            """
            SELECT document_id, page_number, text, source, confidence, needs_ocr FROM pages
            WHERE org_id IS NOT DISTINCT FROM \(orgID) AND document_id = ANY(\(documentIDs)::uuid[])
            ORDER BY document_id, page_number
            """, logger: logger)
        var pages: [PageRecord] = []
        for try await (document, number, text, source, confidence, needsOCR) in rows.decode((UUID, Int32, String, String, Float?, Bool).self) {
            pages.append(PageRecord(
                documentID: document, number: Int(number), text: text, source: PageSource(rawValue: source) ?? .text,
                confidence: confidence, needsOCR: needsOCR))
        }
        return pages
    }

    public func replaceChunks(_ chunks: [ChunkRecord], documentIDs: [UUID], orgID: UUID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "DELETE FROM chunks WHERE org_id IS NOT DISTINCT FROM \(orgID) AND document_id = ANY(\(documentIDs)::uuid[])", logger: logger)
        if chunks.isEmpty { return }
        try await connection.query(
            """
            INSERT INTO chunks (document_id, chunk_index, org_id, page_number, end_page, start_offset, end_offset, text)
            SELECT c.document_id, c.chunk_index, \(orgID), c.page_number, c.end_page, c.start_offset, c.end_offset, c.text
            FROM unnest(\(chunks.map(\.documentID))::uuid[], \(chunks.map { Int32($0.index) })::int[],
                        \(chunks.map { Int32($0.page) })::int[], \(chunks.map { Int32($0.endPage) })::int[],
                        \(chunks.map { Int32($0.startOffset) })::int[], \(chunks.map { Int32($0.endOffset) })::int[],
                        \(chunks.map(\.text))::text[])
                 AS c(document_id, chunk_index, page_number, end_page, start_offset, end_offset, text)
            """, logger: logger)
    }

    /// Makes the documents' chunks searchable: BM25 postings (English lexemes, as PostgreSQL's `english`
    /// configuration stems them, stop-words dropped) replace any earlier ones, and the chunks are marked
    /// indexed. Term statistics follow through the postings' triggers (0003_search.sql).
    public func indexChunks(documentIDs: [UUID], orgID: UUID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "DELETE FROM chunk_terms WHERE org_id IS NOT DISTINCT FROM \(orgID) AND document_id = ANY(\(documentIDs)::uuid[])", logger: logger)
        try await connection.query(
            """
            INSERT INTO chunk_terms (org_id, term, document_id, chunk_index, tf, chunk_length)
            SELECT org_id, term, document_id, chunk_index, tf, sum(tf) OVER (PARTITION BY document_id, chunk_index)
            FROM (
                SELECT c.org_id, t.lexeme AS term, c.document_id, c.chunk_index,
                       coalesce(array_length(t.positions, 1), 1) AS tf
                FROM chunks c CROSS JOIN LATERAL unnest(to_tsvector('english', c.text)) AS t
                WHERE c.org_id IS NOT DISTINCT FROM \(orgID) AND c.document_id = ANY(\(documentIDs)::uuid[])
            ) postings
            ORDER BY term
            """, logger: logger)
        try await connection.query(
            "UPDATE chunks SET indexed = true WHERE org_id IS NOT DISTINCT FROM \(orgID) AND document_id = ANY(\(documentIDs)::uuid[])",
            logger: logger)
        // For in-memory keyword indexes: which documents changed (0010_index_log.sql).
        try await connection.query(
            """
            WITH dropped AS (DELETE FROM index_log WHERE org_id = \(orgID) AND logged_at < now() - interval '1 hour')
            INSERT INTO index_log (org_id, document_ids) VALUES (\(orgID), \(documentIDs))
            """, logger: logger)
    }
}

/// Totals of one organisation (`intellidocs stats`).
public struct OrganizationStats: Sendable, Codable, Equatable {
    public struct Documents: Sendable, Codable, Equatable {
        public var total = 0, succeeded = 0, failed = 0
        public var inProgress = 0
        enum CodingKeys: String, CodingKey { case total, succeeded, failed, inProgress = "in_progress" }
    }
    public var documents = Documents()
    public var pages = 0
    public var chunks = 0
    /// Documents marked as near duplicates of an older one (still indexed).
    public var nearDuplicates = 0

    enum CodingKeys: String, CodingKey { case documents, pages, chunks, nearDuplicates = "near_duplicates" }

    public static func load(orgID: UUID, database: Database) async throws -> OrganizationStats {
        var stats = OrganizationStats()
        let rows = try await database.client.query(
            "SELECT status, count(*) FROM documents WHERE org_id = \(orgID) GROUP BY status", logger: database.logger)
        for try await (status, count) in rows.decode((String, Int).self) {
            stats.documents.total += count
            switch DocumentStatus(rawValue: status) {
            case .succeeded: stats.documents.succeeded += count
            case .failed: stats.documents.failed += count
            default: stats.documents.inProgress += count
            }
        }
        let counts = try await database.client.query(
            """
            SELECT (SELECT count(*) FROM pages WHERE org_id = \(orgID)), (SELECT count(*) FROM chunks WHERE org_id = \(orgID)),
                   (SELECT count(*) FROM documents WHERE org_id = \(orgID) AND near_duplicate_of IS NOT NULL)
            """, logger: database.logger)
        for try await (pages, chunks, nearDuplicates) in counts.decode((Int, Int, Int).self) {
            stats.pages = pages
            stats.chunks = chunks
            stats.nearDuplicates = nearDuplicates
        }
        return stats
    }
}
