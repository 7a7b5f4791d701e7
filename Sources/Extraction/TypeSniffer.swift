/// Decides what a document is from its first bytes, so that uploads are routed by content, not by what
/// their names claim.
///
/// Order of evidence: magic numbers first (PDF, PNG, JPEG, TIFF, GIF, WebP, ZIP); then, if the bytes
/// decode as text (UTF-8, or UTF-16 with a byte-order mark) without NULs and with few control characters,
/// a text kind chosen from markup near the start and the file name's extension; otherwise `unknown`. The
/// extension is only a hint: a `.pdf` that is really HTML is HTML, and binary data named `.txt` is
/// `unknown` (callers reject it as "binary content with a text extension").
public enum TypeSniffer {
    /// How many leading bytes the sniffer reads; more never changes the verdict.
    public static let windowSize = 8192

    /// Sniffs a document from (at least) its first `windowSize` bytes.
    ///
    /// - Parameters:
    ///   - bytes: the document, or a prefix of it at least `windowSize` bytes long (the whole document is
    ///     fine: only the window is read). A character cut at the end of a full window is tolerated, since
    ///     more bytes may follow; in shorter input, which must be the whole document, it is an error.
    ///   - fileName: the uploaded name, if any; only its extension is used.
    public static func sniff(_ bytes: some Collection<UInt8>, fileName: String?) -> SniffedType {
        // Arrays, slices and Data copy their window with one memcpy; other collections byte by byte.
        let window =
            bytes.withContiguousStorageIfAvailable { Array($0.prefix(windowSize)) } ?? Array(bytes.prefix(windowSize))
        let isTruncated = window.count == windowSize
        let fileExtension = fileName.map(Self.fileExtension(of:)) ?? ""
        return window.withUnsafeBufferPointer { head in
            if let binaryKind = sniffMagic(head, fileExtension: fileExtension) {
                return SniffedType(binaryKind)
            }
            return SniffedType(sniffText(head, isTruncated: isTruncated, fileExtension: fileExtension))
        }
    }

    // MARK: - Magic numbers

    private static func sniffMagic(_ head: UnsafeBufferPointer<UInt8>, fileExtension: String) -> DocumentKind? {
        if head.starts(with: Magic.pdf) { return .pdf }
        // Some producers put junk before the header; readers accept `%PDF-` within the first KB, but text
        // can mention it too, so that leniency is only granted to files named `.pdf`.
        if fileExtension == "pdf", head.prefix(1024).firstRange(of: Magic.pdf) != nil { return .pdf }
        if head.starts(with: Magic.png) { return .png }
        if head.starts(with: Magic.jpeg) { return .jpeg }
        if Magic.tiff.contains(where: head.starts(with:)) { return .tiff }
        if Magic.gif.contains(where: head.starts(with:)) { return .gif }
        if head.starts(with: Magic.riff), head.dropFirst(8).starts(with: Magic.webp) { return .webp }
        if Magic.zip.contains(where: head.starts(with:)) {
            // A DOCX is a ZIP holding word/document.xml. Entry names are stored uncompressed in local
            // headers, so the name in the window (or the extension) is a strong hint; the DOCX extractor
            // checks the archive properly.
            if fileExtension == "docx" || head.firstRange(of: Magic.wordDocumentEntry) != nil { return .docx }
            return .zip
        }
        return nil
    }

    private enum Magic {
        static let pdf = Array("%PDF-".utf8)
        static let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        static let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF]
        /// Little- and big-endian TIFF, then the same for BigTIFF.
        static let tiff: [[UInt8]] = [
            [0x49, 0x49, 0x2A, 0x00], [0x4D, 0x4D, 0x00, 0x2A],
            [0x49, 0x49, 0x2B, 0x00], [0x4D, 0x4D, 0x00, 0x2B],
        ]
        static let gif = [Array("GIF87a".utf8), Array("GIF89a".utf8)]
        static let riff = Array("RIFF".utf8)
        static let webp = Array("WEBP".utf8)
        /// A local file header, and the end-of-central-directory record that starts an empty archive.
        static let zip: [[UInt8]] = [[0x50, 0x4B, 0x03, 0x04], [0x50, 0x4B, 0x05, 0x06]]
        static let wordDocumentEntry = Array("word/document.xml".utf8)
    }

    // MARK: - Text

    private static func sniffText(
        _ head: UnsafeBufferPointer<UInt8>,
        isTruncated: Bool,
        fileExtension: String
    ) -> DocumentKind {
        guard case .supported(let encoding, let bomLength) = UnicodeDecoding.detectEncoding(head),
            let utf8 = try? UnicodeDecoding.utf8Bytes(
                of: UnsafeBufferPointer(rebasing: head[bomLength...]),
                encoding: encoding,
                allowTruncatedTail: isTruncated
            )
        else { return .unknown }

        return utf8.withUnsafeBufferPointer { text in
            let controls = TextNormalizer.looksBinary(text)
            guard !controls.hasNUL, !controls.looksBinary else { return .unknown }
            return classifyText(MarkupProbe(text), fileExtension: fileExtension)
        }
    }

    /// Chooses among the text kinds. A full HTML document (doctype or `<html` first) is HTML whatever its
    /// name; Markdown files often open with an HTML block (`<p align="center">`), so weaker markup does not
    /// override a Markdown extension.
    private static func classifyText(_ probe: MarkupProbe, fileExtension: String) -> DocumentKind {
        if probe.startsAsHTMLDocument { return .html }
        switch fileExtension {
        case "md", "markdown", "mdown", "mkd", "mkdn":
            return .markdown
        case "html", "htm", "xhtml", "shtml":
            return probe.containsMarkup ? .html : .plainText
        case "txt", "text":
            return probe.startsWithHTMLTag ? .html : .plainText
        default:
            return probe.startsWithHTMLTag || probe.containsDocumentTags ? .html : .plainText
        }
    }

    static func fileExtension(of fileName: String) -> String {
        let name = fileName.split(separator: "/").last.map(String.init) ?? fileName
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "" }
        return String(name[name.index(after: dot)...]).lowercased()
    }
}

