import OCR
import Testing

@Suite struct CharacterErrorRateTests {
    @Test func identicalTextAfterWhitespaceNormalisationHasNoErrors() {
        #expect(CharacterErrorRate.rate(recognized: "  The quick\n\nbrown\tfox ", truth: "The quick brown fox") == 0)
    }

    @Test func countsSubstitutionsInsertionsAndDeletions() {
        // kitten → sitting: 3 edits over 7 truth characters.
        #expect(CharacterErrorRate.distance(Array("kitten".unicodeScalars), Array("sitting".unicodeScalars)) == 3)
        #expect(abs(CharacterErrorRate.rate(recognized: "kitten", truth: "sitting") - 3.0 / 7) < 1e-12)
        #expect(CharacterErrorRate.rate(recognized: "", truth: "abcd") == 1)
        #expect(CharacterErrorRate.rate(recognized: "abcdabcd", truth: "abcd") == 1)
    }

    @Test func corpusRateWeighsPagesByLength() {
        var accumulator = CharacterErrorRate.Accumulator()
        #expect(accumulator.rate == nil)
        accumulator.add(recognized: "abcdefghij", truth: "abcdefghij")
        accumulator.add(recognized: "xy", truth: "ab")
        #expect(accumulator.errors == 2 && accumulator.truthLength == 12 && accumulator.pages == 2)
        #expect(accumulator.rate == 2.0 / 12)
    }

    @Test func comparesUnicodeScalars() {
        #expect(CharacterErrorRate.rate(recognized: "café", truth: "cafe") == 0.25)
    }
}
