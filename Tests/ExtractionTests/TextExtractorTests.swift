import Testing

@testable import Extraction

@Suite("TextExtractor")
struct TextExtractorTests {
    private func decode(_ text: String) throws -> String {
        try TextExtractor.decodeText(Array(text.utf8))
    }

    private func expectError<Result>(
        _ code: ExtractionError.Code,
        byteOffset: Int? = nil,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ body: () throws -> Result
    ) {
        do {
            _ = try body()
            Issue.record("expected \(code)", sourceLocation: sourceLocation)
        } catch let error as ExtractionError {
            #expect(error.code == code, sourceLocation: sourceLocation)
            if let byteOffset {
                #expect(error.byteOffset == byteOffset, sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - Decoding

    @Test func utf8() throws {
        #expect(try decode("Grüße aus Köln 🌍") == "Grüße aus Köln 🌍")
    }

    @Test func utf8ByteOrderMarkIsDropped() throws {
        #expect(try TextExtractor.decodeText([0xEF, 0xBB, 0xBF] + Array("Hello".utf8)) == "Hello")
    }

    @Test func utf16WithByteOrderMarks() throws {
        let text = "Line 1\r\nemoji 😀 and ß"
        let littleEndian: [UInt8] = [0xFF, 0xFE] + text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let bigEndian: [UInt8] = [0xFE, 0xFF] + text.utf16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        #expect(try TextExtractor.decodeText(littleEndian) == "Line 1\nemoji 😀 and ß")
        #expect(try TextExtractor.decodeText(bigEndian) == "Line 1\nemoji 😀 and ß")
    }

    @Test func lineEndsAndControlsAreNormalised() throws {
        #expect(try decode("a\r\nb\rc\nd") == "a\nb\nc\nd")
        #expect(try decode("trailing   \t\nspaces  \r\nend  ") == "trailing\nspaces\nend")
        #expect(try decode("keep\ttabs\u{0C}and form feeds") == "keep\ttabs\u{0C}and form feeds")
        // A few stray controls in real text are removed (many would make it binary, see below).
        let padding = String(repeating: "words ", count: 40)
        #expect(try decode(padding + "no\u{00}nul\u{01}\u{1B}[0m or del\u{7F}") == padding + "nonul[0m or del")
        #expect(try decode("C1\u{85}next line and \u{80}\u{9F}gone") == "C1\nnext line and gone")
        #expect(try decode("\n\n  indented start\n\n") == "indented start")
        #expect(try decode("  x  \n \n y") == "x\n\n y")
    }

    @Test func invalidUTF8ReportsTheOffsetOfTheFirstBadSequence() {
        expectError(.invalidEncoding, byteOffset: 3) {
            try TextExtractor.decodeText(Array("abc".utf8) + [0xFF] + Array("def".utf8))
        }
        // The offset counts from the start of the file, byte-order mark included.
        expectError(.invalidEncoding, byteOffset: 5) {
            try TextExtractor.decodeText([0xEF, 0xBB, 0xBF] + Array("ab".utf8) + [0xC3, 0x28])
        }
        // Overlong encoding of "/", an encoded surrogate, a value past U+10FFFF, a truncated sequence.
        expectError(.invalidEncoding, byteOffset: 1) { try TextExtractor.decodeText([0x41, 0xC0, 0xAF]) }
        expectError(.invalidEncoding, byteOffset: 2) { try TextExtractor.decodeText([0x41, 0x42, 0xED, 0xA0, 0x80]) }
        expectError(.invalidEncoding, byteOffset: 0) { try TextExtractor.decodeText([0xF4, 0x90, 0x80, 0x80]) }
        expectError(.invalidEncoding, byteOffset: 10) {
            try TextExtractor.decodeText(Array("0123456789".utf8) + [0xE2, 0x82])
        }
        // After a long ASCII run (the eight-bytes-at-a-time path).
        expectError(.invalidEncoding, byteOffset: 1000) {
            try TextExtractor.decodeText([UInt8](repeating: 0x61, count: 1000) + [0x80])
        }
    }

    @Test func invalidUTF16() {
        // An unpaired high surrogate, then an odd number of bytes.
        expectError(.invalidEncoding, byteOffset: 4) {
            try TextExtractor.decodeText([0xFF, 0xFE, 0x41, 0x00, 0x3D, 0xD8, 0x41, 0x00])
        }
        expectError(.invalidEncoding, byteOffset: 4) { try TextExtractor.decodeText([0xFF, 0xFE, 0x41, 0x00, 0x42]) }
        expectError(.invalidEncoding, byteOffset: 0) {
            try TextExtractor.decodeText([0xFF, 0xFE, 0x00, 0x00, 0x41, 0x00, 0x00, 0x00])
        }
    }

    @Test func emptyAndWhitespaceOnly() {
        expectError(.emptyFile) { try TextExtractor.decodeText([]) }
        expectError(.emptyFile) { try TextExtractor.decodeText(Array(" \t\r\n \u{0C}\n".utf8)) }
        expectError(.emptyFile) { try TextExtractor.decodeText(Array("\u{00A0}\u{3000}".utf8)) }
        expectError(.emptyFile) { try TextExtractor.decodeText([0xEF, 0xBB, 0xBF]) }
    }

    @Test func binaryContent() {
        var bytes = Array(String(repeating: "text ", count: 20).utf8)
        bytes += [UInt8](repeating: 0, count: 10)
        expectError(.binaryContent) { try TextExtractor.decodeText(bytes) }
    }

    // MARK: - Pages

    @Test func plainTextIsOnePage() throws {
        let pages = try TextExtractor.extract(Array("Title\r\n\r\nBody text.\r\n".utf8), kind: .plainText)
        #expect(pages == [ExtractedPage(number: 1, text: "Title\n\nBody text.")])
    }

    @Test func formFeedsSplitPages() throws {
        let text = "page one\n\u{0C}\n  page two  \n\u{0C}\u{0C}page four\u{0C}\n"
        let pages = try TextExtractor.extract(Array(text.utf8), kind: .markdown)
        #expect(
            pages == [
                ExtractedPage(number: 1, text: "page one"),
                ExtractedPage(number: 2, text: "page two"),
                ExtractedPage(number: 3, text: ""),
                ExtractedPage(number: 4, text: "page four"),
            ])
    }

    @Test func leadingFormFeedKeepsPhysicalNumbering() throws {
        let pages = try TextExtractor.extract(Array("\u{0C}second".utf8), kind: .plainText)
        #expect(pages == [ExtractedPage(number: 1, text: ""), ExtractedPage(number: 2, text: "second")])
    }

    @Test func html() throws {
        let html =
            "<!DOCTYPE html>\r\n<html><head><title>T</title><style>p{}</style></head>"
            + "<body><h1>Heading</h1><p>One &amp; two.</p></body></html>"
        let pages = try TextExtractor.extract(Array(html.utf8), kind: .html)
        #expect(pages == [ExtractedPage(number: 1, text: "Heading\n\nOne & two.")])
    }

    @Test func htmlWithoutVisibleText() {
        expectError(.emptyFile) {
            try TextExtractor.extract(Array("<html><script>alert(1)</script><!-- x --></html>".utf8), kind: .html)
        }
    }

    @Test func otherKindsNeedOtherExtractors() {
        for kind in [DocumentKind.pdf, .png, .jpeg, .tiff, .gif, .webp, .zip, .docx, .unknown] {
            expectError(.unsupportedType) { try TextExtractor.extract(Headers.pdf, kind: kind) }
        }
    }

    // MARK: - Errors

    @Test func errorMessagesAreActionableAndCarryNoContent() {
        do {
            _ = try TextExtractor.extract(Array("secret\u{0}\u{0}\u{0}".utf8), kind: .plainText)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .binaryContent)
            #expect(error.description == error.message)
            #expect(!error.description.contains("secret"))
            #expect(error.debugDescription.contains("TextExtractor.swift"))
        }
        let encoding = ExtractionError.invalidEncoding(byteOffset: 42)
        #expect(encoding.message.contains("byte offset 42"))
        #expect(encoding.message.contains("UTF-8"))
        #expect(ExtractionError.unsupportedType(.unknown).message.contains("PDF"))
        #expect(ExtractionError.malformed(.docx, reason: "no word/document.xml").code == .malformed)
        #expect(ExtractionError.Code.emptyFile.description == "emptyFile")
    }
}
