import Dispatch
import Embedding
import Foundation
import Synchronization

/// A hierarchical navigable small-world graph (Malkov & Yashunin, 2018) over the rows of a matrix of unit
/// vectors: approximate top-k by inner product (the cosine, for unit vectors) that reads a few thousand
/// rows per query instead of all of them.
///
/// The graph holds only links. The vectors stay in their owner's matrix (the vector index's snapshot) and
/// are passed to every build and search, so a graph is only ever used with the matrix it was built on;
/// rows `0..<count` are in the graph. A graph is a value: `insert(upTo:matrix:lanes:)` extends a copy
/// while searches keep using the published one.
///
/// Levels come from a hash of (seed, row), and a build inserts rows in fixed batches whose links are
/// applied in row order, so the same rows inserted by the same calls give the same graph whatever the
/// number of threads.
struct HNSWGraph: Sendable {
    struct Parameters: Sendable, Equatable {
        /// Links per node on the upper levels; level 0 keeps up to `2 * m`.
        var m = 16
        /// Candidates considered when linking a new node (larger: better graph, slower build).
        var efConstruction = 100
        /// Candidates considered by a search; a search for `limit` results uses at least `limit`.
        var efSearch = 96
        /// Seed of the level assignment.
        var seed: UInt64 = 0x1D0C_5EED
    }

    /// A row and its inner product with the query.
    struct Scored: Sendable {
        var score: Float
        var node: Int32

        /// Higher score first; equal scores in row order, as the exact scan breaks ties.
        @inline(__always)
        func isBetter(than other: Scored) -> Bool {
            score != other.score ? score > other.score : node < other.node
        }
    }

    let parameters: Parameters
    let dimension: Int
    /// Rows `0..<count` of the matrix are in the graph.
    private(set) var count = 0
    private var levels: [UInt8] = []
    /// Level-0 links: node i owns `base[i * baseStride ..< (i + 1) * baseStride]`, the first slot the count.
    private var base: [Int32] = []
    /// Links above level 0: level l ≥ 1 of node i starts at `upperStart[i] + (l - 1) * upperStride`.
    private var upper: [Int32] = []
    private var upperStart: [Int32] = []
    private var entryPoint: Int32 = 0
    private var topLevel = -1

    init(dimension: Int, parameters: Parameters = Parameters()) {
        precondition(dimension > 0 && parameters.m >= 2 && parameters.efConstruction >= 1 && parameters.efSearch >= 1)
        self.dimension = dimension
        self.parameters = parameters
    }

    private var baseStride: Int { 2 * parameters.m + 1 }
    private var upperStride: Int { parameters.m + 1 }

    /// Memory held by the links (the vectors are the owner's).
    var bytes: Int { (base.capacity + upper.capacity + upperStart.capacity) * 4 + levels.capacity }

    /// The level of row `node`: geometric with ratio 1/m, from a hash of the seed and the row.
    func level(of node: Int) -> Int {
        var x = parameters.seed &+ UInt64(node) &* 0x9E37_79B9_7F4A_7C15
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        x ^= x >> 31
        let uniform = (Double(x >> 11) + 1) / 9_007_199_254_740_992  // (0, 1]
        return min(Int(-log(uniform) / log(Double(parameters.m))), 30)
    }

    // MARK: Building

