public import Foundation
public import Logging
public import PostgresNIO

/// Chunk embeddings (0003_search.sql): float32 little-endian bytes per chunk.
public struct VectorRepository: Sendable {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }

    /// Replaces the vectors of `documentIDs` with `rows` (document, chunk index) whose vectors are packed
    /// one after another in `packed` (`dimension` floats each). One bytea travels for the whole batch and
    /// is cut in SQL, instead of one bind per vector.
    public func replace(
        documentIDs: [UUID], rows: (documents: [UUID], chunkIndexes: [Int32]), packed: [UInt8], model: String, dimension: Int,
        orgID: UUID, on connection: PostgresConnection
    ) async throws {
        try await connection.query(
            "DELETE FROM chunk_vectors WHERE org_id IS NOT DISTINCT FROM \(orgID) AND document_id = ANY(\(documentIDs)::uuid[])", logger: logger)
        if rows.documents.isEmpty { return }
        precondition(packed.count == rows.documents.count * dimension * 4)
        let width = Int32(dimension * 4)
        let blob = ByteBuffer(bytes: packed)
        try await connection.query(
            """
            INSERT INTO chunk_vectors (document_id, chunk_index, org_id, model, dimension, embedding)
            SELECT r.document_id, r.chunk_index, \(orgID), \(model), \(Int32(dimension)),
                   substring(\(blob)::bytea FROM ((r.ordinality - 1) * \(width) + 1)::int FOR \(width))
            FROM unnest(\(rows.documents)::uuid[], \(rows.chunkIndexes)::int[]) WITH ORDINALITY AS r(document_id, chunk_index, ordinality)
            ORDER BY r.ordinality
            """, logger: logger)
    }

    /// Vectors added after `afterSequence`, in order (for incremental loading of an in-memory index).
    public func load(
        orgID: UUID, model: String, afterSequence: Int64, database: Database,
        _ body: (UUID, Int32, Int64, ByteBuffer) throws -> Void
    ) async throws {
        let rows = try await database.client.query(
            """
            SELECT document_id, chunk_index, seq, embedding FROM chunk_vectors
            WHERE org_id = \(orgID) AND model = \(model) AND seq > \(afterSequence)
            ORDER BY seq
            """, logger: logger)
        for try await (document, chunk, seq, bytes) in rows.decode((UUID, Int32, Int64, ByteBuffer).self) {
            try body(document, chunk, seq, bytes)
        }
    }

    /// The sequence numbers of the organisation's vectors (any model) that exist now: what a loaded index
    /// compares its rows with after a deletion, instead of loading every vector again.
    public func liveSequences(orgID: UUID, database: Database) async throws -> Set<Int64> {
        let rows = try await database.client.query("SELECT seq FROM chunk_vectors WHERE org_id = \(orgID)", logger: logger)
        var live = Set<Int64>()
        for try await seq in rows.decode(Int64.self) { live.insert(seq) }
        return live
    }

    /// The organisation's search version and deletion count (bumped by the postings' triggers).
    public func versions(orgID: UUID, database: Database) async throws -> (version: Int64, deletions: Int64) {
        let rows = try await database.client.query(
            "SELECT version, deletions FROM search_stats WHERE org_id = \(orgID)", logger: logger)
        for try await (version, deletions) in rows.decode((Int64, Int64).self) { return (version, deletions) }
        return (0, 0)
    }
}
