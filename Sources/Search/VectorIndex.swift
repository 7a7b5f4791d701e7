import Dispatch
public import Embedding
public import Foundation
import Logging
import Metrics
import NIOCore
import PostgresNIO
public import Storage
import Synchronization

/// Cosine top-k over an organisation's chunk vectors, in memory: an exact scan, or an HNSW graph for
/// large organisations.
///
/// Each organisation's vectors sit in one contiguous row-major matrix (unit vectors, so a dot product is
/// the cosine), loaded from PostgreSQL on first use. Before every search the index compares the
/// organisation's search version with the one it loaded: additions are appended incrementally (by the
/// vectors' sequence numbers); any deletion reloads the organisation, so a deleted chunk never comes back.
/// Searches score on an immutable snapshot, so they run in parallel with each other and with a refresh.
///
/// Organisations with more vectors than `ApproximateSearchOptions.threshold` get an HNSW graph
/// (`HNSWGraph`), built in the background over the snapshot's matrix; until it is ready the exact scan
/// serves. Rows appended after the graph was built are scanned exactly (a short tail) until a background
/// build inserts them. A deletion in an organisation with a graph does not reload it: the rows whose
/// vectors are gone (by sequence number) become tombstones that no search returns, and the graph stays;
/// past 10% tombstones the organisation is reloaded and a new graph built (a graph is only used with the
/// rows it was built on). Filters that admit few rows are scanned exactly over those rows.
public final class VectorIndex: Sendable {
    final class Snapshot: Sendable {
        let matrix: [Float]
        let keys: [ChunkKey]
        /// Each row's sequence number (`chunk_vectors.seq`).
        let sequences: [Int64]
        /// Rows whose vectors were deleted since the load (nil: none); only snapshots with a graph have them.
        let deleted: [Bool]?
        let lastSequence: Int64
        let version: Int64
        let deletions: Int64
        /// Snapshots that share a lineage extend the same load (appends only): their rows agree.
        let lineage: Int
        /// A graph over the first `approximate.graph.count` rows, when built.
        let approximate: ApproximateIndex?
        init(
            matrix: [Float], keys: [ChunkKey], sequences: [Int64], deleted: [Bool]?, lastSequence: Int64, version: Int64, deletions: Int64,
            lineage: Int, approximate: ApproximateIndex?
        ) {
            self.matrix = matrix
            self.keys = keys
            self.sequences = sequences
            self.deleted = deleted
            self.lastSequence = lastSequence
            self.version = version
            self.deletions = deletions
            self.lineage = lineage
            self.approximate = approximate
        }

        func replacing(approximate: ApproximateIndex) -> Snapshot {
            Snapshot(
                matrix: matrix, keys: keys, sequences: sequences, deleted: deleted, lastSequence: lastSequence, version: version,
                deletions: deletions, lineage: lineage, approximate: approximate)
        }

        /// Whether the row's vector still exists.
        @inline(__always) func isLive(_ row: Int) -> Bool { deleted.map { !$0[row] } ?? true }

        /// Which rows a search may return: live ones of the `allowed` documents (any, when nil); nil when
        /// every row qualifies.
        func admits(_ allowed: Set<UUID>?) -> ((Int) -> Bool)? {
            if let allowed { return { self.isLive($0) && allowed.contains(self.keys[$0].documentID) } }
            if deleted != nil { return { self.isLive($0) } }
            return nil
        }

        var bytes: Int { matrix.count * 4 + keys.count * 32 + (deleted?.count ?? 0) + (approximate?.bytes ?? 0) }
    }

    /// The graph over a snapshot's first rows, and those rows by document (for filters).
    struct ApproximateIndex: Sendable {
        let graph: HNSWGraph
        let rowsByDocument: [UUID: [Int32]]
        var bytes: Int { graph.bytes + graph.count * 4 + rowsByDocument.count * 64 }
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
    let approximateOptions: ApproximateSearchOptions
    private let snapshots = Mutex<[UUID: Snapshot]>([:])
    private let refreshLock = AsyncSerializer()
    private let lineages = Atomic<Int>(0)
    /// Graph builds under way, one per organisation at most.
    private let builds = Mutex<[UUID: Task<Void, Never>]>([:])
    /// Set by `stopGraphBuilds`: builds end at their next batch and no new one starts.
    private let stopping = Atomic<Bool>(false)

