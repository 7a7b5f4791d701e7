import Foundation

/// The ids of one encoded text, ready for the model.
public struct TokenizedText: Sendable, Equatable {
    /// Vocabulary ids, `[CLS]` first and `[SEP]` last.
    public let ids: [Int32]
    /// 1 for every position of `ids` (the text is not padded; batching pads internally if at all). Kept
    /// because the model's reference output carries it, and so a literal `[PAD]` in a text (id 0) is still
    /// attended to, as in the reference.
    public let attentionMask: [Int32]

    public init(ids: [Int32], attentionMask: [Int32]) {
        self.ids = ids
        self.attentionMask = attentionMask
    }

    /// The number of positions, special tokens included.
    public var count: Int { ids.count }
}

/// BERT's uncased WordPiece tokenizer, id-for-id identical to the one all-MiniLM-L6-v2 was trained with
/// (Hugging Face `tokenizers`: `BertNormalizer`, `BertPreTokenizer`, `WordPiece`, template `[CLS] $A [SEP]`).
///
/// 1. The literal special tokens `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]` (exact case) in the raw text
///    become their ids; the text between them is tokenised separately.
/// 2. Normalisation: drop control and format characters, NUL and U+FFFD; other whitespace becomes a space;
///    CJK ideographs get spaces around them; canonical decomposition (NFD) then dropping non-spacing marks
///    strips accents; lower-casing.
/// 3. Pre-tokenisation: split at whitespace; every punctuation character is a word of its own.
/// 4. WordPiece: greedy longest match from the left, continuations prefixed `##`; a word with no complete
///    match, or longer than 100 characters, is one `[UNK]`.
///
/// Immutable after `init`, hence `Sendable`: call it from any number of threads.
public final class WordPieceTokenizer: Sendable {
    /// The model's `max_seq_length`: at most 256 positions, `[CLS]` and `[SEP]` included.
    public static let defaultMaxLength = 256
    /// WordPiece's `max_input_chars_per_word`: longer words are `[UNK]` without trying.
    static let maxCharactersPerWord = 100

    public let padID: Int32
    public let unknownID: Int32
    public let classifierID: Int32
    public let separatorID: Int32
    public let maskID: Int32
    /// The number of entries in the vocabulary (30,522 for this model).
    public var vocabularySize: Int { tokens.count }

    private let tokens: [String]
    private let trie: VocabularyTrie
    /// The trie node after `##`: where continuation pieces start matching.
    private let continuationNode: Int32
    /// Special-token literals matched in the raw text, as UTF-8, with their ids.
    private let specialLiterals: [(bytes: [UInt8], id: Int32)]

    /// Loads a BERT `vocab.txt` (one token per line; the line number, from 0, is the id).
    public convenience init(vocabularyPath: String) throws(EmbeddingError) {
        guard FileManager.default.fileExists(atPath: vocabularyPath) else {
            throw .modelNotFound(vocabularyPath)
        }
        guard let data = FileManager.default.contents(atPath: vocabularyPath),
            let text = String(data: data, encoding: .utf8)
        else {
            throw .invalidModel(vocabularyPath, "not readable as UTF-8 text")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
        }
        if lines.last == "" {
            lines.removeLast()
        }
        try self.init(vocabulary: lines, source: vocabularyPath)
    }

    /// A tokenizer over `vocabulary`, where a token's id is its index. It must contain the five special
    /// tokens and `##`-prefixed continuations as BERT vocabularies do.
    public convenience init(vocabulary: [String]) throws(EmbeddingError) {
        try self.init(vocabulary: vocabulary, source: "vocabulary")
    }

