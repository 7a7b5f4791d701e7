import Testing

@testable import Chunking

@Suite("Chunker")
struct ChunkerTests {
    typealias Page = (number: Int, text: String)

    /// The page text between two scalar offsets.
    private func slice(_ text: String, _ range: Range<Int>) -> String {
        let scalars = Array(text.unicodeScalars)
        return String(String.UnicodeScalarView(scalars[range]))
    }

    private func words(_ text: some StringProtocol) -> [Substring] {
        text.split(whereSeparator: \.isWhitespace).map { Substring($0) }
    }

    /// The properties every chunking must have, whatever the input.
    private func checkInvariants(
        _ chunks: [Chunk],
        pages: [Page],
        options: ChunkingOptions,
        measure: any ChunkSizeMeasure,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(chunks.map(\.index) == Array(chunks.indices), sourceLocation: sourceLocation)
        for page in pages {
            let pageChunks = chunks.filter { $0.page == page.number }
            var covered: [Substring] = []
            var previous: Chunk?
            for chunk in pageChunks {
                #expect(!chunk.text.isEmpty, sourceLocation: sourceLocation)
                #expect(chunk.endPage == chunk.page, sourceLocation: sourceLocation)
                #expect(
                    measure.size(of: chunk.text[...]) <= options.maxSize, "chunk \(chunk.index) too big",
                    sourceLocation: sourceLocation)
                // Offsets map back to the page text exactly.
                #expect(
                    slice(page.text, chunk.startOffset..<chunk.endOffset) == chunk.text, sourceLocation: sourceLocation)
                #expect(
                    chunk.text.first?.isWhitespace == false && chunk.text.last?.isWhitespace == false,
                    sourceLocation: sourceLocation)
                if let previous {
                    #expect(chunk.startOffset > previous.startOffset, sourceLocation: sourceLocation)
                    #expect(chunk.endOffset > previous.endOffset, sourceLocation: sourceLocation)
                    // Overlap is bounded by the option (and half the budget).
                    if chunk.startOffset < previous.endOffset {
                        let shared = slice(page.text, chunk.startOffset..<previous.endOffset)
                        #expect(
                            measure.size(of: shared[...]) <= min(options.overlap, options.maxSize / 2),
                            sourceLocation: sourceLocation)
                    }
                }
                // Merge: the part of this chunk not already covered by the previous one.
                let newStart = max(chunk.startOffset, previous?.endOffset ?? 0)
                if newStart < chunk.endOffset {
                    let fresh = slice(page.text, newStart..<chunk.endOffset)
                    // A new region that starts mid-word continues the previous word (a cut long word).
                    var freshWords = words(fresh)
                    if let previous, newStart == previous.endOffset, !fresh.first!.isWhitespace,
                        let last = covered.popLast(), !freshWords.isEmpty
                    {
                        freshWords[0] = Substring(String(last) + freshWords[0])
                    }
                    covered += freshWords
                }
                previous = chunk
            }
            // No word lost, none reordered.
            #expect(covered == words(page.text), "page \(page.number) words", sourceLocation: sourceLocation)
        }
    }

    // MARK: - Basics

    @Test func emptyInput() {
        let chunker = Chunker(measure: CharacterMeasure())
        #expect(chunker.chunks(pages: []).isEmpty)
        #expect(chunker.chunks(pages: [(1, ""), (2, " \n\t\u{00A0}\n "), (3, "\u{3000}")]).isEmpty)
    }

    @Test func shortPageIsOneChunk() {
        let chunks = Chunker(measure: ApproximateTokenMeasure()).chunks(pages: [(1, "  Hello, world.\n\n")])
        #expect(chunks == [Chunk(index: 0, text: "Hello, world.", page: 1, endPage: 1, startOffset: 2, endOffset: 15)])
    }

    @Test(arguments: [(40, 8), (100, 20), (200, 30), (200, 0), (15, 100), (1, 0), (3, 1)])
    func invariantsOnProse(maxSize: Int, overlap: Int) {
        let options = ChunkingOptions(maxSize: maxSize, overlap: overlap)
        let pages: [Page] = (1...3).map { ($0, Prose.text(characters: 3000, seed: UInt64($0))) }
        for measure in [CharacterMeasure(), ApproximateTokenMeasure()] as [any ChunkSizeMeasure] {
            let chunks = Chunker(options: options, measure: measure).chunks(pages: pages)
            #expect(!chunks.isEmpty)
            checkInvariants(chunks, pages: pages, options: options, measure: measure)
        }
    }

    @Test func invariantsOnUnusualText() {
        let pages: [Page] = [
            (1, "Émile’s café — naïve façade. Zoë said: “Ça va?” 🙂🙃 👩‍👩‍👧 family emoji.\r\nNext line\u{2028}sep"),
            (2, "日本語の文章です。句読点で区切ります、そして続きます。とても長い文章がここにあります！本当ですか？"),
            (3, String(repeating: "abc/def-ghi_jkl ", count: 40) + "\n\n\n" + String(repeating: "x", count: 700)),
            (7, "e\u{301}\u{301} combining   marks\t\ttabs \u{200B}zero-width " + String(repeating: "é", count: 300)),
        ]
        for options in [ChunkingOptions(maxSize: 30, overlap: 6), ChunkingOptions(maxSize: 64, overlap: 16)] {
            for measure in [CharacterMeasure(), ApproximateTokenMeasure()] as [any ChunkSizeMeasure] {
                let chunks = Chunker(options: options, measure: measure).chunks(pages: pages)
                checkInvariants(chunks, pages: pages, options: options, measure: measure)
                #expect(Set(chunks.map(\.page)) == [1, 2, 3, 7])
            }
        }
    }

    // MARK: - Boundaries

    @Test func prefersParagraphEnds() {
        // The first paragraph ends at ~60 % of the budget; a sentence ends later, at ~90 %.
        let first = "Alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu."  // 68 characters
        let second = "Nu xi omicron pi rho. Sigma tau upsilon phi chi psi omega and more words after that."
        let chunks = Chunker(options: ChunkingOptions(maxSize: 110, overlap: 0), measure: CharacterMeasure())
            .chunks(pages: [(1, first + "\n\n" + second)])
        #expect(chunks.first?.text == first)
    }

    @Test func thenSentenceEnds() {
        let text = "One two three four five six seven eight nine ten. Eleven twelve thirteen fourteen fifteen sixteen."
        let chunks = Chunker(options: ChunkingOptions(maxSize: 80, overlap: 0), measure: CharacterMeasure())
            .chunks(pages: [(1, text)])
        #expect(
            chunks.map(\.text) == [
                "One two three four five six seven eight nine ten.",
                "Eleven twelve thirteen fourteen fifteen sixteen.",
            ])
    }

    @Test func abbreviationsAndLowercaseDoNotEndSentences() {
        // Sentence ends exist only after "ends." — "Dr." and "e.g. lowercase" are not sentence ends.
        let text = "Talk to Dr. Watson about it, e.g. tomorrow or so ends. Then something else happens here later."
        let chunks = Chunker(options: ChunkingOptions(maxSize: 70, overlap: 0), measure: CharacterMeasure())
            .chunks(pages: [(1, text)])
        #expect(chunks.first?.text == "Talk to Dr. Watson about it, e.g. tomorrow or so ends.")
    }

    @Test func neverTinyChunksJustToHitAParagraph() {
        // A paragraph break right at the start must not produce a 2-word chunk.
        let text = "Short intro.\n\n" + String(repeating: "word ", count: 200)
        let chunks = Chunker(options: ChunkingOptions(maxSize: 100, overlap: 0), measure: CharacterMeasure())
            .chunks(pages: [(1, text)])
        #expect(chunks.dropLast().allSatisfy { $0.text.count >= 50 })
    }

    @Test func wordsAreNotCutUnlessTooLong() {
        let text = Prose.text(characters: 5000, seed: 42)
        let chunks = Chunker(options: ChunkingOptions(maxSize: 50, overlap: 10), measure: CharacterMeasure())
            .chunks(pages: [(1, text)])
        let vocabulary = Set(Prose.vocabulary)
        for chunk in chunks {
            for word in words(chunk.text) {
                let bare = word.lowercased().trimmingPunctuation()
                #expect(vocabulary.contains(bare), "cut word \(word)")
            }
        }
    }

    @Test func enormousWordIsSplit() {
        let word = String(repeating: "a", count: 1000)
        let chunks = Chunker(options: ChunkingOptions(maxSize: 100, overlap: 20), measure: CharacterMeasure())
            .chunks(pages: [(1, "before " + word + " after")])
        #expect(chunks.map(\.text).joined().contains(word))
        #expect(chunks.allSatisfy { $0.text.count <= 100 })
        #expect(chunks.filter { $0.text.allSatisfy { $0 == "a" } }.count >= 9)
        checkInvariants(
            chunks, pages: [(1, "before " + word + " after")], options: ChunkingOptions(maxSize: 100, overlap: 20),
            measure: CharacterMeasure())
    }

    @Test func enormousWordIsSplitBetweenCharactersNotInsideThem() {
        let word = String(repeating: "👩‍👩‍👧", count: 30)  // 30 Characters of 5 scalars each
        let chunks = Chunker(options: ChunkingOptions(maxSize: 7, overlap: 0), measure: CharacterMeasure())
            .chunks(pages: [(1, word)])
        #expect(chunks.map { $0.text.count } == [7, 7, 7, 7, 2])
        #expect(chunks.map(\.text).joined() == word)
        #expect(chunks.last?.endOffset == 150)
    }

    // MARK: - Overlap

    @Test func overlapIsPresentAndBounded() {
        let text = Prose.text(characters: 4000, seed: 9)
        let options = ChunkingOptions(maxSize: 60, overlap: 12)
        let measure = ApproximateTokenMeasure()
        let chunks = Chunker(options: options, measure: measure).chunks(pages: [(1, text)])
        #expect(chunks.count > 5)
        var overlapping = 0
        for (previous, next) in zip(chunks, chunks.dropFirst()) where next.startOffset < previous.endOffset {
            overlapping += 1
            let shared = slice(text, next.startOffset..<previous.endOffset)
            #expect(previous.text.hasSuffix(shared) && next.text.hasPrefix(shared))
            #expect(measure.size(of: shared[...]) <= 12)
        }
        #expect(overlapping >= chunks.count - 2)
        checkInvariants(chunks, pages: [(1, text)], options: options, measure: measure)
    }

    @Test func overlapStartsAtASentenceWhenOneIsClose() {
        let text = "First sentence is here and goes on for a while. Short one. Then the next sentence continues onward."
        let chunks = Chunker(options: ChunkingOptions(maxSize: 60, overlap: 20), measure: CharacterMeasure())
            .chunks(pages: [(1, text)])
        #expect(chunks.count == 2)
        #expect(chunks.first?.text == "First sentence is here and goes on for a while. Short one.")
        #expect(chunks.last?.text.hasPrefix("Short one. Then") == true)
    }

    @Test func zeroOverlapMeansDisjointChunks() {
        let text = Prose.text(characters: 3000, seed: 3)
        let chunks = Chunker(options: ChunkingOptions(maxSize: 40, overlap: 0), measure: ApproximateTokenMeasure())
            .chunks(pages: [(1, text)])
        for (previous, next) in zip(chunks, chunks.dropFirst()) {
            #expect(next.startOffset > previous.endOffset)
        }
    }

    // MARK: - Pages, offsets, determinism

    @Test func pagesAreChunkedSeparately() {
        let pages: [Page] = [(1, "Page one text."), (2, "   "), (3, "Page three. More text here.")]
        let chunks = Chunker(options: ChunkingOptions(maxSize: 1000, overlap: 0), measure: CharacterMeasure())
            .chunks(pages: pages)
        #expect(
            chunks == [
                Chunk(index: 0, text: "Page one text.", page: 1, endPage: 1, startOffset: 0, endOffset: 14),
                Chunk(
                    index: 1, text: "Page three. More text here.", page: 3, endPage: 3, startOffset: 0, endOffset: 27),
            ])
    }

    @Test func offsetsCountUnicodeScalars() {
        let text = "🙂 café\r\nnaïve 日本"
        let chunks = Chunker(options: ChunkingOptions(maxSize: 4, overlap: 0), measure: CharacterMeasure())
            .chunks(pages: [(5, text)])
        #expect(chunks.map(\.text) == ["🙂", "café", "naïv", "e 日本"])
        #expect(chunks.map(\.startOffset) == [0, 2, 8, 12])
        #expect(chunks.map(\.endOffset) == [1, 6, 12, 16])
    }

    @Test func deterministic() {
        let pages: [Page] = (1...5).map { ($0, Prose.text(characters: 2500, seed: UInt64(100 + $0))) }
        let chunker = Chunker(options: ChunkingOptions(maxSize: 64, overlap: 16), measure: ApproximateTokenMeasure())
        let first = chunker.chunks(pages: pages)
        #expect(chunker.chunks(pages: pages) == first)
        #expect(Chunker(options: chunker.options, measure: ApproximateTokenMeasure()).chunks(pages: pages) == first)
    }

    @Test func anyMeasureWorks() {
        // A measure the chunker knows nothing about goes through `size(of:)` only.
        struct WordCount: ChunkSizeMeasure {
            func size(of text: Substring) -> Int { text.split(whereSeparator: \.isWhitespace).count }
        }
        let options = ChunkingOptions(maxSize: 25, overlap: 5)
        let pages: [Page] = [
            (1, Prose.text(characters: 3000, seed: 11)), (2, "单词 " + String(repeating: "x", count: 50)),
        ]
        let chunks = Chunker(options: options, measure: WordCount()).chunks(pages: pages)
        checkInvariants(chunks, pages: pages, options: options, measure: WordCount())
        // Every chunk of the prose page but the last fills at least half the budget.
        #expect(chunks.filter { $0.page == 1 }.dropLast().allSatisfy { words($0.text).count >= 12 })
    }

    @Test func optionsDefaults() {
        let options = ChunkingOptions()
        #expect(options.maxSize == 200 && options.overlap == 30)
        #expect(ChunkingOptions(maxSize: 10, overlap: 9).effectiveOverlap == 5)
    }
}