    public init(
        database: Database, dimension: Int, model: String, maxVectorsPerOrganization: Int = 5_000_000,
        approximate: ApproximateSearchOptions = ApproximateSearchOptions()
    ) {
        self.database = database
        self.dimension = dimension
        self.model = model
        self.maxVectorsPerOrganization = maxVectorsPerOrganization
        self.approximateOptions = approximate
    }

    /// Bytes held by all loaded organisations, graphs included (reported as `intellidocs_vector_index_bytes`).
    public var memoryBytes: Int {
        snapshots.withLock { $0.values.reduce(0) { $0 + $1.bytes } }
    }

    /// Loads the organisation and, when it gets a graph, waits until the graph is built (a searcher about
    /// to be measured; searches never wait for it).
    public func warm(_ orgID: UUID) async throws {
        let snapshot = try await current(orgID)
        await scheduleGraph(orgID, for: snapshot)?.value
    }

    /// Rows of the organisation's current snapshot that were deleted and are skipped (tombstones).
    func tombstones(_ orgID: UUID) -> Int {
        snapshots.withLock { $0[orgID]?.deleted?.filter { $0 }.count ?? 0 }
    }

    /// Rows of the organisation's current snapshot that are in its graph (0 when it has none).
    func graphRows(_ orgID: UUID) -> Int {
        snapshots.withLock { $0[orgID]?.approximate?.graph.count ?? 0 }
    }

    /// The `limit` chunks most similar to `query` (a unit vector), best first; only chunks of documents
    /// in `allowed` when given.
    public func nearest(to query: [Float], orgID: UUID, limit: Int, allowed: Set<UUID>? = nil) async throws -> [ChunkHit] {
        precondition(query.count == dimension)
        let snapshot = try await current(orgID)
        let rows = snapshot.keys.count
        if rows == 0 { return [] }
        if let approximate = snapshot.approximate {
            return approximateNearest(snapshot, approximate, query: query, limit: limit, allowed: allowed)
        }
        var scores: [Float] = []
        snapshot.matrix.withUnsafeBufferPointer { matrix in
            VectorScoring.dotProducts(matrix: matrix, rows: rows, dimension: dimension, query: query, into: &scores)
        }
        // The best `limit` by a bounded heap: a full sort of every row cost more than the scoring itself
        // at 200k chunks. Equal scores keep row order (insertion order), so results are stable.
        let candidates = scores.withUnsafeBufferPointer { scores in
            TopK.largest(scores: scores.baseAddress!, rows: rows, count: limit, include: snapshot.admits(allowed))
        }
        return candidates.map {
            ChunkHit(documentID: snapshot.keys[$0].documentID, chunkIndex: Int(snapshot.keys[$0].chunkIndex), score: Double(scores[$0]))
        }
    }

    /// One scan of the organisation's matrix for several queries (`SemanticBatcher`): each query gets
    /// its own `limit` and `allowed` documents, as from `nearest(to:orgID:limit:allowed:)`.
    func nearest(to queries: [[Float]], orgID: UUID, limits: [Int], allowed: [Set<UUID>?], versions: IndexVersions? = nil) async throws -> [[ChunkHit]] {
        precondition(queries.count == limits.count && queries.count == allowed.count)
        let snapshot = try await current(orgID, versions: versions)
        let rows = snapshot.keys.count
        if rows == 0 { return queries.map { _ in [] } }
        if let approximate = snapshot.approximate {
            // A graph search reads a few thousand rows: nothing to share between the queries.
            return queries.indices.map {
                approximateNearest(snapshot, approximate, query: queries[$0], limit: limits[$0], allowed: allowed[$0])
            }
        }
        let count = queries.count
        var scores: [Float] = []
        snapshot.matrix.withUnsafeBufferPointer { matrix in
            VectorScoring.dotProducts(matrix: matrix, rows: rows, dimension: dimension, queries: queries, into: &scores)
        }
        // One query's scores are every `count`-th value: gathered into one contiguous column each first,
        // so the selection below reads memory in order (strided, the selection took 1.8% of the CPU of a
        // SciFact hybrid benchmark, 1.3% after).
        var columns = [Float](repeating: 0, count: rows * count)
        columns.withUnsafeMutableBufferPointer { columns in
            scores.withUnsafeBufferPointer { scores in
                for row in 0..<rows {
                    for column in 0..<count { columns[column * rows + row] = scores[row * count + column] }
                }
            }
        }
        return columns.withUnsafeBufferPointer { columns in
            (0..<count).map { column in
                let top = TopK.largest(
                    scores: columns.baseAddress! + column * rows, rows: rows, count: limits[column],
                    include: snapshot.admits(allowed[column]))
                return top.map {
                    ChunkHit(
                        documentID: snapshot.keys[$0].documentID, chunkIndex: Int(snapshot.keys[$0].chunkIndex),
                        score: Double(columns[column * rows + $0]))
                }
            }
        }
    }

