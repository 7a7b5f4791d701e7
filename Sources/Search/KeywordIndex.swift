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
///
/// Changes are merged rather than reloaded (`merged`): the index stage logs which documents each batch
/// wrote (0010_index_log.sql), so the new snapshot is the old one minus deleted documents and minus the
/// logged ones, plus the logged documents' postings read afresh. Its statistics are exact once its chunk
/// count and total length match PostgreSQL's (`search_stats`); otherwise, or when the log may have been
/// trimmed past the snapshot, it is a full load. At 198k chunks a merge is one read of the organisation's
/// document ids, the changed documents' postings and a pass over the postings in memory, instead of
/// reading 12M postings back from PostgreSQL; merges of a large organisation start at most every
/// `minimumMergeInterval`.
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
        /// The last `index_log` entry the snapshot has, and PostgreSQL's clock when that was read.
        let logSequence: Int64
        let loggedThrough: Date

        init(terms: [String: Int32], start: [Int32], chunkRow: [Int32], termFrequency: [UInt16], chunks: [ChunkKeyValue],
             chunkLength: [Int32], version: Int64, deletions: Int64, logSequence: Int64, loggedThrough: Date) {
            self.logSequence = logSequence
            self.loggedThrough = loggedThrough
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
    /// How often a large organisation's changes may be merged (`merged`).
    let minimumMergeInterval: Duration
    /// Whether changes are merged into the snapshot in memory (`merged`) rather than by a reload.
    let mergesChanges: Bool
    /// Full loads done (for tests: a deletion should not need one).
    let fullLoads = Atomic<Int>(0)
    private let snapshots = Mutex<[UUID: Snapshot]>([:])
    private let loading = Mutex<Set<UUID>>([])
    /// When each organisation's last load finished.
    private let loaded = Mutex<[UUID: ContinuousClock.Instant]>([:])
    /// When each organisation's last merge started.
    private let mergeStarted = Mutex<[UUID: ContinuousClock.Instant]>([:])
    /// Organisations whose last merge failed: they wait for a full load instead of trying again.
    private let mergeFailed = Mutex<Set<UUID>>([])
    /// Documents of a stale snapshot deleted since, per organisation, for the deletion count they were read at.
    private let removed = Mutex<[UUID: (snapshot: ObjectIdentifier, deletions: Int64, documents: Set<UUID>)]>([:])

    public init(
        database: Database, maxPostingsPerOrganization: Int = 50_000_000, staleServingMinimumPostings: Int = 1_000_000,
        minimumReloadInterval: Duration = .seconds(30), minimumMergeInterval: Duration = .seconds(1), mergesChanges: Bool = true
    ) {
        self.minimumMergeInterval = minimumMergeInterval
        self.mergesChanges = mergesChanges
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
        startLoading(orgID, versions: IndexVersions(version: version, deletions: deletions))
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
        startLoading(orgID, versions: IndexVersions(version: version, deletions: deletions))
        return nil
    }

    /// Brings the organisation up to date now unless its snapshot is fresh (a searcher about to be
    /// measured): by merging the changes when it can, by a full load otherwise.
    public func warm(_ orgID: UUID) async throws {
        let (version, deletions) = try await VectorRepository(logger: database.logger).versions(orgID: orgID, database: database)
        let current = snapshots.withLock { $0[orgID] }
        if let current, current.version == version, current.deletions == deletions { return }
        if mergesChanges, let current, let snapshot = try await merged(current, orgID: orgID) {
            store(snapshot, for: orgID)
            return
        }
        if let snapshot = try await load(orgID) {
            store(snapshot, for: orgID)
            mergeFailed.withLock { _ = $0.remove(orgID) }
        }
        loaded.withLock { $0[orgID] = ContinuousClock.now }
    }

    private func store(_ snapshot: Snapshot, for orgID: UUID) {
        snapshots.withLock { $0[orgID] = snapshot }
        Gauge(label: "intellidocs_keyword_index_bytes").record(memoryBytes)
    }

    /// Brings the organisation up to date once in the background (no two at a time per organisation): by
    /// merging its changes when it can, by a full load otherwise. A large organisation keeps serving its
    /// previous snapshot meanwhile, so its merges and reloads are spaced out (`minimumMergeInterval`,
    /// `minimumReloadInterval`).
    func startLoading(_ orgID: UUID, versions: IndexVersions) {
        let current = snapshots.withLock { $0[orgID] }
        let large = (current?.chunkRow.count ?? 0) >= staleServingMinimumPostings
        let now = ContinuousClock.now
        let reloadThrottled = large && loaded.withLock { $0[orgID].map { now - $0 < minimumReloadInterval } ?? false }
        let merge = mergesChanges && current != nil && !mergeFailed.withLock { $0.contains(orgID) }
        // Too soon after the last merge: a later query merges (the snapshot serves meanwhile), no full load.
        if merge && large && mergeStarted.withLock({ $0[orgID].map { now - $0 < minimumMergeInterval } ?? false }) { return }
        if !merge && reloadThrottled { return }
        let started = loading.withLock { $0.insert(orgID).inserted }
        guard started else { return }
        if merge { mergeStarted.withLock { $0[orgID] = now } }
        Task.detached { [self] in
            defer { _ = loading.withLock { $0.remove(orgID) } }
            do {
                let clock = ContinuousClock()
                let started = clock.now
                if merge, let current, let snapshot = try await merged(current, orgID: orgID) {
                    store(snapshot, for: orgID)
                    let seconds = (clock.now - started) / .seconds(1)
                    Metrics.Timer(label: "intellidocs_keyword_index_merge_seconds").recordSeconds(seconds)
                    database.logger.debug("merged keyword index changes", metadata: [
                        "org_id": "\(orgID)", "postings": "\(snapshot.chunkRow.count)", "seconds": "\(seconds)",
                    ])
                    return
                }
                if merge {
                    mergeFailed.withLock { _ = $0.insert(orgID) }
                    database.logger.debug("keyword index changes could not be merged; loading in full", metadata: ["org_id": "\(orgID)"])
                }
                if reloadThrottled { return }
                defer { loaded.withLock { $0[orgID] = ContinuousClock.now } }
                if let snapshot = try await load(orgID) {
                    store(snapshot, for: orgID)
                    mergeFailed.withLock { _ = $0.remove(orgID) }
                }
            } catch {
                database.logger.warning("loading the keyword index failed; keyword search stays on SQL", metadata: [
                    "org_id": "\(orgID)", "error": "\(error)",
                ])
            }
        }
    }

    /// The snapshot brought up to date: without the chunks of deleted documents and of documents the
    /// index stage wrote since (`index_log`), with the latter's postings read afresh; as a fresh snapshot at
    /// PostgreSQL's current versions. Nil when the result does not match PostgreSQL's chunk count and total
    /// length (a change the log does not name, or one committed meanwhile), or when the log may have been
    /// trimmed past the snapshot: a full load is needed then. Writing a document again is harmless, so
    /// entries of the last ten seconds before the snapshot are taken again: an index batch that took its
    /// sequence number before the snapshot read the log but committed after it is not missed.
    func merged(_ snapshot: Snapshot, orgID: UUID) async throws -> Snapshot? {
        guard Date().timeIntervalSince(snapshot.loggedThrough) < 30 * 60 else { return nil }
        // One statement: statistics, live documents and the changed ones from the same moment.
        let rows = try await database.client.query(
            """
            SELECT s.chunks, s.total_length, s.version, s.deletions,
                   ARRAY(SELECT id FROM documents WHERE org_id = \(orgID)),
                   ARRAY(SELECT DISTINCT unnest(l.document_ids) FROM index_log l
                         WHERE l.org_id = \(orgID) AND (l.seq > \(snapshot.logSequence) OR l.logged_at > \(snapshot.loggedThrough) - interval '10 seconds')),
                   (SELECT coalesce(max(seq), 0) FROM index_log WHERE org_id = \(orgID)), now()
            FROM search_stats s WHERE s.org_id = \(orgID)
            """, logger: database.logger)
        var found: (chunks: Int64, totalLength: Int64, version: Int64, deletions: Int64, live: [UUID], changed: [UUID], sequence: Int64, at: Date)?
        for try await row in rows.decode((Int64, Int64, Int64, Int64, [UUID], [UUID], Int64, Date).self) { found = row }
        guard let found else { return nil }
        let live = Set(found.live)
        let changed = Set(found.changed)

        // The changed documents' postings as they are now.
        var added: [String: [(key: ChunkKeyValue, tf: UInt16)]] = [:]
        var addedLength: [ChunkKeyValue: Int32] = [:]
        if !changed.isEmpty {
            let postings = try await database.client.query(
                """
                SELECT term, document_id, chunk_index, tf, chunk_length FROM chunk_terms
                WHERE org_id = \(orgID) AND document_id = ANY(\(Array(changed))::uuid[])
                """, logger: database.logger)
            for try await (term, document, chunk, tf, length) in postings.decode((String, UUID, Int32, Int32, Int32).self) {
                let key = ChunkKeyValue(documentID: document, chunkIndex: chunk)
                added[term, default: []].append((key, UInt16(clamping: tf)))
                addedLength[key] = length
            }
        }

        // Rows: the snapshot's chunks that stay, then the changed documents' chunks.
        var newRow = [Int32](repeating: -1, count: snapshot.chunks.count)
        var chunks: [ChunkKeyValue] = []
        var chunkLength: [Int32] = []
        var totalLength: Int64 = 0
        for (row, key) in snapshot.chunks.enumerated() where live.contains(key.documentID) && !changed.contains(key.documentID) {
            newRow[row] = Int32(chunks.count)
            chunks.append(key)
            chunkLength.append(snapshot.chunkLength[row])
            totalLength += Int64(snapshot.chunkLength[row])
        }
        var rowOf: [ChunkKeyValue: Int32] = [:]
        for (key, length) in addedLength.sorted(by: { ($0.key.documentID, $0.key.chunkIndex) < ($1.key.documentID, $1.key.chunkIndex) }) {
            rowOf[key] = Int32(chunks.count)
            chunks.append(key)
            chunkLength.append(length)
            totalLength += Int64(length)
        }
        guard Int64(chunks.count) == found.chunks, totalLength == found.totalLength else { return nil }

        var names = [String](repeating: "", count: snapshot.terms.count)
        for (name, term) in snapshot.terms { names[Int(term)] = name }
        var terms: [String: Int32] = [:]
        var start: [Int32] = []
        var chunkRow: [Int32] = []
        var termFrequency: [UInt16] = []
        chunkRow.reserveCapacity(snapshot.chunkRow.count)
        termFrequency.reserveCapacity(snapshot.chunkRow.count)
        func close(_ name: String, from first: Int) {
            if chunkRow.count > first {
                terms[name] = Int32(start.count)
                start.append(Int32(first))
            }
        }
        for term in names.indices {
            let first = chunkRow.count
            for posting in Int(snapshot.start[term])..<Int(snapshot.start[term + 1]) {
                let row = newRow[Int(snapshot.chunkRow[posting])]
                if row < 0 { continue }
                chunkRow.append(row)
                termFrequency.append(snapshot.termFrequency[posting])
            }
            for (key, tf) in added.removeValue(forKey: names[term]) ?? [] {
                chunkRow.append(rowOf[key]!)
                termFrequency.append(tf)
            }
            close(names[term], from: first)
        }
        for (name, postings) in added {
            let first = chunkRow.count
            for (key, tf) in postings {
                chunkRow.append(rowOf[key]!)
                termFrequency.append(tf)
            }
            close(name, from: first)
        }
        start.append(Int32(chunkRow.count))
        return Snapshot(
            terms: terms, start: start, chunkRow: chunkRow, termFrequency: termFrequency, chunks: chunks, chunkLength: chunkLength,
            version: found.version, deletions: found.deletions, logSequence: found.sequence, loggedThrough: found.at)
    }

    /// Reads the organisation's postings (in term order) into a snapshot; nil when there are too many.
    func load(_ orgID: UUID) async throws -> Snapshot? {
        fullLoads.add(1, ordering: .relaxed)
        // Read before the postings: whatever commits in between is merged again later, which is harmless.
        var logSequence: Int64 = 0
        var loggedThrough = Date()
        let marks = try await database.client.query(
            "SELECT (SELECT coalesce(max(seq), 0) FROM index_log WHERE org_id = \(orgID)), now()", logger: database.logger)
        for try await (sequence, at) in marks.decode((Int64, Date).self) { (logSequence, loggedThrough) = (sequence, at) }
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
            version: version, deletions: deletions, logSequence: logSequence, loggedThrough: loggedThrough)
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
    /// The rows with the `count` highest of `rows` scores (`scores[row]`), best first, equal
    /// scores in row order; only rows `include` admits, when given. The same as `select` with that order,
    /// for the vector scan, which ranks every row of an organisation for each query: a row that does not
    /// beat the worst kept score costs one comparison.
    static func largest(
        scores: UnsafePointer<Float>, rows: Int, count: Int, include: ((Int) -> Bool)? = nil
    ) -> [Int] {
        if count <= 0 || rows <= 0 { return [] }
        let capacity = min(count, rows)
        // A min-heap of (score, row) by (score ascending, row descending): the root is the worst kept.
        // Rows arrive in ascending order, so a later row with the root's score is worse than the root.
        let heapScores = UnsafeMutableBufferPointer<Float>.allocate(capacity: capacity)
        let heapRows = UnsafeMutableBufferPointer<Int>.allocate(capacity: capacity)
        defer {
            heapScores.deallocate()
            heapRows.deallocate()
        }
        var kept = 0
        for row in 0..<rows {
            let score = scores[row]
            if kept == capacity, !(score > heapScores[0]) { continue }
            if let include, !include(row) { continue }
            if kept < capacity {
                var child = kept
                kept += 1
                while child > 0 {
                    let parent = (child - 1) / 2
                    // `row` is the latest row, so it is worse than a parent with its score.
                    guard score <= heapScores[parent] else { break }
                    heapScores[child] = heapScores[parent]
                    heapRows[child] = heapRows[parent]
                    child = parent
                }
                heapScores[child] = score
                heapRows[child] = row
            } else {
                var parent = 0
                while true {
                    let left = 2 * parent + 1, right = left + 1
                    if left >= capacity { break }
                    var child = left
                    if right < capacity,
                        heapScores[right] < heapScores[left] || (heapScores[right] == heapScores[left] && heapRows[right] > heapRows[left])
                    {
                        child = right
                    }
                    guard heapScores[child] < score || (heapScores[child] == score && heapRows[child] > row) else { break }
                    heapScores[parent] = heapScores[child]
                    heapRows[parent] = heapRows[child]
                    parent = child
                }
                heapScores[parent] = score
                heapRows[parent] = row
            }
        }
        return (0..<kept).sorted { heapScores[$0] != heapScores[$1] ? heapScores[$0] > heapScores[$1] : heapRows[$0] < heapRows[$1] }
            .map { heapRows[$0] }
    }

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
