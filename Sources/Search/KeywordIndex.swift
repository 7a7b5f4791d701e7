public import Foundation
import Logging
import Metrics
import PostgresNIO
public import Storage
import Synchronization

/// BM25 over an organisation's postings held in memory: the same postings, statistics and formula as the
/// SQL retriever (`KeywordRetriever`), scored without a round of aggregation in PostgreSQL per query.
///
/// Postings are loaded once per organisation into compressed-row arrays (term → chunk rows and term
/// frequencies). A snapshot is used only while the organisation's search version (bumped by every change
/// to its postings, 0003_search.sql) is the one it was loaded at; a stale snapshot is never served: the
/// query goes to SQL and a reload starts in the background. So results are as fresh as SQL's, and a
/// steady corpus is searched from memory. Organisations with more postings than the limit stay on SQL.
///
/// Large organisations (at least `staleServingMinimumPostings`) are the exception: there SQL's BM25 takes
/// seconds per query under load (measured at 198k chunks: 8.9 queries/s, p50 1.7 s, after one delete),
/// and a reload takes seconds too. While their reload runs, the previous snapshot keeps serving: documents
/// deleted since are left out (never shown again), chunks indexed since are found once the reload lands,
/// and the statistics are the previous snapshot's until then. Their reloads start at most every
/// `minimumReloadInterval`, so a bulk import does not keep a core busy reloading.
public final class KeywordIndex: Sendable {
    final class Snapshot: Sendable {
        let terms: [String: Int32]
        /// Postings of term t are `start[t]..<start[t + 1]`.
        let start: [Int32]
        let chunkRow: [Int32]
        let termFrequency: [UInt16]
        let chunks: [ChunkKeyValue]
        let chunkLength: [Int32]
        /// Each row's place in (document id, chunk index) order: SQL's tie-break, precomputed.
        let tieOrder: [Int32]
        let averageLength: Double
        let version: Int64
        let deletions: Int64

        init(terms: [String: Int32], start: [Int32], chunkRow: [Int32], termFrequency: [UInt16], chunks: [ChunkKeyValue],
             chunkLength: [Int32], version: Int64, deletions: Int64) {
            self.terms = terms
            self.start = start
            self.chunkRow = chunkRow
            self.termFrequency = termFrequency
            self.chunks = chunks
            self.chunkLength = chunkLength
            let total = chunkLength.reduce(0) { $0 + Int($1) }
            self.averageLength = max(Double(total) / Double(max(chunks.count, 1)), 1)
            var order = [Int32](repeating: 0, count: chunks.count)
            let sorted = chunks.indices.sorted {
                let a = chunks[$0], b = chunks[$1]
                return (a.documentID, a.chunkIndex) < (b.documentID, b.chunkIndex)
            }
            for (position, row) in sorted.enumerated() { order[row] = Int32(position) }
            self.tieOrder = order
            self.version = version
            self.deletions = deletions
        }

        var bytes: Int { chunkRow.count * 6 + start.count * 4 + chunks.count * 24 + terms.count * 48 }
    }

    struct ChunkKeyValue: Sendable, Hashable {
        let documentID: UUID
        let chunkIndex: Int32
    }

    let database: Database
    let maxPostingsPerOrganization: Int
    let staleServingMinimumPostings: Int
    let minimumReloadInterval: Duration
    private let snapshots = Mutex<[UUID: Snapshot]>([:])
    private let loading = Mutex<Set<UUID>>([])
    /// When each organisation's last load finished.
    private let loaded = Mutex<[UUID: ContinuousClock.Instant]>([:])
    /// Documents of a stale snapshot deleted since, per organisation, for the deletion count they were read at.
    private let removed = Mutex<[UUID: (snapshot: ObjectIdentifier, deletions: Int64, documents: Set<UUID>)]>([:])

    public init(
        database: Database, maxPostingsPerOrganization: Int = 50_000_000, staleServingMinimumPostings: Int = 1_000_000,
        minimumReloadInterval: Duration = .seconds(30)
    ) {
        self.database = database
        self.maxPostingsPerOrganization = maxPostingsPerOrganization
        self.staleServingMinimumPostings = staleServingMinimumPostings
        self.minimumReloadInterval = minimumReloadInterval
    }