    /// The organisation's snapshot, refreshed when PostgreSQL says it changed (`versions`, when the search
    /// already read them).
    func current(_ orgID: UUID, versions: IndexVersions? = nil) async throws -> Snapshot {
        let repository = VectorRepository(logger: database.logger)
        let (version, deletions) =
            if let versions { (versions.version, versions.deletions) } else { try await repository.versions(orgID: orgID, database: database) }
        if let snapshot = snapshots.withLock({ $0[orgID] }), snapshot.version == version, snapshot.deletions == deletions {
            scheduleGraph(orgID, for: snapshot)
            return snapshot
        }
        let snapshot = try await refreshLock.run {
            // Another caller may have refreshed while this one waited.
            let existing = snapshots.withLock { $0[orgID] }
            if let existing, existing.version == version, existing.deletions == deletions { return existing }
            var base = existing.flatMap { $0.deletions == deletions ? $0 : nil }
            var deleted = base?.deleted
            if base == nil, let existing, existing.approximate != nil {
                // Something was deleted in an organisation with a graph: mark the rows whose vectors are gone
                // instead of reloading every vector and rebuilding the graph (seconds of both cores at 200k
                // rows, for each delete); reload only past `maxTombstoneFraction` (a tenth) of the rows.
                let live = try await repository.liveSequences(orgID: orgID, database: database)
                var marks = existing.deleted ?? [Bool](repeating: false, count: existing.keys.count)
                var tombstones = 0
                for row in marks.indices {
                    if !marks[row] && !live.contains(existing.sequences[row]) { marks[row] = true }
                    if marks[row] { tombstones += 1 }
                }
                if Double(tombstones) <= approximateOptions.maxTombstoneFraction * Double(existing.keys.count) {
                    base = existing
                    deleted = tombstones > 0 ? marks : nil
                }
            }
            var matrix = base?.matrix ?? []
            var keys = base?.keys ?? []
            var sequences = base?.sequences ?? []
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
                sequences.append(sequence)
                deleted?.append(false)
                last = sequence
            }
            let lineage = base?.lineage ?? lineages.add(1, ordering: .relaxed).newValue
            let snapshot = snapshots.withLock { snapshots in
                // A graph published while this refresh loaded covers rows this snapshot also has.
                var approximate = base?.approximate
                if let latest = snapshots[orgID], latest.lineage == lineage, let built = latest.approximate,
                    built.graph.count > approximate?.graph.count ?? -1
                {
                    approximate = built
                }
                let snapshot = Snapshot(
                    matrix: matrix, keys: keys, sequences: sequences, deleted: deleted, lastSequence: last, version: version,
                    deletions: deletions, lineage: lineage, approximate: approximate)
                snapshots[orgID] = snapshot
                return snapshot
            }
            Gauge(label: "intellidocs_vector_index_bytes").record(memoryBytes)
            return snapshot
        }
        scheduleGraph(orgID, for: snapshot)
        return snapshot
    }

    // MARK: The approximate path

    /// Whether the snapshot should get a graph, or its graph should take in the rows appended since.
    private func needsGraph(_ snapshot: Snapshot) -> Bool {
        let rows = snapshot.keys.count
        guard rows > approximateOptions.threshold else { return false }
        guard let approximate = snapshot.approximate else { return true }
        return rows - approximate.graph.count > approximateOptions.maxExactTail
    }

    /// Starts building (or extending) the organisation's graph in the background when the snapshot needs
    /// it; the build under way, if any, otherwise.
    @discardableResult
    private func scheduleGraph(_ orgID: UUID, for snapshot: Snapshot) -> Task<Void, Never>? {
        guard needsGraph(snapshot) else { return nil }
        return builds.withLock { running in
            if let task = running[orgID] { return task }
            // Read under the lock `stopGraphBuilds` sets it under, so it waits for every build that starts.
            if stopping.load(ordering: .relaxed) { return nil }
            let task = Task.detached(priority: .utility) { [self] in
                await buildGraph(orgID, from: snapshot)
                builds.withLock { _ = $0.removeValue(forKey: orgID) }
                // Rows appended (or a reload) during the build: the latest snapshot may need more.
                if let latest = snapshots.withLock({ $0[orgID] }) { scheduleGraph(orgID, for: latest) }
            }
            running[orgID] = task
            return task
        }
    }

