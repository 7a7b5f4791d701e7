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
        guard !bytes.isEmpty else { throw .emptyFile() }
        let decoded = try bytes.withUnsafeBufferPointer { buffer throws(ExtractionError) -> [UInt8] in
            let encoding: UnicodeDecoding.Encoding
            let bomLength: Int
            switch UnicodeDecoding.detectEncoding(buffer) {
            case .unsupported(let name):
                throw .unsupportedEncoding(name)
            case .supported(let detected, let length):
                (encoding, bomLength) = (detected, length)
            }
            let body = UnsafeBufferPointer(rebasing: buffer[bomLength...])
            do throws(UnicodeDecoding.InvalidSequence) {
                return try UnicodeDecoding.utf8Bytes(of: body, encoding: encoding, allowTruncatedTail: false)
            } catch {
                throw .invalidEncoding(byteOffset: bomLength + error.offset, encoding: encoding.name)
            }
        }
        let statistics = decoded.withUnsafeBufferPointer(TextNormalizer.controlStatistics)
        guard !statistics.looksBinary else { throw .binaryContent() }

        let normalized = TextNormalizer.normalize(decoded)
        let text = String(decoding: normalized.trimmingBlankEdges(keepingFormFeeds: true), as: UTF8.self)
        guard !text.isBlank else { throw .emptyFile() }
        return text
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
            return pages(of: try decodeText(bytes))
        case .html:
            let text = HTMLText.text(from: try decodeText(bytes))
            guard !text.isBlank else { throw .emptyFile() }
            return [ExtractedPage(number: 1, text: text)]
        case .pdf, .png, .jpeg, .tiff, .gif, .webp, .zip, .docx, .unknown:
            throw .unsupportedType(kind)
        }
    }

    /// Splits normalised text at form feeds.
    static func pages(of text: String) -> [ExtractedPage] {
        var segments = Array(text.utf8).split(separator: .formFeed, omittingEmptySubsequences: false)
        if segments.count > 1, let last = segments.last, last.isEmpty {
            segments.removeLast()
        }
        return segments.enumerated().map { index, segment in
            ExtractedPage(
                number: index + 1,
                text: String(decoding: segment.trimmingBlankEdges(keepingFormFeeds: false), as: UTF8.self)
            )
        }
    }
}

extension String {
    /// True when the string has no characters other than whitespace (Unicode's definition).
    var isBlank: Bool {
        unicodeScalars.allSatisfy(\.properties.isWhitespace)
    }
}

extension BidirectionalCollection<UInt8> {
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