    /// Adds rows `count..<newCount` of `matrix` to the graph, searching on `lanes` threads (this call
    /// blocks: run it off the cooperative pool).
    ///
    /// Rows are added in batches of up to 1/64 of the graph (at most 512): the nodes of one batch are placed
    /// against the graph as it was before the batch, in parallel, each also compared directly with the
    /// nodes before it in the batch (rows of one document arrive together and are each other's nearest
    /// neighbours); then they are linked.
    ///
    /// `shouldStop` is asked before each batch after the first row: when it says yes, the graph keeps the
    /// rows placed so far (`count` says how many), whole and searchable, and the call returns false.
    @discardableResult
    mutating func insert(upTo newCount: Int, matrix: UnsafeBufferPointer<Float>, lanes: Int, shouldStop: () -> Bool = { false }) -> Bool {
        precondition(newCount >= count && matrix.count >= newCount * dimension)
        guard newCount > count, let vectors = matrix.baseAddress else { return true }
        let first = count
        // Every slot the new rows need, allocated before any search so the pointers below stay valid.
        levels.reserveCapacity(newCount)
        upperStart.reserveCapacity(newCount)
        for node in first..<newCount {
            let level = level(of: node)
            levels.append(UInt8(level))
            upperStart.append(level == 0 ? -1 : Int32(upper.count))
            if level > 0 { upper.append(contentsOf: repeatElement(0, count: level * upperStride)) }
        }
        base.append(contentsOf: repeatElement(0, count: (newCount - first) * baseStride))

        let m = parameters.m, efConstruction = parameters.efConstruction, dimension = dimension
        let lanes = max(1, lanes)
        var done = first
        var entry = entryPoint, top = topLevel
        base.withUnsafeMutableBufferPointer { baseBuffer in
            upper.withUnsafeMutableBufferPointer { upperBuffer in
                upperStart.withUnsafeBufferPointer { startBuffer in
                    levels.withUnsafeBufferPointer { levelBuffer in
                        let links = Links(
                            base: baseBuffer.baseAddress!, upper: upperBuffer.baseAddress ?? baseBuffer.baseAddress!,
                            upperStart: startBuffer.baseAddress!, levels: levelBuffer.baseAddress!, baseStride: 2 * m + 1, upperStride: m + 1)
                        let space = VectorSpace(vectors: vectors, dimension: dimension)
                        if done == 0 {
                            entry = 0
                            top = Int(levelBuffer[0])
                            done = 1
                        }
                        while done < newCount && !shouldStop() {
                            let batch = done..<min(newCount, done + max(1, min(512, done / 64)))
                            // Place: each new node's neighbours per level, against the graph before the batch.
                            let plans = PlanTable(count: batch.count)
                            let next = Atomic<Int>(0)
                            let (entryPoint, topLevel) = (entry, top)
                            Self.onLanes(batch.count == 1 ? 1 : lanes) { _ in
                                var visited = VisitedSet(capacity: newCount)
                                while true {
                                    let slot = next.add(1, ordering: .relaxed).oldValue
                                    if slot >= batch.count { return }
                                    let node = Int32(batch.lowerBound + slot)
                                    plans.set(
                                        slot,
                                        Self.place(
                                            node: node, level: Int(links.levels[Int(node)]), entry: entryPoint, top: topLevel, m: m,
                                            efConstruction: efConstruction, mates: Int32(batch.lowerBound)..<node, links: links, space: space,
                                            visited: &visited))
                                }
                            }

                            // Link: each new node gets its own lists; the old nodes it chose get it back, pruned to
                            // capacity by the same heuristic (each old node's list by one lane, in row order).
                            var requests: [Int: [Int32]] = [:]
                            for slot in 0..<batch.count {
                                let node = Int32(batch.lowerBound + slot)
                                for (level, chosen) in plans.get(slot).enumerated() {
                                    let slots = links.mutableSlots(node, level)
                                    slots[0] = Int32(chosen.count)
                                    for (i, neighbour) in chosen.enumerated() {
                                        slots[1 + i] = neighbour.node
                                        requests[Int(neighbour.node) << 6 | level, default: []].append(node)
                                    }
                                }
                            }
                            let targets = Array(requests)
                            let nextTarget = Atomic<Int>(0)
                            Self.onLanes(targets.count < 64 ? 1 : lanes) { _ in
                                while true {
                                    let index = nextTarget.add(1, ordering: .relaxed).oldValue
                                    if index >= targets.count { return }
                                    let (key, newcomers) = targets[index]
                                    Self.addLinks(
                                        to: Int32(key >> 6), level: key & 63, newcomers: newcomers, capacity: key & 63 == 0 ? 2 * m : m,
                                        links: links, space: space)
                                }
                            }
                            for node in batch where Int(levelBuffer[node]) > top {
                                top = Int(levelBuffer[node])
                                entry = Int32(node)
                            }
                            done = batch.upperBound
                        }
                    }
                }
            }
        }
        if done < newCount {
            // Stopped: drop the slots of the rows not placed (no placed node links to them).
            if let firstUpper = upperStart[done...].first(where: { $0 >= 0 }) { upper.removeSubrange(Int(firstUpper)...) }
            levels.removeSubrange(done...)
            upperStart.removeSubrange(done...)
            base.removeSubrange((done * baseStride)...)
        }
        count = done
        entryPoint = entry
        topLevel = top
        return done == newCount
    }

