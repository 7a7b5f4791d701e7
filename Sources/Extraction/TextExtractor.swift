/// Reads text documents: plain text, Markdown and HTML.
///
/// PDFs, images and DOCX files have their own extractors (they need C libraries); all of them return
/// `[ExtractedPage]` normalised the same way (see `TextNormalizer`), so later stages never care where text
/// came from.
public enum TextExtractor {
    /// Decodes text bytes and normalises them.
    ///
    /// Reads UTF-8 (with or without a byte-order mark) and UTF-16 LE/BE (with a byte-order mark; without one,
    /// UTF-16 is indistinguishable from binary data, and the sniffer has already called it that). The result
    /// uses LF line ends, has no control characters other than LF, tab and form feed, no trailing blanks on
    /// any line, and no blank lines or blanks at its start and end; form feeds are kept because they separate
    /// pages.
    ///
    /// - Throws: `invalidEncoding` with the byte offset (in `bytes`, mark included) of the first bad sequence;
    ///   `binaryContent` when more than 2 % of the characters are controls; `emptyFile` when nothing but
    ///   whitespace remains.
    public static func decodeText(_ bytes: [UInt8]) throws(ExtractionError) -> String {
        String(decoding: try normalizedText(bytes), as: UTF8.self)
    }

    /// Turns a text document into pages.
    ///
    /// Plain text and Markdown are one page unless they contain form feeds (`\u{0C}`), which start a new
    /// page, as printers and `pdftotext` output use them; a form feed at the very end does not create an
    /// extra blank page. HTML is always one page of visible text (see `HTMLText`). Each page's text is
    /// trimmed of surrounding whitespace.
    ///
    /// - Throws: what `decodeText` throws; `emptyFile` for HTML without visible text; `unsupportedType` for
    ///   kinds that need another extractor.
    public static func extract(_ bytes: [UInt8], kind: DocumentKind) throws(ExtractionError) -> [ExtractedPage] {
        switch kind {
        case .plainText, .markdown:
            return pages(of: try normalizedText(bytes))
        case .html:
            let text = HTMLText.text(from: try decodeText(bytes))
            guard !text.isBlank else { throw .emptyFile() }
            return [ExtractedPage(number: 1, text: text)]
        case .pdf, .png, .jpeg, .tiff, .gif, .webp, .zip, .docx, .unknown:
            throw .unsupportedType(kind)
        }
    }

    /// `decodeText`'s work, stopping short of building a `String` so that `extract` can split pages first.
    private static func normalizedText(_ bytes: [UInt8]) throws(ExtractionError) -> ArraySlice<UInt8> {
        guard !bytes.isEmpty else { throw .emptyFile() }
        let normalized = try bytes.withUnsafeBufferPointer { buffer throws(ExtractionError) -> [UInt8] in
            let encoding: UnicodeDecoding.Encoding
            let bomLength: Int
            switch UnicodeDecoding.detectEncoding(buffer) {
            case .unsupported(let name):
                throw .unsupportedEncoding(name)
            case .supported(let detected, let length):
                (encoding, bomLength) = (detected, length)
            }
            let body = UnsafeBufferPointer(rebasing: buffer[bomLength...])
            let result: TextNormalizer.Result
            do throws(UnicodeDecoding.InvalidSequence) {
                switch encoding {
                case .utf8:
                    // Already UTF-8: validate in place, no copy before normalising.
                    _ = try UnicodeDecoding.validateUTF8(body, allowTruncatedTail: false)
                    result = TextNormalizer.normalize(body)
                case .utf16LittleEndian, .utf16BigEndian:
                    let utf8 = try UnicodeDecoding.utf8Bytes(of: body, encoding: encoding, allowTruncatedTail: false)
                    result = utf8.withUnsafeBufferPointer(TextNormalizer.normalize)
                }
            } catch {
                throw .invalidEncoding(byteOffset: bomLength + error.offset, encoding: encoding.name)
            }
            guard !result.looksBinary(inputLength: body.count) else { throw .binaryContent() }
            return result.utf8
        }
        let text = normalized.trimmingBlankEdges(keepingFormFeeds: true)
        guard !text.isBlankUTF8 else { throw .emptyFile() }
        return text
    }

    /// Splits normalised text at form feeds.
    private static func pages(of text: ArraySlice<UInt8>) -> [ExtractedPage] {
        var pages: [ExtractedPage] = []
        var pageStart = text.startIndex
        while true {
            let pageEnd = text[pageStart...].firstIndex(of: .formFeed) ?? text.endIndex
            let pageText = text[pageStart..<pageEnd].trimmingBlankEdges(keepingFormFeeds: false)
            pages.append(ExtractedPage(number: pages.count + 1, text: String(decoding: pageText, as: UTF8.self)))
            // A form feed that ends the text ends the last page rather than starting an empty one.
            guard pageEnd < text.endIndex, pageEnd + 1 < text.endIndex else { break }
            pageStart = pageEnd + 1
        }
        return pages
    }
}

extension String {
    /// True when the string has no characters other than whitespace (Unicode's definition).
    var isBlank: Bool {
        unicodeScalars.allSatisfy(\.properties.isWhitespace)
    }
}

extension BidirectionalCollection<UInt8> {
    /// True when the bytes (valid UTF-8) are only whitespace; decodes only if there is non-ASCII.
    var isBlankUTF8: Bool {
        for byte in self where !byte.isASCIIWhitespace {
            guard byte >= 0x80 else { return false }
            return String(decoding: Array(self), as: UTF8.self).isBlank
        }
        return true
    }

    /// The bytes without leading and trailing ASCII spaces, tabs and line ends (and form feeds, unless
    /// they must survive to separate pages).
    func trimmingBlankEdges(keepingFormFeeds: Bool) -> SubSequence {
        func isBlank(_ byte: UInt8) -> Bool {
            byte == .space || byte == .tab || byte == .lineFeed || byte == .carriageReturn
                || (!keepingFormFeeds && byte == .formFeed)
        }
        guard let first = firstIndex(where: { !isBlank($0) }), let last = lastIndex(where: { !isBlank($0) })
        else { return self[endIndex...] }
        return self[first...last]
    }
}
