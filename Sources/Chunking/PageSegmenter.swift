/// How good a place the gap after a segment is for ending a chunk, weakest first.
enum Boundary: Int, Comparable {
    /// Inside a word that had to be cut because it alone exceeds the budget.
    case none
    /// Between words.
    case word
    /// A single line break that does not end a sentence (hard-wrapped text, list items, `<div>`s).
    case line
    /// After `.`, `!`, `?`, `…` or CJK full stops, before something that is not lowercase.
    case sentence
    /// A blank line (or paragraph separator).
    case paragraph

    static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A word (maximal run of non-whitespace), or a piece of one, with everything packing needs precomputed.
struct Segment {
    /// Byte range in the page's UTF-8.
    var utf8Start: Int
    var utf8End: Int
    /// Unicode-scalar range in the page's text (what `Chunk` offsets use).
    var scalarStart: Int
    var scalarEnd: Int
    /// The segment's size by the measure.
    var size: Int
    /// Size of the whitespace between this segment and the next (0 after the last).
    var gapSize = 0
    /// How good a chunk end the gap after this segment is.
    var breakAfter = Boundary.none
}

/// Splits one page into segments in a single pass over its UTF-8 bytes, measuring each word and each gap
/// once. Decoding scalars by hand keeps byte offsets (for slicing) and scalar offsets (for `Chunk`) in step
/// without any `String.Index` arithmetic in the hot loop.
///
/// Generic over the measure so that, for the built-in measures, the per-word calls are direct and can use
/// their UTF-8 fast path (see `Chunker.chunks(pages:)`).
struct PageSegmenter<Measure: UTF8ChunkSizeMeasure> {
    let text: String
    let bytes: UnsafeBufferPointer<UInt8>
    let measure: Measure
    let maxSize: Int
    /// Sizes of the two commonest gaps, measured once per chunker call instead of once per gap.
    let spaceSize: Int
    let newlineSize: Int

    /// What the scan remembers about the previous word to classify the gap after it.
    private struct WordEnding {
        /// The last scalar that is not closing punctuation (quotes, brackets).
        var lastScalar: UInt32 = 0
        /// The word's bytes, for the abbreviation check.
        var utf8Range = 0..<0
        /// The boundary a CJK punctuation mark forced inside a whitespace-free run, if any.
        var cjkBreak: Boundary?
    }

    func segments(into segments: inout [Segment]) {
        segments.removeAll(keepingCapacity: true)
        let count = bytes.count
        var index = 0
        var scalarIndex = 0
        // The last segment is held back until the gap after it is known, so that it is appended once,
        // complete, instead of being patched in place.
        var pending: (segment: Segment, ending: WordEnding)?

        while true {
            // The gap: whitespace up to the next word.
            let gapStart = index
            var newlines = 0
            while index < count {
                if bytes[index] == 0x20 {  // by far the commonest gap
                    index += 1
                    scalarIndex += 1
                    continue
                }
                let (value, length) = scalar(at: index)
                guard ScalarClass.isWhitespace(value) else { break }
                newlines += ScalarClass.newlineWeight(value, followedByLineFeed: byte(at: index + length) == 0x0A)
                index += length
                scalarIndex += 1
            }
            guard index < count else { break }

            let wordStart = index
            let wordScalarStart = scalarIndex
            if let (finished, ending) = pending {
                var segment = finished
                segment.gapSize = gapSize(gapStart..<wordStart)
                segment.breakAfter = classify(ending: ending, newlines: newlines, nextScalar: scalar(at: index).value)
                segments.append(segment)
            }

            // The word: up to whitespace, or just after CJK punctuation (CJK has no spaces to break at).
            var ending = WordEnding()
            while index < count {
                let lead = bytes[index]
                if lead < 0x80 {
                    // ASCII: no CJK punctuation, and no decoding needed.
                    if lead <= 0x20 && (lead == 0x20 || (0x09...0x0D).contains(lead)) { break }
                    let isClosing = ScalarClass.isClosingASCII(lead)
                    if ending.cjkBreak != nil && !isClosing { break }
                    if !isClosing { ending.lastScalar = UInt32(lead) }
                    index &+= 1
                    scalarIndex &+= 1
                    continue
                }
                let (value, length) = scalar(at: index)
                if ScalarClass.isWhitespace(value) { break }
                let isClosing = ScalarClass.isClosingPunctuation(value)
                if ending.cjkBreak != nil && !isClosing { break }
                if let boundary = ScalarClass.cjkBoundary(value) { ending.cjkBreak = boundary }
                if !isClosing { ending.lastScalar = value }
                index += length
                scalarIndex += 1
            }
            ending.utf8Range = wordStart..<index
            pending = (word(wordStart..<index, scalars: wordScalarStart..<scalarIndex, into: &segments), ending)
        }
        if let pending { segments.append(pending.segment) }
    }

