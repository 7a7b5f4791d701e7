import Embedding
import Testing

/// The tokenizer's rules on a tiny vocabulary, where every expected id can be read off by hand.
@Suite struct WordPieceTokenizerTests {
    static let vocabulary = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",  // 0–4
        "hello", "world", "un", "##aff", "##able",  // 5–9
        ",", "!", "cafe", "中", "文",  // 10–14
        "a", "##a", "$", "ab", "##b",  // 15–19
        "σ", "ς", "##ing", "play", "i",  // 20–24
    ]

    let tokenizer: WordPieceTokenizer

    init() throws {
        tokenizer = try WordPieceTokenizer(vocabulary: Self.vocabulary)
    }

    private func pieces(_ text: String) -> [String] {
        tokenizer.wordPieces(Substring(text)).map { tokenizer.token(for: $0)! }
    }

    @Test func wrapsInClassifierAndSeparator() {
        let encoded = tokenizer.encode("Hello, world!")
        #expect(encoded.ids == [2, 5, 10, 6, 11, 3])
        #expect(encoded.attentionMask == [1, 1, 1, 1, 1, 1])
    }

    @Test func emptyAndBlankTextsAreJustTheSpecialTokens() {
        #expect(tokenizer.encode("").ids == [2, 3])
        #expect(tokenizer.encode(" \t\n\u{3000}\u{00A0}").ids == [2, 3])
    }

    @Test func greedyLongestMatchWithContinuations() {
        #expect(pieces("unaffable") == ["un", "##aff", "##able"])
        #expect(pieces("playing") == ["play", "##ing"])
        #expect(pieces("aaa") == ["a", "##a", "##a"])
        #expect(pieces("abb") == ["ab", "##b"])
    }

    @Test func wordWithoutACompleteMatchIsOneUnknown() {
        #expect(pieces("unx hello") == ["[UNK]", "hello"])
    }

    @Test func wordsOverOneHundredCharactersAreUnknown() {
        #expect(pieces(String(repeating: "a", count: 100)).count == 100)
        #expect(pieces(String(repeating: "a", count: 101)) == ["[UNK]"])
    }

    @Test func lowerCasesAndStripsAccents() {
        #expect(pieces("HELLO Café CAFÉ cafe\u{0301}") == ["hello", "cafe", "cafe", "cafe"])
        #expect(pieces("İ") == ["i"])
    }

    @Test func punctuationAndASCIISymbolsSplitWords() {
        #expect(pieces("hello,world$a") == ["hello", ",", "world", "$", "a"])
    }

    @Test func cjkIdeographsAreWordsOfTheirOwn() {
        #expect(pieces("中文") == ["中", "文"])
        #expect(pieces("a中a") == ["a", "中", "a"])
    }

    @Test func controlAndFormatCharactersVanish() {
        #expect(pieces("hel\u{200B}lo wor\u{0000}ld\u{00AD}") == ["hello", "world"])
        #expect(pieces("hello\u{0007}world") == ["[UNK]"])
    }

    @Test func specialTokenLiteralsKeepTheirIds() {
        #expect(tokenizer.encode("a[CLS]b[MASK] [PAD]").ids == [2, 15, 2, 1, 4, 0, 3])
        // Only the exact upper-case literals are special; `[cls]` is punctuation and an unknown word.
        #expect(pieces("[cls]") == ["[UNK]", "[UNK]", "[UNK]"])
    }

    @Test func truncatesToMaxLengthIncludingSpecialTokens() {
        let text = Array(repeating: "hello", count: 300).joined(separator: " ")
        let encoded = tokenizer.encode(text)
        #expect(encoded.count == 256)
        #expect(encoded.ids.first == 2 && encoded.ids.last == 3)
        #expect(tokenizer.encode(text, maxLength: 8).ids == [2, 5, 5, 5, 5, 5, 5, 3])
        #expect(tokenizer.countWordPieces(Substring(text)) == 300)
    }

    @Test func truncationKeepsAPrefixOfThePiecesWhereverTheLimitFalls() {
        let text = "hello, unaffable world! [MASK] aaa中文,,"
        let all = tokenizer.wordPieces(Substring(text))
        for maxLength in 2...(all.count + 3) {
            let expected = [tokenizer.classifierID] + all.prefix(maxLength - 2) + [tokenizer.separatorID]
            #expect(tokenizer.encode(text, maxLength: maxLength).ids == expected, "maxLength \(maxLength)")
        }
    }

    @Test func countMatchesEncodingBelowTheLimit() {
        for text in ["", "hello", "Hello, world! 中文 unaffable", String(repeating: "a ", count: 254)] {
            #expect(tokenizer.encode(text).count == tokenizer.countWordPieces(Substring(text)) + 2)
        }
    }

    @Test func rejectsVocabularyWithoutSpecialTokens() {
        #expect(throws: EmbeddingError.self) { try WordPieceTokenizer(vocabulary: ["a", "b"]) }
    }
}