    /// What a query may search: the fresh snapshot; or, for a large organisation whose snapshot is stale,
    /// that snapshot with the documents deleted since (to leave out); nil when the query should go to SQL.
    func usable(_ orgID: UUID, versions: IndexVersions? = nil) async throws -> (snapshot: Snapshot, excluded: Set<UUID>)? {
        let (version, deletions) =
            if let versions { (versions.version, versions.deletions) } else {
                try await VectorRepository(logger: database.logger).versions(orgID: orgID, database: database)
            }
        let current = snapshots.withLock { $0[orgID] }
        if let current, current.version == version, current.deletions == deletions { return (current, []) }
        startLoading(orgID)
        guard let current, current.chunkRow.count >= staleServingMinimumPostings else { return nil }
        if current.deletions == deletions { return (current, []) }
        if let known = removed.withLock({ $0[orgID] }), known.snapshot == ObjectIdentifier(current), known.deletions == deletions {
            return (current, known.documents)
        }
        var live = Set<UUID>()
        let rows = try await database.client.query("SELECT id FROM documents WHERE org_id = \(orgID)", logger: database.logger)
        for try await id in rows.decode(UUID.self) { live.insert(id) }
        // Once per deletion count (cached above): the snapshot's documents that no longer exist.
        let gone = Set(current.chunks.lazy.map(\.documentID).filter { !live.contains($0) })
        removed.withLock { $0[orgID] = (ObjectIdentifier(current), deletions, gone) }
        return (current, gone)
    }

    /// Bytes held by all loaded organisations (reported as `intellidocs_keyword_index_bytes`).
    public var memoryBytes: Int { snapshots.withLock { $0.values.reduce(0) { $0 + $1.bytes } } }

    /// The fresh snapshot of the organisation, or nil (stale or not loaded: a background load is started).
    func fresh(_ orgID: UUID) async throws -> Snapshot? {
        let (version, deletions) = try await VectorRepository(logger: database.logger).versions(orgID: orgID, database: database)
        if let snapshot = snapshots.withLock({ $0[orgID] }), snapshot.version == version, snapshot.deletions == deletions {
            return snapshot
        }
        startLoading(orgID)
        return nil
    }

    /// Loads the organisation now unless its snapshot is fresh (a searcher about to be measured).
    public func warm(_ orgID: UUID) async throws {
        let (version, deletions) = try await VectorRepository(logger: database.logger).versions(orgID: orgID, database: database)
        if let snapshot = snapshots.withLock({ $0[orgID] }), snapshot.version == version, snapshot.deletions == deletions { return }
        if let snapshot = try await load(orgID) { store(snapshot, for: orgID) }
        loaded.withLock { $0[orgID] = ContinuousClock.now }
    }

    private func store(_ snapshot: Snapshot, for orgID: UUID) {
        snapshots.withLock { $0[orgID] = snapshot }
        Gauge(label: "intellidocs_keyword_index_bytes").record(memoryBytes)
    }

    /// Loads the organisation once in the background (no two loads of one organisation at a time).
    func startLoading(_ orgID: UUID) {
        // A large organisation keeps serving its previous snapshot: reload it at most every interval.
        if let snapshot = snapshots.withLock({ $0[orgID] }), snapshot.chunkRow.count >= staleServingMinimumPostings,
           let last = loaded.withLock({ $0[orgID] }), ContinuousClock.now - last < minimumReloadInterval
        {
            return
        }
        let started = loading.withLock { $0.insert(orgID).inserted }
        guard started else { return }
        Task.detached { [self] in
            defer {
                _ = loading.withLock { $0.remove(orgID) }
                loaded.withLock { $0[orgID] = ContinuousClock.now }
            }
            do {
                if let snapshot = try await load(orgID) { store(snapshot, for: orgID) }
            } catch {
                database.logger.warning("loading the keyword index failed; keyword search stays on SQL", metadata: [
                    "org_id": "\(orgID)", "error": "\(error)",
                ])
            }
        }
    }

