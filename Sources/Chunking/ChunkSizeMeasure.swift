/// Measures text in the unit of the chunk budget: characters, or the embedding model's tokens.
///
/// The chunker measures each word and each whitespace gap once and adds the results, instead of
/// re-measuring every candidate chunk, which is what makes chunking linear. That is only correct if a
/// measure keeps three promises:
///
/// - **Subadditive at the chunker's cuts**: splitting text at whitespace, or right after CJK punctuation
///   (`。`, `，`…), never makes the parts add up to less than the whole. Character counts and word-piece
///   tokenizers (which pre-split at whitespace and punctuation) are exactly additive there.
/// - **Monotonic**: a longer prefix of a word is never smaller than a shorter one (used to split words
///   longer than the whole budget).
/// - **Pure**: the same text always has the same size, whatever thread asks. Chunk boundaries are stored
///   and must come out identical when a document is re-processed.
///
/// Special tokens a model adds around each input (`[CLS]`, `[SEP]`) are not text: leave room for them in
/// `ChunkingOptions.maxSize` rather than counting them here.
public protocol ChunkSizeMeasure: Sendable {
    func size(of text: Substring) -> Int
}

/// Counts `Character`s (extended grapheme clusters): what a person would call the text's length.
public struct CharacterMeasure: ChunkSizeMeasure {
    public init() {}

    public func size(of text: Substring) -> Int {
        text.count
    }
}

/// A fast estimate of how many word-pieces a BERT-style tokenizer produces, used until the real tokenizer
/// is wired in.
///
/// Like BERT's pre-tokenizer it counts each punctuation or symbol character and each CJK character as one
/// token and ignores whitespace. A run of letters and digits costs one token per started 8 ASCII
/// characters, non-ASCII letters weighing double (vocabularies cover them less well), so common words cost
/// one token and rare long ones several. It is meant to err high: an overestimate only makes chunks a
/// little smaller, while an underestimate would let the model truncate them.
public struct ApproximateTokenMeasure: ChunkSizeMeasure {
    public init() {}

    public func size(of text: Substring) -> Int {
        if let size = text.utf8.withContiguousStorageIfAvailable(size(utf8:)), let size { return size }
        var estimate = TokenEstimate()
        for scalar in text.unicodeScalars {
            estimate.add(scalar)
        }
        return estimate.finish()
    }

    /// The running count behind `size(of:)`, shared with the chunker's UTF-8 fast path so that both give
    /// identical results.
    struct TokenEstimate {
        private var tokens = 0
        /// The current letter/digit run's weight: 1 per ASCII letter or digit, 2 per other letter, mark or
        /// number. Rounding up the run's weight / 8 (rather than a per-run rule) keeps the estimate monotonic
        /// and subadditive when a run is cut, as `ChunkSizeMeasure` requires.
        private var runWeight = 0

        @inline(__always)
        mutating func addASCII(_ byte: UInt8) {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                runWeight += 1
            case 0x00...0x20, 0x7F:
                // Whitespace separates; control characters are not tokens.
                endRun()
            default:
                endRun()
                tokens += 1
            }
        }

        mutating func add(_ scalar: Unicode.Scalar) {
            if scalar.isASCII {
                addASCII(UInt8(scalar.value))
                return
            }
            let properties = scalar.properties
            if properties.isWhitespace {
                endRun()
            } else if properties.isIdeographic || ApproximateTokenMeasure.isKana(scalar.value) {
                endRun()
                tokens += 1
            } else {
                switch properties.generalCategory {
                case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
                    .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .letterNumber, .otherNumber:
                    runWeight += 2
                case .format, .control, .surrogate, .privateUse, .unassigned:
                    // Zero-width joiners, BOMs, soft hyphens: invisible, no token of their own.
                    break
                default:
                    endRun()
                    tokens += 1
                }
            }
        }

        @inline(__always)
        private mutating func endRun() {
            tokens += (runWeight + 7) / 8
            runWeight = 0
        }

        mutating func finish() -> Int {
            endRun()
            return tokens
        }
    }

    /// Hiragana and Katakana: tokenized per character like ideographs.
    static func isKana(_ value: UInt32) -> Bool {
        (0x3040...0x30FF).contains(value) || (0x31F0...0x31FF).contains(value) || (0xFF66...0xFF9F).contains(value)
    }
}