    private init(vocabulary: [String], source: String) throws(EmbeddingError) {
        var ids: [String: Int32] = [:]
        for (index, token) in vocabulary.enumerated() {
            if ids.updateValue(Int32(index), forKey: token) != nil {
                throw .invalidModel(source, "token on line \(index + 1) appears twice")
            }
        }
        func require(_ token: String) throws(EmbeddingError) -> Int32 {
            guard let id = ids[token] else { throw .invalidModel(source, "no \(token) token") }
            return id
        }
        padID = try require("[PAD]")
        unknownID = try require("[UNK]")
        classifierID = try require("[CLS]")
        separatorID = try require("[SEP]")
        maskID = try require("[MASK]")
        tokens = vocabulary
        trie = VocabularyTrie(tokens: vocabulary)
        continuationNode = trie.walk(from: VocabularyTrie.root, bytes: "##".utf8) ?? VocabularyTrie.noToken
        specialLiterals = [
            (Array("[PAD]".utf8), padID), (Array("[UNK]".utf8), unknownID), (Array("[CLS]".utf8), classifierID),
            (Array("[SEP]".utf8), separatorID), (Array("[MASK]".utf8), maskID),
        ]
    }

    /// The model's input for `text`: `[CLS]`, the first `maxLength - 2` word-pieces, `[SEP]`.
    public func encode(_ text: String, maxLength: Int = WordPieceTokenizer.defaultMaxLength) -> TokenizedText {
        var ids: [Int32] = [classifierID]
        ids.reserveCapacity(min(maxLength, text.utf8.count + 2))
        var encoder = Encoder(tokenizer: self)
        encoder.appendPieces(of: Substring(text), to: &ids, limit: max(maxLength, 2) - 2)
        ids.append(separatorID)
        return TokenizedText(ids: ids, attentionMask: [Int32](repeating: 1, count: ids.count))
    }

    /// The number of word-pieces of `text` alone: no special tokens, no truncation. A chunk whose count is
    /// at most `defaultMaxLength - 2` (254) reaches the model whole.
    public func countWordPieces(_ text: Substring) -> Int {
        wordPieces(text).count
    }

    /// The word-piece ids of `text` alone: no special tokens, no truncation.
    public func wordPieces(_ text: Substring) -> [Int32] {
        var ids: [Int32] = []
        var encoder = Encoder(tokenizer: self)
        encoder.appendPieces(of: text, to: &ids, limit: .max)
        return ids
    }

    /// The vocabulary entry of `id` (`"##ing"`, `"[CLS]"`), or nil when `id` is out of range.
    public func token(for id: Int32) -> String? {
        tokens.indices.contains(Int(id)) ? tokens[Int(id)] : nil
    }

    // MARK: - Encoding

    /// The buffers of one encoding call, reused from word to word so a text costs a few allocations, not
    /// one per word or piece.
    private struct Encoder {
        let tokenizer: WordPieceTokenizer
        /// The normalised scalars of the current segment.
        var normalized: [Unicode.Scalar] = []
        /// The current word, as UTF-8, and its length in characters (scalars).
        var word: [UInt8] = []
        var wordCharacters = 0
        /// The pieces of the current word, kept until the word is known not to be `[UNK]`.
        var pieces: [Int32] = []

        init(tokenizer: WordPieceTokenizer) {
            self.tokenizer = tokenizer
        }

        /// Appends the word-pieces of `text` to `ids`, at most `limit` of them.
        mutating func appendPieces(of text: Substring, to ids: inout [Int32], limit: Int) {
            let stop = ids.count + limit
            var segmentStart = text.startIndex
            var index = text.utf8.startIndex
            while index < text.utf8.endIndex, ids.count < stop {
                guard text.utf8[index] == UInt8(ascii: "["), let (literal, id) = specialLiteral(in: text, at: index)
                else {
                    text.utf8.formIndex(after: &index)
                    continue
                }
                appendSegment(text[segmentStart..<index], to: &ids, stop: stop)
                if ids.count < stop {
                    ids.append(id)
                }
                index = text.utf8.index(index, offsetBy: literal)
                segmentStart = index
            }
            if ids.count < stop {
                appendSegment(text[segmentStart...], to: &ids, stop: stop)
            }
        }

        /// The special token whose literal starts at `index`: its length in bytes and its id.
        private func specialLiteral(in text: Substring, at index: Substring.Index) -> (Int, Int32)? {
            let rest = text.utf8[index...]
            for (bytes, id) in tokenizer.specialLiterals where rest.starts(with: bytes) {
                return (bytes.count, id)
            }
            return nil
        }