    /// Reads the organisation's postings (in term order) into a snapshot; nil when there are too many.
    func load(_ orgID: UUID) async throws -> Snapshot? {
        let (version, deletions) = try await VectorRepository(logger: database.logger).versions(orgID: orgID, database: database)
        var terms: [String: Int32] = [:]
        var start: [Int32] = []
        var chunkRow: [Int32] = []
        var termFrequency: [UInt16] = []
        var rowOf: [ChunkKeyValue: Int32] = [:]
        var chunks: [ChunkKeyValue] = []
        var chunkLength: [Int32] = []
        var lastTerm: String?
        var tooMany = false
        // One snapshot of the table: the postings and the version read above may differ if an index batch
        // commits in between; the version is then older than the data, so the next query reloads.
        let rows = try await database.client.query(
            """
            SELECT term, document_id, chunk_index, tf, chunk_length FROM chunk_terms
            WHERE org_id = \(orgID) ORDER BY term
            """, logger: database.logger)
        for try await (term, document, chunk, tf, length) in rows.decode((String, UUID, Int32, Int32, Int32).self) {
            if tooMany { continue }
            if term != lastTerm {
                terms[term] = Int32(start.count)
                start.append(Int32(chunkRow.count))
                lastTerm = term
            }
            let key = ChunkKeyValue(documentID: document, chunkIndex: chunk)
            let row: Int32
            if let known = rowOf[key] {
                row = known
            } else {
                row = Int32(chunks.count)
                rowOf[key] = row
                chunks.append(key)
                chunkLength.append(length)
            }
            chunkRow.append(row)
            termFrequency.append(UInt16(clamping: tf))
            if chunkRow.count > maxPostingsPerOrganization { tooMany = true }
        }
        if tooMany { return nil }
        start.append(Int32(chunkRow.count))
        return Snapshot(
            terms: terms, start: start, chunkRow: chunkRow, termFrequency: termFrequency, chunks: chunks, chunkLength: chunkLength,
            version: version, deletions: deletions)
    }

    /// The `limit` best chunks for the query's lexemes, scored with BM25 (k1, b); only documents in
    /// `allowed` when given.
    func search(
        _ snapshot: Snapshot, lexemes: [String], k1: Double, b: Double, limit: Int, allowed: Set<UUID>?, excluded: Set<UUID> = []
    ) -> [ChunkHit] {
        let n = Double(snapshot.chunks.count)
        var scores = [Double](repeating: 0, count: snapshot.chunks.count)
        var touched: [Int32] = []
        for lexeme in Set(lexemes) {
            guard let term = snapshot.terms[lexeme] else { continue }
            let from = Int(snapshot.start[Int(term)]), to = Int(snapshot.start[Int(term) + 1])
            let df = Double(to - from)
            let idf = log(1 + (n - df + 0.5) / (df + 0.5))
            for posting in from..<to {
                let row = Int(snapshot.chunkRow[posting])
                let tf = Double(snapshot.termFrequency[posting])
                let length = Double(snapshot.chunkLength[row])
                if scores[row] == 0 { touched.append(Int32(row)) }
                scores[row] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / snapshot.averageLength))
            }
        }
        var candidates = touched.map(Int.init)
        if let allowed { candidates.removeAll { !allowed.contains(snapshot.chunks[$0].documentID) } }
        if !excluded.isEmpty { candidates.removeAll { excluded.contains(snapshot.chunks[$0].documentID) } }
        // Best first; equal scores in the order SQL breaks ties (document id, then chunk index).
        func better(_ x: Int, _ y: Int) -> Bool {
            scores[x] != scores[y] ? scores[x] > scores[y] : snapshot.tieOrder[x] < snapshot.tieOrder[y]
        }
        let top = TopK.select(candidates, count: limit, by: better)
        return top.map {
            ChunkHit(documentID: snapshot.chunks[$0].documentID, chunkIndex: Int(snapshot.chunks[$0].chunkIndex), score: scores[$0])
        }
    }
}

/// The best `count` elements without sorting them all: a bounded heap whose root is the worst kept.
enum TopK {
    static func select<Items: Sequence<Int>>(_ items: Items, count: Int, by better: (Int, Int) -> Bool) -> [Int] {
        if count <= 0 { return [] }
        var heap: [Int] = []
        heap.reserveCapacity(count)
        func siftDown(_ start: Int) {
            var parent = start
            while true {
                let left = 2 * parent + 1, right = left + 1
                var worst = parent
                if left < heap.count, better(heap[worst], heap[left]) { worst = left }
                if right < heap.count, better(heap[worst], heap[right]) { worst = right }
                if worst == parent { return }
                heap.swapAt(parent, worst)
                parent = worst
            }
        }
        func siftUp(_ start: Int) {
            var child = start
            while child > 0 {
                let parent = (child - 1) / 2
                guard better(heap[parent], heap[child]) else { return }
                heap.swapAt(parent, child)
                child = parent
            }
        }
        for item in items {
            if heap.count < count {
                heap.append(item)
                siftUp(heap.count - 1)
            } else if better(item, heap[0]) {
                heap[0] = item
                siftDown(0)
            }
        }
        return heap.sorted(by: better)
    }
}
