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
        var tokens = 0
        // A run's weight: 1 per ASCII letter or digit, 2 per other letter, mark or number. Rounding up the
        // run's weight / 8 (rather than a per-run rule) keeps the estimate monotonic and subadditive when a
        // run is cut, as ChunkSizeMeasure requires.
        var runWeight = 0

        func endRun() {
            tokens += (runWeight + 7) / 8
            runWeight = 0
        }

        for scalar in text.unicodeScalars {
            let value = scalar.value
            if value < 0x80 {
                switch UInt8(value) {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"):
                    runWeight += 1
                case 0x09...0x0D, 0x20:
                    endRun()
                default:
                    endRun()
                    // Control characters are not tokens; everything else left is punctuation.
                    if value > 0x20 && value != 0x7F { tokens += 1 }
                }
                continue
            }
            let properties = scalar.properties
            if properties.isWhitespace {
                endRun()
            } else if properties.isIdeographic || Self.isKana(value) {
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
        endRun()
        return tokens
    }

    /// Hiragana and Katakana: tokenized per character like ideographs.
    private static func isKana(_ value: UInt32) -> Bool {
        (0x3040...0x30FF).contains(value) || (0x31F0...0x31FF).contains(value) || (0xFF66...0xFF9F).contains(value)
    }
}
