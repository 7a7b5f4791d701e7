import Dispatch
public import Embedding
public import Foundation
import Logging
import Metrics
import NIOCore
import PostgresNIO
public import Storage
import Synchronization

/// Exact cosine top-k over an organisation's chunk vectors, in memory.
///
/// Each organisation's vectors sit in one contiguous row-major matrix (unit vectors, so a dot product is
/// the cosine), loaded from PostgreSQL on first use. Before every search the index compares the
/// organisation's search version with the one it loaded: additions are appended incrementally (by the
/// vectors' sequence numbers); any deletion reloads the organisation, so a deleted chunk never comes back.
/// Searches score on an immutable snapshot, so they run in parallel with each other and with a refresh.
///
/// The boundary is `nearest(to:orgID:limit:allowed:)`: an approximate index (HNSW) for very large
/// organisations can replace the exact scan behind it.
public final class VectorIndex: Sendable {
    final class Snapshot: Sendable {
        let matrix: [Float]
        let keys: [ChunkKey]
        let lastSequence: Int64
        let version: Int64
        let deletions: Int64
        init(matrix: [Float], keys: [ChunkKey], lastSequence: Int64, version: Int64, deletions: Int64) {
            self.matrix = matrix
            self.keys = keys
            self.lastSequence = lastSequence
            self.version = version
            self.deletions = deletions
        }
    }

    struct ChunkKey: Sendable, Hashable {
        let documentID: UUID
        let chunkIndex: Int32
    }

    let database: Database
    let dimension: Int
    let model: String
    /// Upper bound on vectors held for one organisation; past it, loading fails with a clear error
    /// instead of exhausting memory.
    let maxVectorsPerOrganization: Int
    private let snapshots = Mutex<[UUID: Snapshot]>([:])
    private let refreshLock = AsyncSerializer()

    public init(database: Database, dimension: Int, model: String, maxVectorsPerOrganization: Int = 5_000_000) {
        self.database = database
        self.dimension = dimension
        self.model = model
        self.maxVectorsPerOrganization = maxVectorsPerOrganization
    }

    /// Bytes held by all loaded organisations (reported as `intellidocs_vector_index_bytes`).
    public var memoryBytes: Int {
        snapshots.withLock { $0.values.reduce(0) { $0 + $1.matrix.count * 4 + $1.keys.count * 24 } }
    }

    /// The `limit` chunks most similar to `query` (a unit vector), best first; only chunks of documents
    /// in `allowed` when given.
    public func nearest(to query: [Float], orgID: UUID, limit: Int, allowed: Set<UUID>? = nil) async throws -> [ChunkHit] {
        precondition(query.count == dimension)
        let snapshot = try await current(orgID)
        let rows = snapshot.keys.count
        if rows == 0 { return [] }
        var scores: [Float] = []
        snapshot.matrix.withUnsafeBufferPointer { matrix in
            VectorScoring.dotProducts(matrix: matrix, rows: rows, dimension: dimension, query: query, into: &scores)
        }
        // The best `limit` by a bounded heap: a full sort of every row cost more than the scoring itself
        // at 200k chunks. Equal scores keep row order (insertion order), so results are stable.
        let candidates = scores.withUnsafeBufferPointer { scores in
            let better = { (a: Int, b: Int) in scores[a] != scores[b] ? scores[a] > scores[b] : a < b }
            if let allowed {
                return TopK.select((0..<rows).lazy.filter { allowed.contains(snapshot.keys[$0].documentID) }, count: limit, by: better)
            }
            return TopK.select(0..<rows, count: limit, by: better)
        }
        return candidates.map {
            ChunkHit(documentID: snapshot.keys[$0].documentID, chunkIndex: Int(snapshot.keys[$0].chunkIndex), score: Double(scores[$0]))
        }
    }