        /// Normalises, splits and word-pieces a stretch of text that holds no special-token literal.
        private mutating func appendSegment(_ segment: Substring, to ids: inout [Int32], stop: Int) {
            guard !segment.isEmpty else { return }
            normalize(segment)
            word.removeAll(keepingCapacity: true)
            wordCharacters = 0
            for scalar in normalized {
                if ids.count >= stop { return }
                if scalar == " " || scalar.isBertWhitespace {
                    flushWord(to: &ids, stop: stop)
                } else if scalar.isBertPunctuation {
                    flushWord(to: &ids, stop: stop)
                    append(scalar)
                    flushWord(to: &ids, stop: stop)
                } else {
                    append(scalar)
                }
            }
            flushWord(to: &ids, stop: stop)
        }

        /// BERT normalisation of `segment` into `normalized` (see the type's documentation for the steps).
        /// ASCII takes a short path; the rest goes through Foundation's NFD, once per segment, because
        /// canonical reordering of marks needs their neighbours.
        private mutating func normalize(_ segment: Substring) {
            normalized.removeAll(keepingCapacity: true)
            var needsDecomposition = false
            for scalar in segment.unicodeScalars {
                switch scalar.value {
                case 0x09, 0x0A, 0x0D, 0x20:
                    normalized.append(" ")
                case 0x00..<0x20, 0x7F:
                    continue
                case 0x41...0x5A:
                    normalized.append(Unicode.Scalar(UInt8(scalar.value) + 0x20))
                case 0x21..<0x7F:
                    normalized.append(scalar)
                default:
                    if scalar.isBertRemovedCharacter {
                        continue
                    } else if scalar.isBertWhitespace {
                        normalized.append(" ")
                    } else if scalar.isBertChineseCharacter {
                        normalized.append(" ")
                        normalized.append(scalar)
                        normalized.append(" ")
                    } else {
                        normalized.append(scalar)
                        needsDecomposition = true
                    }
                }
            }
            guard needsDecomposition else { return }
            let decomposed = String(String.UnicodeScalarView(normalized)).decomposedStringWithCanonicalMapping
            normalized.removeAll(keepingCapacity: true)
            for scalar in decomposed.unicodeScalars {
                if scalar.isASCII {
                    // `É` decomposes to an ASCII `E` that the first pass has not lower-cased.
                    let byte = UInt8(scalar.value)
                    normalized.append(Unicode.Scalar((0x41...0x5A).contains(byte) ? byte + 0x20 : byte))
                } else if scalar.isBertStrippedMark {
                    continue
                } else if scalar.properties.changesWhenLowercased {
                    normalized.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
                } else {
                    normalized.append(scalar)
                }
            }
        }

        private mutating func append(_ scalar: Unicode.Scalar) {
            word.append(contentsOf: scalar.utf8)
            wordCharacters += 1
        }

        /// Word-pieces the current word (greedy longest match) and starts a new one.
        private mutating func flushWord(to ids: inout [Int32], stop: Int) {
            defer {
                word.removeAll(keepingCapacity: true)
                wordCharacters = 0
            }
            guard wordCharacters > 0, ids.count < stop else { return }
            guard wordCharacters <= WordPieceTokenizer.maxCharactersPerWord else {
                ids.append(tokenizer.unknownID)
                return
            }
            pieces.removeAll(keepingCapacity: true)
            var start = 0
            while start < word.count {
                let node = start == 0 ? VocabularyTrie.root : tokenizer.continuationNode
                guard node != VocabularyTrie.noToken,
                    let match = tokenizer.trie.longestMatch(in: word, from: start, to: word.count, startingAt: node)
                else {
                    ids.append(tokenizer.unknownID)
                    return
                }
                pieces.append(match.id)
                start = match.end
            }
            ids.append(contentsOf: pieces.prefix(stop - ids.count))
        }
    }
}