    /// Runs `body` on `lanes` threads (or on this one), returning when all are done.
    private static func onLanes(_ lanes: Int, _ body: @Sendable (Int) -> Void) {
        if lanes <= 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: lanes, execute: body) }
    }

    /// A new node's neighbours on each level it shares with the graph (index = level), chosen by the
    /// heuristic among the `efConstruction` nearest found in the graph and among `mates` (nodes of the
    /// same batch, not in the graph yet).
    private static func place(
        node: Int32, level: Int, entry: Int32, top: Int, m: Int, efConstruction: Int, mates: Range<Int32>, links: Links,
        space: VectorSpace, visited: inout VisitedSet
    ) -> [[Scored]] {
        let query = space.row(node)
        var nearest = Scored(score: space.dot(query, entry), node: entry)
        if top > level {
            nearest = greedy(query: query, from: nearest, levels: (level + 1...top).reversed(), links: links, space: space)
        }
        let nearestMates = TopK.select(mates.map { Scored(score: space.dot(query, $0), node: $0) }, count: efConstruction)
        var entries = [nearest]
        var plan = [[Scored]](repeating: [], count: min(level, top) + 1)
        for current in stride(from: min(level, top), through: 0, by: -1) {
            let found = searchLevel(
                query: query, entries: entries, ef: efConstruction, level: current, links: links, space: space, visited: &visited,
                accept: nil)
            let matesHere = nearestMates.filter { Int(links.levels[Int($0.node)]) >= current }
            let candidates = matesHere.isEmpty ? found : TopK.select(found + matesHere, count: efConstruction)
            plan[current] = selectNeighbours(candidates, max: m, space: space)
            entries = found
        }
        return plan
    }

    /// Adds `newcomers` to `target`'s list on `level`; past `capacity`, keeps what the heuristic selects.
    private static func addLinks(to target: Int32, level: Int, newcomers: [Int32], capacity: Int, links: Links, space: VectorSpace) {
        let slots = links.mutableSlots(target, level)
        let existing = Int(slots[0])
        if existing + newcomers.count <= capacity {
            for (i, node) in newcomers.enumerated() { slots[1 + existing + i] = node }
            slots[0] = Int32(existing + newcomers.count)
            return
        }
        let vector = space.row(target)
        var candidates: [Scored] = []
        candidates.reserveCapacity(existing + newcomers.count)
        for i in 0..<existing { candidates.append(Scored(score: space.dot(vector, space.row(slots[1 + i])), node: slots[1 + i])) }
        for node in newcomers { candidates.append(Scored(score: space.dot(vector, space.row(node)), node: node)) }
        candidates.sort { $0.isBetter(than: $1) }
        let kept = selectNeighbours(candidates, max: capacity, space: space)
        slots[0] = Int32(kept.count)
        for (i, neighbour) in kept.enumerated() { slots[1 + i] = neighbour.node }
    }

    /// The heuristic of the HNSW paper (algorithm 4): closest first, a candidate is kept only if it is
    /// closer to the base node than to every one already kept, so links spread in different directions.
    /// `candidates` are sorted best first.
    private static func selectNeighbours(_ candidates: [Scored], max: Int, space: VectorSpace) -> [Scored] {
        if candidates.count <= max { return candidates }
        var kept: [Scored] = []
        kept.reserveCapacity(max)
        for candidate in candidates {
            if kept.count >= max { break }
            let vector = space.row(candidate.node)
            if kept.allSatisfy({ space.dot(vector, space.row($0.node)) <= candidate.score }) { kept.append(candidate) }
        }
        return kept
    }

    // MARK: Searching

    /// The `limit` rows nearest `query` (best first), among those `accept` admits when given.
    /// Considers `max(efSearch, limit)` candidates, or `ef` when given. It may return fewer than exist when
    /// a filter admits few rows: the caller then scans exactly.
    func search(
        _ query: UnsafePointer<Float>, limit: Int, ef: Int? = nil, matrix: UnsafeBufferPointer<Float>, accept: ((Int32) -> Bool)? = nil
    ) -> [Scored] {
        guard count > 0, limit > 0, let vectors = matrix.baseAddress else { return [] }
        precondition(matrix.count >= count * dimension)
        let ef = max(ef ?? parameters.efSearch, limit)
        let space = VectorSpace(vectors: vectors, dimension: dimension)
        return base.withUnsafeBufferPointer { baseBuffer in
            upper.withUnsafeBufferPointer { upperBuffer in
                upperStart.withUnsafeBufferPointer { startBuffer in
                    let links = Links(
                        base: UnsafeMutablePointer(mutating: baseBuffer.baseAddress!),
                        upper: UnsafeMutablePointer(mutating: upperBuffer.baseAddress ?? baseBuffer.baseAddress!),
                        upperStart: startBuffer.baseAddress!, levels: nil, baseStride: baseStride, upperStride: upperStride)
                    var nearest = Scored(score: space.dot(query, entryPoint), node: entryPoint)
                    if topLevel > 0 {
                        nearest = Self.greedy(query: query, from: nearest, levels: (1...topLevel).reversed(), links: links, space: space)
                    }
                    var visited = VisitedSet(capacity: count)
                    let found = Self.searchLevel(
                        query: query, entries: [nearest], ef: ef, level: 0, links: links, space: space, visited: &visited, accept: accept)
                    return Array(found.prefix(limit))
                }
            }
        }
    }

    /// Walks down `levels`, on each moving to the nearest neighbour until none is nearer.
    private static func greedy(
        query: UnsafePointer<Float>, from start: Scored, levels: some Sequence<Int>, links: Links, space: VectorSpace
    ) -> Scored {
        var nearest = start
        for level in levels {
            var moved = true
            while moved {
                moved = false
                for neighbour in links.neighbours(nearest.node, level) {
                    let score = space.dot(query, neighbour)
                    if score > nearest.score {
                        nearest = Scored(score: score, node: neighbour)
                        moved = true
                    }
                }
            }
        }
        return nearest
    }

    /// Best-first search of one level from `entries`: the `ef` nearest rows found (among those `accept`
    /// admits), best first. Rejected rows are still walked through.
    private static func searchLevel(
        query: UnsafePointer<Float>, entries: [Scored], ef: Int, level: Int, links: Links, space: VectorSpace,
        visited: inout VisitedSet, accept: ((Int32) -> Bool)?
    ) -> [Scored] {
        visited.clear()
        var candidates = ScoredHeap(bestOnTop: true, capacity: ef * 2)
        var results = ScoredHeap(bestOnTop: false, capacity: ef + 1)
        for entry in entries where visited.insert(entry.node) {
            candidates.push(entry)
            if accept?(entry.node) ?? true {
                results.push(entry)
                if results.count > ef { _ = results.pop() }
            }
        }
        while let current = candidates.pop() {
            if results.count >= ef, current.score < results.top.score { break }
            for neighbour in links.neighbours(current.node, level) where visited.insert(neighbour) {
                let score = space.dot(query, neighbour)
                guard results.count < ef || score > results.top.score else { continue }
                let found = Scored(score: score, node: neighbour)
                candidates.push(found)
                if accept?(neighbour) ?? true {
                    results.push(found)
                    if results.count > ef { _ = results.pop() }
                }
            }
        }
        return results.sortedBestFirst()
    }
}