    /// Ends the graph builds under way at their next batch (a batch is at most 512 rows, well under a
    /// second), waits for them, and starts no more; searches go on, scanning exactly what has no graph.
    /// A process calls it before it exits: a build still running then crashed it inside OpenBLAS.
    public func stopGraphBuilds() async {
        let running = builds.withLock { running in
            stopping.store(true, ordering: .relaxed)
            return Array(running.values)
        }
        for task in running { await task.value }
    }

    /// Inserts the snapshot's rows that its graph lacks (all of them when it has none) into a copy of the
    /// graph, on a dispatch queue (the build keeps its threads busy for a while: not the cooperative pool's),
    /// then publishes it if the organisation's snapshot still has those rows.
    private func buildGraph(_ orgID: UUID, from snapshot: Snapshot) async {
        let clock = ContinuousClock()
        let started = clock.now
        let previous = snapshot.approximate
        let dimension = dimension, options = approximateOptions
        let approximate = await withCheckedContinuation { (continuation: CheckedContinuation<ApproximateIndex, Never>) in
            DispatchQueue.global(qos: .utility).async {
                var graph = previous?.graph ?? HNSWGraph(dimension: dimension, parameters: options.graphParameters)
                let from = graph.count, rows = snapshot.keys.count
                snapshot.matrix.withUnsafeBufferPointer {
                    graph.insert(upTo: rows, matrix: $0, lanes: options.buildThreads) { self.stopping.load(ordering: .relaxed) }
                }
                var rowsByDocument = previous?.rowsByDocument ?? [:]
                for row in from..<graph.count { rowsByDocument[snapshot.keys[row].documentID, default: []].append(Int32(row)) }
                continuation.resume(returning: ApproximateIndex(graph: graph, rowsByDocument: rowsByDocument))
            }
        }
        let published = snapshots.withLock { snapshots in
            guard let current = snapshots[orgID], current.lineage == snapshot.lineage, current.keys.count >= approximate.graph.count,
                approximate.graph.count > current.approximate?.graph.count ?? -1
            else { return false }
            snapshots[orgID] = current.replacing(approximate: approximate)
            return true
        }
        let seconds = (clock.now - started) / .seconds(1)
        database.logger.info(
            published ? "built the vector graph" : "built a vector graph no longer needed (the organisation was reloaded)",
            metadata: [
                "org_id": "\(orgID)", "rows": "\(approximate.graph.count)", "inserted": "\(approximate.graph.count - (previous?.graph.count ?? 0))",
                "seconds": "\(String(format: "%.1f", seconds))",
            ])
        Metrics.Timer(label: "intellidocs_vector_graph_build_seconds").recordSeconds(seconds)
        Gauge(label: "intellidocs_vector_index_bytes").record(memoryBytes)
    }

    /// The `limit` best rows by the graph, plus the rows appended since it was built (scanned exactly).
    /// A filter admitting at most a quarter of the graph's rows is scanned exactly over those rows; a
    /// filtered graph search that finds fewer than `limit` of the admitted rows falls back to the same scan,
    /// so a filter never hides rows that exist.
    private func approximateNearest(
        _ snapshot: Snapshot, _ approximate: ApproximateIndex, query: [Float], limit: Int, allowed: Set<UUID>?
    ) -> [ChunkHit] {
        let rows = snapshot.keys.count, graph = approximate.graph, graphed = graph.count
        let found: [HNSWGraph.Scored] = snapshot.matrix.withUnsafeBufferPointer { matrix in
            query.withUnsafeBufferPointer { query in
                let vector = query.baseAddress!
                func exact(_ candidates: some Sequence<Int32>) -> [HNSWGraph.Scored] {
                    let scored = candidates.compactMap { row -> HNSWGraph.Scored? in
                        guard snapshot.isLive(Int(row)) else { return nil }
                        return HNSWGraph.Scored(score: VectorScoring.dot(vector, matrix.baseAddress! + Int(row) * dimension, dimension: dimension), node: row)
                    }
                    return TopK.select(scored, count: limit)
                }
                var found: [HNSWGraph.Scored]
                if let allowed {
                    let admitted = allowed.reduce(0) { $0 + (approximate.rowsByDocument[$1]?.count ?? 0) }
                    let admittedRows = { allowed.lazy.flatMap { approximate.rowsByDocument[$0] ?? [] } }
                    if admitted * 4 <= graphed {
                        found = exact(admittedRows())
                    } else {
                        found = graph.search(vector, limit: limit, matrix: matrix) {
                            snapshot.isLive(Int($0)) && allowed.contains(snapshot.keys[Int($0)].documentID)
                        }
                        if found.count < min(limit, admitted) { found = exact(admittedRows()) }
                    }
                } else {
                    found = snapshot.deleted == nil
                        ? graph.search(vector, limit: limit, matrix: matrix)
                        : graph.search(vector, limit: limit, matrix: matrix) { snapshot.isLive(Int($0)) }
                    if found.count < min(limit, graphed) { found = exact(0..<Int32(graphed)) }
                }
                let tail = (graphed..<rows).lazy.filter { allowed?.contains(snapshot.keys[$0].documentID) ?? true }.map { Int32($0) }
                found += exact(tail)
                return found
            }
        }
        return TopK.select(found, count: limit).map {
            let key = snapshot.keys[Int($0.node)]
            return ChunkHit(documentID: key.documentID, chunkIndex: Int(key.chunkIndex), score: Double($0.score))
        }
    }
}