    // MARK: - Words

    /// The segment for a word. A word that alone exceeds the budget is cut into pieces at character
    /// boundaries: all but the last are appended to `segments`, the last is returned.
    private func word(_ range: Range<Int>, scalars: Range<Int>, into segments: inout [Segment]) -> Segment {
        let size = size(of: range)
        guard size > maxSize else {
            return Segment(
                utf8Start: range.lowerBound,
                utf8End: range.upperBound,
                scalarStart: scalars.lowerBound,
                scalarEnd: scalars.upperBound,
                size: size
            )
        }
        // Rare (URLs, base64, unspaced scripts), so clarity beats speed: binary-search the longest prefix
        // that fits, using the measure's monotonicity.
        let word = substring(range)
        let boundaries = Array(word.indices) + [word.endIndex]
        var pieceStart = 0
        var scalarStart = scalars.lowerBound
        while true {
            var low = pieceStart + 1
            var high = boundaries.count - 1
            while low < high {
                let middle = (low + high + 1) / 2
                if measure.size(of: word[boundaries[pieceStart]..<boundaries[middle]]) <= maxSize {
                    low = middle
                } else {
                    high = middle - 1
                }
            }
            // `low` is at least one character past the start, even if that character alone is too big:
            // progress matters more than a budget no text can meet.
            let piece = word[boundaries[pieceStart]..<boundaries[low]]
            let scalarEnd = scalarStart + piece.unicodeScalars.count
            let segment = Segment(
                utf8Start: text.utf8.distance(from: text.startIndex, to: piece.startIndex),
                utf8End: text.utf8.distance(from: text.startIndex, to: piece.endIndex),
                scalarStart: scalarStart,
                scalarEnd: scalarEnd,
                size: measure.size(of: piece)
            )
            guard low < boundaries.count - 1 else { return segment }
            segments.append(segment)
            pieceStart = low
            scalarStart = scalarEnd
        }
    }

    private func gapSize(_ range: Range<Int>) -> Int {
        switch range.count {
        case 0:
            return 0
        case 1 where bytes[range.lowerBound] == 0x20:
            return spaceSize
        case 1 where bytes[range.lowerBound] == 0x0A:
            return newlineSize
        default:
            return size(of: range)
        }
    }

    private func size(of range: Range<Int>) -> Int {
        measure.size(utf8: UnsafeBufferPointer(rebasing: bytes[range])) ?? measure.size(of: substring(range))
    }

    /// The page text for a byte range (O(1): UTF-8 offsets map directly to native string indices).
    private func substring(_ range: Range<Int>) -> Substring {
        let utf8 = text.utf8
        let start = utf8.index(utf8.startIndex, offsetBy: range.lowerBound)
        let end = utf8.index(start, offsetBy: range.count)
        return text[start..<end]
    }

    // MARK: - Boundaries

    private func classify(ending: WordEnding, newlines: Int, nextScalar: UInt32) -> Boundary {
        if newlines >= 2 { return .paragraph }
        if let cjkBreak = ending.cjkBreak { return max(cjkBreak, newlines == 1 ? .line : .word) }
        if ScalarClass.isSentenceTerminator(ending.lastScalar), !ScalarClass.isLowercase(nextScalar),
            !isAbbreviation(ending)
        {
            return .sentence
        }
        return newlines == 1 ? .line : .word
    }

