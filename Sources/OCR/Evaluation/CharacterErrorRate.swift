/// Character error rate: the edit distance between recognised text and the truth, divided by the
/// truth's length, on whitespace-normalised text.
///
/// Whitespace is normalised (every run of spaces, tabs and line breaks becomes one space; the ends are
/// trimmed) because OCR and transcriptions disagree on line breaks and column gaps, which are layout, not
/// reading errors. Characters are Unicode scalars, as in the usual OCR evaluation tools. Reading order
/// still counts: on multi-column pages a recogniser that reads the columns in another order than the
/// transcription is charged for it.
public enum CharacterErrorRate {
    /// Edit distance and truth length summed over several pages: the corpus CER weighs pages by length.
    public struct Accumulator: Sendable, Equatable {
        public private(set) var errors = 0
        public private(set) var truthLength = 0
        public private(set) var pages = 0

        public init() {}

        public mutating func add(recognized: String, truth: String) {
            let truthScalars = CharacterErrorRate.normalize(truth)
            errors += CharacterErrorRate.distance(CharacterErrorRate.normalize(recognized), truthScalars)
            truthLength += truthScalars.count
            pages += 1
        }

        /// The corpus CER, or nil before any page with truth was added.
        public var rate: Double? { pages == 0 ? nil : Double(errors) / Double(max(truthLength, 1)) }
    }

    /// The CER of one page; 0 for an empty truth read as empty, otherwise at least 1 per extra character.
    public static func rate(recognized: String, truth: String) -> Double {
        var accumulator = Accumulator()
        accumulator.add(recognized: recognized, truth: truth)
        return accumulator.rate ?? 0
    }

    /// The text's scalars with whitespace runs collapsed to one space and the ends trimmed.
    public static func normalize(_ text: String) -> [Unicode.Scalar] {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.unicodeScalars.count)
        var pendingSpace = false
        for scalar in text.unicodeScalars {
            if scalar.properties.isWhitespace {
                pendingSpace = !scalars.isEmpty
                continue
            }
            if pendingSpace { scalars.append(" ") }
            pendingSpace = false
            scalars.append(scalar)
        }
        return scalars
    }

    /// Levenshtein distance (insertions, deletions and substitutions cost 1), in O(n·m) time and O(m)
    /// memory. Pages are a few thousand characters, so this is milliseconds.
    public static func distance(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                for i in 1...a.count {
                    current.withUnsafeMutableBufferPointer { current in
                        previous.withUnsafeBufferPointer { previous in
                            current[0] = i
                            let character = a[i - 1]
                            for j in 1...b.count {
                                let substitution = previous[j - 1] + (character == b[j - 1] ? 0 : 1)
                                current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
                            }
                        }
                    }
                    swap(&previous, &current)
                }
            }
        }
        return previous[b.count]
    }
}
