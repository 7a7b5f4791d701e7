/// The vocabulary as a byte trie, so WordPiece's greedy longest match is one walk down the trie instead of
/// one dictionary look-up (and one substring allocation) per candidate length.
///
/// Flat arrays (compressed sparse rows): node `n`'s edges are `edgeBytes[edgeStart[n]..<edgeStart[n + 1]]`,
/// sorted by byte, leading to `edgeTargets[…]`. The root has a direct 256-entry table because every walk
/// starts there. A match can only end where a whole vocabulary entry ends, and entries are valid UTF-8, so
/// matches always end on a character boundary.
struct VocabularyTrie: Sendable {
    static let root: Int32 = 0
    static let noToken: Int32 = -1

    private let edgeStart: [Int32]
    private let edgeBytes: [UInt8]
    private let edgeTargets: [Int32]
    private let rootTable: [Int32]
    /// The token id that ends at each node, or `noToken`.
    private let tokenIDs: [Int32]

    /// Builds the trie of `tokens`, where a token's id is its index. A later duplicate keeps the first id,
    /// as a vocabulary file read into a dictionary would not (Hugging Face keeps the last): BERT's
    /// vocabulary has no duplicates, and the loader rejects a file that has.
    init(tokens: [String]) {
        var children: [[UInt8: Int32]] = [[:]]
        var ids: [Int32] = [Self.noToken]
        for (index, token) in tokens.enumerated() {
            var node = 0
            for byte in token.utf8 {
                if let next = children[node][byte] {
                    node = Int(next)
                } else {
                    children.append([:])
                    ids.append(Self.noToken)
                    children[node][byte] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            if ids[node] == Self.noToken {
                ids[node] = Int32(index)
            }
        }
        var start: [Int32] = []
        var bytes: [UInt8] = []
        var targets: [Int32] = []
        start.reserveCapacity(children.count + 1)
        for edges in children {
            start.append(Int32(bytes.count))
            for (byte, target) in edges.sorted(by: { $0.key < $1.key }) {
                bytes.append(byte)
                targets.append(target)
            }
        }
        start.append(Int32(bytes.count))
        var table = [Int32](repeating: Self.noToken, count: 256)
        for (byte, target) in children[0] {
            table[Int(byte)] = target
        }
        edgeStart = start
        edgeBytes = bytes
        edgeTargets = targets
        rootTable = table
        tokenIDs = ids
    }

    /// The node reached from `node` by `byte`, or nil.
    @inline(__always)
    func child(of node: Int32, byte: UInt8) -> Int32? {
        if node == Self.root {
            let target = rootTable[Int(byte)]
            return target == Self.noToken ? nil : target
        }
        var low = Int(edgeStart[Int(node)])
        var high = Int(edgeStart[Int(node) + 1])
        while low < high {
            let middle = (low + high) / 2
            let candidate = edgeBytes[middle]
            if candidate == byte {
                return edgeTargets[middle]
            } else if candidate < byte {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return nil
    }

    /// The node reached from `node` by all of `bytes`, or nil.
    func walk(from node: Int32, bytes: some Sequence<UInt8>) -> Int32? {
        var current = node
        for byte in bytes {
            guard let next = child(of: current, byte: byte) else { return nil }
            current = next
        }
        return current
    }

    /// The id of the token that ends at `node`, or nil.
    @inline(__always)
    func tokenID(at node: Int32) -> Int32? {
        let id = tokenIDs[Int(node)]
        return id == Self.noToken ? nil : id
    }

    /// The longest vocabulary entry that continues `node` with a prefix of `bytes[start..<end]`:
    /// its id and the index just past it, or nil when no entry matches.
    @inline(__always)
    func longestMatch(in bytes: [UInt8], from start: Int, to end: Int, startingAt node: Int32) -> (id: Int32, end: Int)? {
        var current = node
        var best: (id: Int32, end: Int)?
        var index = start
        while index < end, let next = child(of: current, byte: bytes[index]) {
            current = next
            index += 1
            if let id = tokenID(at: current) {
                best = (id, index)
            }
        }
        return best
    }
}