    /// `Dr.`, `e.g.`, initials like `J.`: a full stop that usually does not end a sentence.
    private func isAbbreviation(_ ending: WordEnding) -> Bool {
        guard ending.lastScalar == 0x2E, ending.utf8Range.count <= 8 else { return false }
        // The letters before the final full stop, without closing or opening punctuation around them.
        guard let stop = bytes[ending.utf8Range].lastIndex(of: 0x2E) else { return false }
        let stem = bytes[ending.utf8Range.lowerBound..<stop].drop { !ScalarClass.isASCIIAlphanumeric($0) }
        guard !stem.isEmpty else { return false }
        let word = String(decoding: stem.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
        return word.utf8.count == 1 || ScalarClass.abbreviations.contains(word)
    }

    // MARK: - Scalars

    private func byte(at index: Int) -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    /// Decodes the scalar starting at `index`; the bytes come from a `String`, so they are valid UTF-8.
    @inline(__always)
    private func scalar(at index: Int) -> (value: UInt32, length: Int) {
        let lead = UInt32(bytes[index])
        if lead < 0x80 { return (lead, 1) }
        if lead < 0xE0 {
            return ((lead & 0x1F) << 6 | UInt32(bytes[index + 1] & 0x3F), 2)
        }
        if lead < 0xF0 {
            return ((lead & 0x0F) << 12 | UInt32(bytes[index + 1] & 0x3F) << 6 | UInt32(bytes[index + 2] & 0x3F), 3)
        }
        let value =
            (lead & 0x07) << 18 | UInt32(bytes[index + 1] & 0x3F) << 12 | UInt32(bytes[index + 2] & 0x3F) << 6
            | UInt32(bytes[index + 3] & 0x3F)
        return (value, 4)
    }
}

/// Character classes the segmenter needs, on raw scalar values so the hot loop never builds a
/// `Unicode.Scalar` or looks up properties for ASCII.
enum ScalarClass {
    /// Lowercased words that are usually abbreviations when followed by a full stop.
    static let abbreviations: Set<String> = [
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "e.g", "i.e", "fig", "cf", "al", "approx",
    ]

    static func isASCIIAlphanumeric(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }

    /// Unicode's White_Space property, spelled out so the hot loop needs no property lookup.
    static func isWhitespace(_ value: UInt32) -> Bool {
        if value < 0x80 { return value == 0x20 || (0x09...0x0D).contains(value) }
        switch value {
        case 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// How many line breaks a whitespace scalar stands for; a form feed or paragraph separator counts as a
    /// blank line.
    static func newlineWeight(_ value: UInt32, followedByLineFeed: Bool) -> Int {
        switch value {
        case 0x0A, 0x0B, 0x85, 0x2028: 1
        case 0x0D: followedByLineFeed ? 0 : 1
        case 0x0C, 0x2029: 2
        default: 0
        }
    }

    static func isSentenceTerminator(_ value: UInt32) -> Bool {
        switch value {
        case 0x2E, 0x21, 0x3F, 0x2026, 0x203C, 0x2047...0x2049, 0x3002, 0xFF01, 0xFF0E, 0xFF1F, 0xFF61: true
        default: false
        }
    }

    /// `isClosingPunctuation` for ASCII, as one bit test: `"`, `'`, `)`, `]`, `}`.
    @inline(__always)
    static func isClosingASCII(_ byte: UInt8) -> Bool {
        let low: UInt64 = 1 << 0x22 | 1 << 0x27 | 1 << 0x29
        let high: UInt64 = 1 << (0x5D - 64) | 1 << (0x7D - 64)
        return byte < 64 ? low & (1 << UInt64(byte)) != 0 : high & (1 << UInt64(byte & 63)) != 0
    }

    /// Punctuation that may follow a sentence terminator and still belongs to the sentence: `."`, `.)`.
    static func isClosingPunctuation(_ value: UInt32) -> Bool {
        switch value {
        case 0x22, 0x27, 0x29, 0x5D, 0x7D, 0xBB, 0x2019, 0x201D, 0x203A, 0x3009, 0x300B, 0x300D, 0x300F, 0x3011,
            0xFF09, 0xFF3D:
            true
        default: false
        }
    }

    /// CJK punctuation that ends a sentence (`。！？`) or a clause (`，、；：`), where unspaced text may be cut.
    static func cjkBoundary(_ value: UInt32) -> Boundary? {
        switch value {
        case 0x3002, 0xFF01, 0xFF1F, 0xFF61: .sentence
        case 0x3001, 0xFF0C, 0xFF1A, 0xFF1B, 0xFF64: .word
        default: nil
        }
    }

    static func isLowercase(_ value: UInt32) -> Bool {
        if value < 0x80 { return (0x61...0x7A).contains(value) }
        return Unicode.Scalar(value)?.properties.isLowercase ?? false
    }
}
