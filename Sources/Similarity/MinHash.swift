/// Near-duplicate detection: word shingles, their exact Jaccard similarity, and MinHash signatures cut
/// into LSH bands, so that candidates are found by equal band keys instead of comparing every pair.
///
/// Everything here is deterministic across processes and machines (no randomly seeded `Hasher`): a
/// signature computed by one worker is compared with one computed by another, months later.

/// The set of a text's word shingles (`size` consecutive words), hashed to 64 bits.
public struct ShingleSet: Sendable, Equatable {
    public let hashes: Set<UInt64>

    /// Words are runs of letters and digits, lower-cased; punctuation, case and spacing do not matter.
    /// A text with fewer words than `size` has one shingle of all its words; one without words has none.
    public init(text: some StringProtocol, size: Int = 5) {
        precondition(size > 0)
        var words: [UInt64] = []
        var current = FNV1a()
        var inWord = false
        for scalar in text.unicodeScalars {
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                for lower in scalar.properties.lowercaseMapping.unicodeScalars { current.add(lower.value) }
                inWord = true
            } else if inWord {
                words.append(current.value)
                current = FNV1a()
                inWord = false
            }
        }
        if inWord { words.append(current.value) }
        var hashes = Set<UInt64>()
        if words.isEmpty {
            self.hashes = hashes
            return
        }
        let width = min(size, words.count)
        hashes.reserveCapacity(words.count - width + 1)
        for start in 0...(words.count - width) {
            var shingle = FNV1a()
            for word in words[start..<(start + width)] { shingle.add64(word) }
            hashes.insert(shingle.value)
        }
        self.hashes = hashes
    }

    public var isEmpty: Bool { hashes.isEmpty }

    /// |A ∩ B| / |A ∪ B|; 0 when both are empty.
    public func jaccard(_ other: ShingleSet) -> Double {
        let (small, large) = hashes.count <= other.hashes.count ? (hashes, other.hashes) : (other.hashes, hashes)
        if large.isEmpty { return 0 }
        let shared = small.reduce(0) { $0 + (large.contains($1) ? 1 : 0) }
        return Double(shared) / Double(hashes.count + other.hashes.count - shared)
    }
}

/// MinHash with `bands × rows` hash functions. Two sets with Jaccard similarity J share at least one band
/// key with probability 1 − (1 − J^rows)^bands: with the default 16 × 8, 0.99996 at J = 0.9, 0.95 at 0.8
/// and 0.06 at 0.5, so candidates are nearly all the near duplicates and few others; each candidate is
/// then checked exactly.
public struct MinHasher: Sendable {
    public let bands: Int
    public let rows: Int
    private let seeds: [UInt64]

    public init(bands: Int = 16, rows: Int = 8) {
        precondition(bands > 0 && rows > 0)
        self.bands = bands
        self.rows = rows
        var state: UInt64 = 0x1D0C_5EED_0000_0001
        self.seeds = (0..<(bands * rows)).map { _ in SplitMix64.next(&state) }
    }

    /// The minimum of each hash function over the shingles; empty for an empty set.
    public func signature(of shingles: ShingleSet) -> [UInt64] {
        if shingles.isEmpty { return [] }
        var minimums = [UInt64](repeating: .max, count: seeds.count)
        minimums.withUnsafeMutableBufferPointer { minimums in
            for shingle in shingles.hashes {
                for index in 0..<seeds.count {
                    let value = SplitMix64.mix(shingle ^ seeds[index])
                    if value < minimums[index] { minimums[index] = value }
                }
            }
        }
        return minimums
    }

    /// One key per band: a hash of that band's `rows` signature values. Equal keys in the same band make
    /// two documents candidates.
    public func bandKeys(of signature: [UInt64]) -> [Int64] {
        guard signature.count == bands * rows else { return [] }
        return (0..<bands).map { band in
            var hash = FNV1a()
            hash.add64(UInt64(band))
            for value in signature[(band * rows)..<((band + 1) * rows)] { hash.add64(value) }
            return Int64(bitPattern: hash.value)
        }
    }
}

/// 64-bit FNV-1a, fed 32- or 64-bit values.
struct FNV1a {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func add(_ scalar: UInt32) {
        var scalar = scalar
        for _ in 0..<4 {
            value ^= UInt64(scalar & 0xFF)
            value &*= 0x0000_0100_0000_01B3
            scalar >>= 8
        }
    }

    mutating func add64(_ word: UInt64) {
        add(UInt32(truncatingIfNeeded: word))
        add(UInt32(truncatingIfNeeded: word >> 32))
    }
}

/// SplitMix64: a seed sequence and a strong 64-bit mixer (used as MinHash's hash family).
enum SplitMix64 {
    static func next(_ state: inout UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return mix(state)
    }

    @inline(__always)
    static func mix(_ input: UInt64) -> UInt64 {
        var z = input
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