@Suite("Size measures")
struct ChunkSizeMeasureTests {
    @Test func characters() {
        #expect(CharacterMeasure().size(of: "café 👩‍👩‍👧\r\n"[...]) == 7)
    }

    @Test func approximateTokens() {
        let measure = ApproximateTokenMeasure()
        #expect(measure.size(of: "Hello, world!"[...]) == 4)
        #expect(measure.size(of: "   \n\t "[...]) == 0)
        #expect(measure.size(of: "internationalization"[...]) == 3)  // 20 letters: one token per started 8
        #expect(measure.size(of: "12345678 123456789"[...]) == 3)
        #expect(measure.size(of: "日本語です。"[...]) == 6)
        #expect(measure.size(of: "naïve"[...]) == 1)  // weight 6
        #expect(measure.size(of: "Привет"[...]) == 2)  // weight 12
        #expect(measure.size(of: "a\u{200D}b"[...]) == 1)
    }

    @Test(arguments: [
        "plain ascii words, with punctuation!", "café naïve Ünïcödé", "日本語の文章です。", "e\u{301} combining",
        "tab\tcr\r\nlf", "👩‍👩‍👧 emoji", "\u{200B}zero width", "Привет, мир", "x\u{7F}del",
    ])
    func utf8FastPathsAgreeWithSubstrings(text: String) {
        var copy = text
        copy.withUTF8 { bytes in
            var estimate = ApproximateTokenMeasure.TokenEstimate()
            for scalar in text.unicodeScalars { estimate.add(scalar) }
            #expect(ApproximateTokenMeasure().size(utf8: bytes) == estimate.finish())
            if let characters = CharacterMeasure().size(utf8: bytes) {
                #expect(characters == text.count)
            }
        }
        #expect(CharacterMeasure().size(utf8: UnsafeBufferPointer(start: nil, count: 0)) == 0)
    }

    @Test(arguments: [
        "The quick, brown fox (jumps) over... the lazy dog!", "日本語の文章です。句読点で区切ります、そして",
        "supercalifragilisticexpialidocious and naïveté Привет мир", "🙂 emoji 👩‍👩‍👧 sequence",
    ])
    func approximateTokensAreSubadditiveAtCuts(text: String) {
        let measure = ApproximateTokenMeasure()
        let whole = measure.size(of: text[...])
        var index = text.startIndex
        while index < text.endIndex {
            let sum = measure.size(of: text[..<index]) + measure.size(of: text[index...])
            #expect(sum >= whole, "cut at \(text.distance(from: text.startIndex, to: index))")
            text.formIndex(after: &index)
        }
    }
}

extension String {
    fileprivate func trimmingPunctuation() -> String {
        String(unicodeScalars.filter { $0.properties.isAlphabetic })
    }
}