// MARK: - Pieces of the graph's hot loops

extension TopK {
    /// The best `count` scored rows, best first.
    static func select(_ items: [HNSWGraph.Scored], count: Int) -> [HNSWGraph.Scored] {
        select(items.indices, count: count) { items[$0].isBetter(than: items[$1]) }.map { items[$0] }
    }
}

/// The graph's link lists as pointers (valid only inside the `withUnsafe…` calls that made them).
private struct Links: @unchecked Sendable {
    // @unchecked Sendable: shared only with the lanes of one build step, inside the `withUnsafe…` calls
    // that made the pointers; while lanes place nodes nobody writes, and while they link, each list is
    // written by the one lane that took its node.
    let base: UnsafeMutablePointer<Int32>
    let upper: UnsafeMutablePointer<Int32>
    let upperStart: UnsafePointer<Int32>
    /// Each node's top level (while building).
    let levels: UnsafePointer<UInt8>!
    let baseStride: Int
    let upperStride: Int

    /// The node's slots on `level`: the count, then the neighbours. Written only while building.
    @inline(__always)
    func mutableSlots(_ node: Int32, _ level: Int) -> UnsafeMutablePointer<Int32> {
        level == 0 ? base + Int(node) * baseStride : upper + Int(upperStart[Int(node)]) + (level - 1) * upperStride
    }