    /// One scan of the organisation's matrix for several queries (`VectorScanBatcher`): each query gets
    /// its own `limit` and `allowed` documents, as from `nearest(to:orgID:limit:allowed:)`.
    func nearest(to queries: [[Float]], orgID: UUID, limits: [Int], allowed: [Set<UUID>?]) async throws -> [[ChunkHit]] {
        precondition(queries.count == limits.count && queries.count == allowed.count)
        let snapshot = try await current(orgID)
        let rows = snapshot.keys.count
        if rows == 0 { return queries.map { _ in [] } }
        let count = queries.count
        var scores: [Float] = []
        snapshot.matrix.withUnsafeBufferPointer { matrix in
            VectorScoring.dotProducts(matrix: matrix, rows: rows, dimension: dimension, queries: queries, into: &scores)
        }
        return scores.withUnsafeBufferPointer { scores in
            (0..<count).map { column in
                let better = { (a: Int, b: Int) in
                    let x = scores[a * count + column], y = scores[b * count + column]
                    return x != y ? x > y : a < b
                }
                let top: [Int]
                if let filter = allowed[column] {
                    top = TopK.select((0..<rows).lazy.filter { filter.contains(snapshot.keys[$0].documentID) }, count: limits[column], by: better)
                } else {
                    top = TopK.select(0..<rows, count: limits[column], by: better)
                }
                return top.map {
                    ChunkHit(
                        documentID: snapshot.keys[$0].documentID, chunkIndex: Int(snapshot.keys[$0].chunkIndex),
                        score: Double(scores[$0 * count + column]))
                }
            }
        }
    }

    /// The organisation's snapshot, refreshed when PostgreSQL says it changed.
    func current(_ orgID: UUID) async throws -> Snapshot {
        let repository = VectorRepository(logger: database.logger)
        let (version, deletions) = try await repository.versions(orgID: orgID, database: database)
        if let snapshot = snapshots.withLock({ $0[orgID] }), snapshot.version == version, snapshot.deletions == deletions {
            return snapshot
        }
        return try await refreshLock.run {
            // Another caller may have refreshed while this one waited.
            let existing = snapshots.withLock { $0[orgID] }
            if let existing, existing.version == version, existing.deletions == deletions { return existing }
            let base = existing.flatMap { $0.deletions == deletions ? $0 : nil }
            var matrix = base?.matrix ?? []
            var keys = base?.keys ?? []
            var last = base?.lastSequence ?? 0
            let dimension = self.dimension
            let limit = self.maxVectorsPerOrganization
            try await repository.load(orgID: orgID, model: model, afterSequence: last, database: database) { document, chunk, sequence, bytes in
                guard bytes.readableBytes == dimension * 4 else { return }
                guard keys.count < limit else {
                    throw StorageError(
                        code: .query,
                        message: "the organisation has more than \(limit) vectors, the in-memory index's limit; raise it or use an approximate index")
                }
                // The bytes are not aligned for Float: copy them into the matrix's own storage.
                let start = matrix.count
                matrix.append(contentsOf: repeatElement(0, count: dimension))
                matrix.withUnsafeMutableBytes { destination in
                    bytes.withUnsafeReadableBytes { source in
                        UnsafeMutableRawBufferPointer(rebasing: destination[(start * 4)...]).copyMemory(from: source)
                    }
                }
                keys.append(ChunkKey(documentID: document, chunkIndex: chunk))
                last = sequence
            }
            let snapshot = Snapshot(matrix: matrix, keys: keys, lastSequence: last, version: version, deletions: deletions)
            snapshots.withLock { $0[orgID] = snapshot }
            Gauge(label: "intellidocs_vector_index_bytes").record(memoryBytes)
            return snapshot
        }
    }
}

/// Runs async closures one at a time (refreshes of the vector index).
actor AsyncSerializer {
    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await body()
    }
}

/// The semantic leg: embeds the query with the same model as the chunks and asks the vector index.
public struct SemanticLeg: SemanticRetrieving {
    let embedder: SentenceEmbedder
    let index: VectorIndex
    let database: Database
    let batcher: QueryEmbeddingBatcher
    let scans: VectorScanBatcher

    public init(embedder: SentenceEmbedder, index: VectorIndex, database: Database) {
        self.embedder = embedder
        self.index = index
        self.database = database
        self.batcher = QueryEmbeddingBatcher(embedder: embedder)
        self.scans = VectorScanBatcher(index: index)
    }

    public func retrieve(_ query: String, orgID: UUID, filters: SearchFilters, limit: Int) async throws -> [ChunkHit] {
        let vector = await batcher.embed(query)
        guard vector.count == index.dimension else {
            throw SearchError(field: "query", message: "the query could not be embedded; try a shorter or plainer query")
        }
        let allowed = filters == SearchFilters() ? nil : try await SearchFilterQuery.allowedDocuments(orgID: orgID, filters: filters, database: database)
        return try await scans.nearest(to: vector, orgID: orgID, limit: limit, allowed: allowed)
    }

}