/// When the vector index searches an organisation through an HNSW graph instead of scanning every row,
/// and the graph's parameters.
public struct ApproximateSearchOptions: Sendable {
    /// Organisations with more vectors than this get a graph (`INTELLIDOCS_ANN_THRESHOLD`); below it the
    /// exact scan is exact and fast (about 10 ms for 50,000 vectors of 384 dimensions).
    public var threshold: Int
    /// Links per node (level 0 keeps twice as many).
    public var m = 16
    /// Candidates considered when linking a new node.
    public var efConstruction = 100
    /// Candidates considered per search; at least the number of results asked for.
    public var efSearch = 96
    /// Rows appended since the graph was built that are scanned exactly before a background build
    /// inserts them into the graph.
    public var maxExactTail = 4_096
    /// Threads a graph build uses.
    public var buildThreads = ProcessInfo.processInfo.activeProcessorCount
    /// Deleted rows kept as tombstones (skipped by every search) before the organisation is reloaded and
    /// its graph rebuilt, as a fraction of its rows.
    public var maxTombstoneFraction = 0.1

    public init(threshold: Int = 50_000) {
        self.threshold = threshold
    }

    var graphParameters: HNSWGraph.Parameters {
        HNSWGraph.Parameters(m: m, efConstruction: efConstruction, efSearch: efSearch)
    }
}

/// Runs async closures one at a time, in the order they arrive (refreshes of the vector index).
///
/// An actor alone does not do this: it runs one method at a time only between suspension points, so while
/// one refresh awaited PostgreSQL the next one started, and a burst of searches after an index change
/// loaded the same vectors once per search (on a cold 200k-row organisation, that many full loads at
/// once). Callers wait here instead; the one finishing hands the turn to the first waiter.
actor AsyncSerializer {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if busy {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            busy = true
        }
        defer {
            if waiters.isEmpty {
                busy = false
            } else {
                waiters.removeFirst().resume()
            }
        }
        return try await body()
    }
}

/// The semantic leg: embeds the query with the same model as the chunks and asks the vector index.
public struct SemanticLeg: SemanticRetrieving {
    let embedder: SentenceEmbedder
    let index: VectorIndex
    let database: Database
    let batcher: SemanticBatcher

    public init(embedder: SentenceEmbedder, index: VectorIndex, database: Database) {
        self.embedder = embedder
        self.index = index
        self.database = database
        self.batcher = SemanticBatcher(embedder: embedder, index: index)
    }

    public func retrieve(_ query: String, orgID: UUID, filters: SearchFilters, limit: Int, context: QueryContext?) async throws -> [ChunkHit] {
        let allowed: Set<UUID>?
        if let context {
            allowed = context.allowed
        } else {
            allowed = filters == SearchFilters() ? nil : try await SearchFilterQuery.allowedDocuments(orgID: orgID, filters: filters, database: database)
        }
        return try await batcher.nearest(to: query, orgID: orgID, limit: limit, allowed: allowed, versions: context?.versions)
    }

    public func warmUp(orgID: UUID) async throws {
        try await index.warm(orgID)
    }

    public func shutDown() async {
        await index.stopGraphBuilds()
    }

}
