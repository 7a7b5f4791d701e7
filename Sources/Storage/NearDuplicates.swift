public import Foundation
public import Logging
public import PostgresNIO

/// A document's place in the order that decides which of two near duplicates is the original: the
/// older one (by creation time, then id).
public struct DocumentAge: Sendable, Equatable {
    public let id: UUID
    public let createdAt: Date
    public let nearDuplicateOf: UUID?

    public init(id: UUID, createdAt: Date, nearDuplicateOf: UUID?) {
        self.id = id
        self.createdAt = createdAt
        self.nearDuplicateOf = nearDuplicateOf
    }

    public func isOlder(than other: DocumentAge) -> Bool {
        createdAt != other.createdAt ? createdAt < other.createdAt : id.uuidString < other.id.uuidString
    }
}

/// MinHash LSH buckets per organisation and the `near_duplicate_of` mark on documents (0006).
public struct NearDuplicateRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    /// Serialises near-duplicate decisions within one organisation until the end of the transaction, so
    /// two near duplicates written by concurrent batches cannot both miss each other. Other organisations
    /// are not held up.
    public func lockOrganization(_ orgID: UUID, on connection: PostgresConnection) async throws {
        try await connection.query(
            "SELECT pg_advisory_xact_lock(hashtextextended('near-duplicates:' || \(orgID)::text, 0))", logger: logger)
    }

    /// For each document, the organisation's other documents sharing at least one band key with it
    /// (band = position in its key list).
    ///
    /// Each key is one lookup in `document_lsh`'s primary key: the `OFFSET 0` keeps the lateral subquery
    /// from being flattened into a join. Flattened, the planner went by the statistics, which know nothing
    /// of an organisation created since the last ANALYZE; it then read all of the organisation's rows and
    /// compared each with every key (54 ms a batch on average in a SciFact import, growing with the import).
    public func candidates(
        for documents: [(documentID: UUID, bandKeys: [Int64])], orgID: UUID, on connection: PostgresConnection
    ) async throws -> [UUID: [DocumentAge]] {
        let (ids, bands, buckets) = Self.columns(documents)
        if ids.isEmpty { return [:] }
        let rows = try await connection.query(
            """
            SELECT DISTINCT k.document_id, d.id, d.created_at, d.near_duplicate_of
            FROM unnest(\(ids)::uuid[], \(bands)::int2[], \(buckets)::int8[]) AS k(document_id, band, bucket)
            CROSS JOIN LATERAL (
                SELECT l.document_id FROM document_lsh l
                WHERE l.org_id = \(orgID) AND l.band = k.band AND l.bucket = k.bucket AND l.document_id <> k.document_id
                OFFSET 0
            ) AS l
            JOIN documents d ON d.id = l.document_id
            """, logger: logger)
        var found: [UUID: [DocumentAge]] = [:]
        for try await (document, candidate, created, nearDuplicateOf) in rows.decode((UUID, UUID, Date, UUID?).self) {
            found[document, default: []].append(DocumentAge(id: candidate, createdAt: created, nearDuplicateOf: nearDuplicateOf))
        }
        return found
    }

    /// When the documents were created and what they are near duplicates of now.
    public func ages(of documentIDs: [UUID], orgID: UUID, on connection: PostgresConnection) async throws -> [UUID: DocumentAge] {
        if documentIDs.isEmpty { return [:] }
        let rows = try await connection.query(
            """
            SELECT id, created_at, near_duplicate_of FROM documents
            WHERE id = ANY(\(documentIDs)::uuid[]) AND org_id IS NOT DISTINCT FROM \(orgID)
            """, logger: logger)
        var ages: [UUID: DocumentAge] = [:]
        for try await (id, created, nearDuplicateOf) in rows.decode((UUID, Date, UUID?).self) {
            ages[id] = DocumentAge(id: id, createdAt: created, nearDuplicateOf: nearDuplicateOf)
        }
        return ages
    }

    /// Replaces the documents' band keys (an empty list removes them: a text without words has none).
    public func replaceBandKeys(_ documents: [(documentID: UUID, bandKeys: [Int64])], orgID: UUID, on connection: PostgresConnection) async throws {
        if documents.isEmpty { return }
        try await connection.query(
            """
            DELETE FROM document_lsh
            WHERE document_id = ANY(\(documents.map(\.documentID))::uuid[]) AND org_id IS NOT DISTINCT FROM \(orgID)
            """, logger: logger)
        let (ids, bands, buckets) = Self.columns(documents)
        if ids.isEmpty { return }
        try await connection.query(
            """
            INSERT INTO document_lsh (org_id, band, bucket, document_id)
            SELECT \(orgID), k.band, k.bucket, k.document_id
            FROM unnest(\(ids)::uuid[], \(bands)::int2[], \(buckets)::int8[]) AS k(document_id, band, bucket)
            ORDER BY 2, 3, 4
            ON CONFLICT DO NOTHING
            """, logger: logger)
    }

    /// Sets each document's near-duplicate mark: the original it duplicates and how similar (nil clears it).
    public func mark(_ marks: [(documentID: UUID, original: UUID?, similarity: Double?)], orgID: UUID, on connection: PostgresConnection) async throws {
        if marks.isEmpty { return }
        try await DocumentRepository.lockInOrder(marks.map(\.documentID), orgID: orgID, on: connection, logger: logger)
        // json_to_recordset carries the NULLs (cleared marks) that array binds cannot.
        struct Row: Encodable { let id: UUID, original: UUID?, similarity: Double? }
        let json = String(decoding: try JSONEncoder().encode(marks.map { Row(id: $0.documentID, original: $0.original, similarity: $0.similarity) }), as: UTF8.self)
        try await connection.query(
            """
            UPDATE documents d SET near_duplicate_of = m.original, near_duplicate_similarity = m.similarity
            FROM json_to_recordset(\(json)::json) AS m(id uuid, original uuid, similarity real)
            WHERE d.id = m.id AND d.org_id IS NOT DISTINCT FROM \(orgID)
            """, logger: logger)
    }

    /// The pages' text of each document, pages in order, joined by blank lines.
    public func texts(of documentIDs: [UUID], orgID: UUID, on connection: PostgresConnection) async throws -> [UUID: String] {
        if documentIDs.isEmpty { return [:] }
        let rows = try await connection.query(
            """
            SELECT document_id, string_agg(text, E'\\n\\n' ORDER BY page_number) FROM pages
            WHERE document_id = ANY(\(documentIDs)::uuid[]) AND org_id IS NOT DISTINCT FROM \(orgID)
            GROUP BY document_id
            """, logger: logger)
        var texts: [UUID: String] = [:]
        for try await (id, text) in rows.decode((UUID, String).self) { texts[id] = text }
        return texts
    }

    /// How many of the organisation's documents are near duplicates of another.
    public func count(orgID: UUID, database: Database) async throws -> Int {
        let rows = try await database.client.query(
            "SELECT count(*) FROM documents WHERE org_id = \(orgID) AND near_duplicate_of IS NOT NULL", logger: logger)
        for try await count in rows.decode(Int.self) { return count }
        return 0
    }

    /// One (document, band, bucket) row per band key, as three arrays to bind.
    private static func columns(_ documents: [(documentID: UUID, bandKeys: [Int64])]) -> ([UUID], [Int16], [Int64]) {
        var ids: [UUID] = [], bands: [Int16] = [], buckets: [Int64] = []
        for document in documents {
            for (band, bucket) in document.bandKeys.enumerated() {
                ids.append(document.documentID)
                bands.append(Int16(band))
                buckets.append(bucket)
            }
        }
        return (ids, bands, buckets)
    }
}