/// Looks for HTML in the first kilobyte of decoded text, case-insensitively.
private struct MarkupProbe {
    /// The first 1 KB, ASCII-lowercased, starting at the first non-whitespace byte.
    private let start: [UInt8]

    init(_ text: UnsafeBufferPointer<UInt8>) {
        let firstContent = text.firstIndex { !$0.isASCIIWhitespace } ?? text.endIndex
        start = text[firstContent...].prefix(1024).map(\.lowercasedASCII)
    }

    /// A doctype or `<html` as the first thing (after an optional XML declaration or comment).
    var startsAsHTMLDocument: Bool {
        var rest = start[...]
        // Skip `<?xml …?>` and `<!-- … -->` preambles, which XHTML and some generators emit.
        while rest.starts(with: Array("<?".utf8)) || rest.starts(with: Array("<!--".utf8)) {
            let terminator = rest.starts(with: Array("<?".utf8)) ? Array("?>".utf8) : Array("-->".utf8)
            guard let end = rest.firstRange(of: terminator) else { return false }
            rest = rest[end.upperBound...].drop(while: \.isASCIIWhitespace)
        }
        return rest.starts(with: Array("<!doctype html".utf8)) || Self.startsWithTag(rest, in: ["html"])
    }

    /// The text opens with a common HTML element.
    var startsWithHTMLTag: Bool {
        start.starts(with: Array("<!doctype html".utf8)) || Self.startsWithTag(start[...], in: Self.commonTags)
    }

    /// `<html`, `<head` or `<body` somewhere in the first KB.
    var containsDocumentTags: Bool {
        ["<!doctype html", "<html", "<head", "<body"].contains { start.firstRange(of: Array($0.utf8)) != nil }
    }

    /// Anything that looks like a tag or comment: `<` followed by a letter, `/` or `!`, and a `>` later.
    var containsMarkup: Bool {
        guard let close = start.lastIndex(of: UInt8(ascii: ">")) else { return false }
        return start[..<close].indices.contains { index in
            guard start[index] == UInt8(ascii: "<"), index + 1 < close else { return false }
            let next = start[index + 1]
            return next.isASCIILetter || next == UInt8(ascii: "/") || next == UInt8(ascii: "!")
        }
    }

    private static let commonTags: Set<String> = [
        "html", "head", "body", "title", "meta", "link", "style", "script", "p", "div", "span", "a", "b", "i",
        "em", "strong", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "li", "br", "hr", "section",
        "article", "header", "footer", "nav", "main", "form", "img", "pre", "blockquote", "!--",
    ]

    /// `text` starts with `<name` followed by whitespace, `>` or `/`, for a name in `names`.
    private static func startsWithTag(_ text: ArraySlice<UInt8>, in names: Set<String>) -> Bool {
        guard text.first == UInt8(ascii: "<") else { return false }
        let afterBracket = text.dropFirst()
        if afterBracket.starts(with: Array("!--".utf8)) { return names.contains("!--") }
        let name = afterBracket.prefix { $0.isASCIILetter || (0x30...0x39).contains($0) }
        guard !name.isEmpty, names.contains(String(decoding: name, as: UTF8.self)) else { return false }
        guard let terminator = afterBracket.dropFirst(name.count).first else { return true }
        return terminator.isASCIIWhitespace || terminator == UInt8(ascii: ">") || terminator == UInt8(ascii: "/")
    }
}