    @inline(__always)
    func neighbours(_ node: Int32, _ level: Int) -> UnsafeBufferPointer<Int32> {
        let slots = mutableSlots(node, level)
        return UnsafeBufferPointer(start: slots + 1, count: Int(slots[0]))
    }
}

/// The matrix's rows as pointers, and their inner products (OpenBLAS's sdot: AVX kernels where the
/// processor has them).
private struct VectorSpace: @unchecked Sendable {
    // @unchecked Sendable: read-only, and used only inside the `withUnsafeBufferPointer` call on the matrix.
    let vectors: UnsafePointer<Float>
    let dimension: Int

    @inline(__always)
    func row(_ node: Int32) -> UnsafePointer<Float> { vectors + Int(node) * dimension }

    @inline(__always)
    func dot(_ query: UnsafePointer<Float>, _ node: Int32) -> Float { VectorScoring.dot(query, row(node), dimension: dimension) }

    @inline(__always)
    func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) -> Float { VectorScoring.dot(a, b, dimension: dimension) }
}

/// Rows seen by one search: a bitset, cleared between searches.
private struct VisitedSet: ~Copyable {
    private let words: UnsafeMutableBufferPointer<UInt64>

    init(capacity: Int) {
        words = .allocate(capacity: max(1, (capacity + 63) / 64))
        words.initialize(repeating: 0)
    }

    deinit { words.deallocate() }

    mutating func clear() {
        words.update(repeating: 0)
    }

    /// True when `node` was not seen before (and marks it).
    @inline(__always)
    mutating func insert(_ node: Int32) -> Bool {
        let index = Int(node) >> 6, bit = UInt64(1) << UInt64(node & 63)
        let word = words[index]
        if word & bit != 0 { return false }
        words[index] = word | bit
        return true
    }
}

/// A binary heap of scored rows: the best on top (candidates to expand) or the worst (results kept).
private struct ScoredHeap {
    private var items: [HNSWGraph.Scored] = []
    private let bestOnTop: Bool

    init(bestOnTop: Bool, capacity: Int) {
        self.bestOnTop = bestOnTop
        items.reserveCapacity(capacity)
    }

    var count: Int { items.count }
    var top: HNSWGraph.Scored { items[0] }

    @inline(__always)
    private static func above(_ a: HNSWGraph.Scored, _ b: HNSWGraph.Scored, bestOnTop: Bool) -> Bool {
        bestOnTop ? a.isBetter(than: b) : b.isBetter(than: a)
    }

    mutating func push(_ item: HNSWGraph.Scored) {
        items.append(item)
        let bestOnTop = bestOnTop
        items.withUnsafeMutableBufferPointer { heap in
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard Self.above(heap[child], heap[parent], bestOnTop: bestOnTop) else { return }
                heap.swapAt(parent, child)
                child = parent
            }
        }
    }

    mutating func pop() -> HNSWGraph.Scored? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let first = items[0]
        let bestOnTop = bestOnTop
        items.withUnsafeMutableBufferPointer { heap in
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var best = parent
                if left < heap.count, Self.above(heap[left], heap[best], bestOnTop: bestOnTop) { best = left }
                if right < heap.count, Self.above(heap[right], heap[best], bestOnTop: bestOnTop) { best = right }
                if best == parent { return }
                heap.swapAt(parent, best)
                parent = best
            }
        }
        return first
    }

    func sortedBestFirst() -> [HNSWGraph.Scored] {
        items.sorted { $0.isBetter(than: $1) }
    }
}

/// Per-node results of a batch's parallel placement; each slot is written by exactly one lane.
private final class PlanTable: @unchecked Sendable {
    // @unchecked Sendable: lanes write disjoint slots (each index is handed out once by an atomic counter),
    // and the slots are read only after `concurrentPerform` has returned.
    private let plans: UnsafeMutableBufferPointer<[[HNSWGraph.Scored]]>

    init(count: Int) {
        plans = .allocate(capacity: count)
        plans.initialize(repeating: [])
    }

    deinit {
        _ = plans.deinitialize()
        plans.deallocate()
    }

    func set(_ slot: Int, _ plan: [[HNSWGraph.Scored]]) { plans[slot] = plan }
    func get(_ slot: Int) -> [[HNSWGraph.Scored]] { plans[slot] }
}
