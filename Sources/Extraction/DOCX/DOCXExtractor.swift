import Foundation
import ZIPFoundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Reads the text of a Word document (DOCX, Office Open XML) from its `word/document.xml`.
///
/// Paragraphs become lines separated by blank lines (so the chunker sees paragraph boundaries); table
/// cells are separated by tabs and rows by line breaks; `<w:tab/>` and `<w:br/>` keep their meaning. Pages:
/// a DOCX has no fixed layout, but Word records where its pages ended the last time it laid the document
/// out (`<w:lastRenderedPageBreak/>`) and where the author forced one (`<w:br w:type="page"/>`); both
/// start a new page, so page numbers match what Word showed. A document without either is one page.
/// Headers, footers, footnotes and comments are not read.
public enum DOCXExtractor {
    /// Largest `word/document.xml` read, unpacked: a guard against ZIP bombs. The longest novels are about
    /// 5 MB of XML.
    public static let maxDocumentXMLBytes = 64 << 20

    /// - Throws: `malformed` when the bytes are not a ZIP with a parsable `word/document.xml`;
    ///   `limitExceeded` when that entry unpacks to more than `maxDocumentXMLBytes`; `emptyFile` when the
    ///   document has no text.
    public static func extract(_ bytes: [UInt8]) throws(ExtractionError) -> [ExtractedPage] {
        let archive: Archive
        do {
            archive = try Archive(data: Data(bytes), accessMode: .read)
        } catch {
            throw .malformed(.docx, reason: "it is not a readable ZIP archive")
        }
        guard let entry = archive["word/document.xml"] else {
            throw .malformed(.docx, reason: "no word/document.xml entry")
        }
        var xml = Data()
        do {
            // The sizes in the ZIP directory can lie: count what actually comes out.
            _ = try archive.extract(entry, skipCRC32: false) { chunk in
                guard xml.count + chunk.count <= maxDocumentXMLBytes else { throw EntryTooLarge() }
                xml.append(chunk)
            }
        } catch is EntryTooLarge {
            throw .entryTooLarge(.docx, entry: "word/document.xml", limit: maxDocumentXMLBytes)
        } catch {
            throw .malformed(.docx, reason: "word/document.xml cannot be unpacked")
        }
        let pages = try text(ofDocumentXML: xml)
        guard pages.contains(where: { !$0.text.isBlank }) else { throw .emptyFile() }
        return pages
    }

    /// Parses `word/document.xml` into pages.
    static func text(ofDocumentXML xml: Data) throws(ExtractionError) -> [ExtractedPage] {
        let parser = XMLParser(data: xml)
        let collector = WordTextCollector()
        parser.delegate = collector
        parser.shouldProcessNamespaces = true
        parser.shouldResolveExternalEntities = false
        // Check the collector too: on Linux, XMLParser reports some errors only to its delegate.
        guard parser.parse(), !collector.failed else {
            throw .malformed(.docx, reason: "word/document.xml is not well-formed XML (line \(parser.lineNumber))")
        }
        let pages = collector.finish()
        return pages.enumerated().map { index, text in
            let normalized = Array(text.utf8).withUnsafeBufferPointer(TextNormalizer.normalize).utf8
            return ExtractedPage(
                number: index + 1,
                text: String(decoding: normalized.trimmingBlankEdges(keepingFormFeeds: false), as: UTF8.self))
        }
    }

    private struct EntryTooLarge: Error {}
}

/// Collects text from WordprocessingML events. Only elements in a WordprocessingML namespace count
/// (transitional `…/2006/main` or strict `…/ooxml/wordprocessingml/main`); element names arrive without
/// their prefix because namespace processing is on.
private final class WordTextCollector: NSObject, XMLParserDelegate {
    private var pages: [String] = [""]
    /// The parser reported an error (a document cut short, mismatched tags).
    private(set) var failed = false
    private var inText = false
    /// Depth of nested tables; inside one, a paragraph ends with a space rather than a blank line.
    private var tableDepth = 0
    /// Text deleted in tracked changes (`<w:del>`) is not part of the document.
    private var deletedDepth = 0

    private func append(_ text: String) {
        guard deletedDepth == 0 else { return }
        pages[pages.count - 1] += text
    }

    /// Removes trailing spaces and tabs from the current page (before a cell or row separator).
    private func trimTrailingBlanks() {
        while let last = pages[pages.count - 1].last, last == " " || last == "\t" { pages[pages.count - 1].removeLast() }
    }

    private func isWordML(_ namespace: String?) -> Bool {
        namespace?.contains("wordprocessingml") ?? false
    }

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        guard isWordML(namespaceURI) else { return }
        switch elementName {
        case "t": inText = true
        case "tab": append("\t")
        case "br", "cr":
            // Attribute names arrive prefixed (`w:type`) even with namespace processing.
            let type = attributes.first { $0.key == "type" || $0.key.hasSuffix(":type") }?.value
            if type == "page" { pages.append("") } else { append("\n") }
        case "lastRenderedPageBreak": pages.append("")
        case "tbl": tableDepth += 1
        case "del": deletedDepth += 1
        default: break
        }
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        guard isWordML(namespaceURI) else { return }
        switch elementName {
        case "t": inText = false
        case "p": append(tableDepth > 0 ? " " : "\n\n")
        case "tc":
            trimTrailingBlanks()
            append("\t")
        case "tr":
            trimTrailingBlanks()
            append("\n")
        case "tbl":
            tableDepth -= 1
            append("\n")
        case "del": deletedDepth -= 1
        default: break
        }
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
        failed = true
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if inText { append(string) }
    }

    /// The pages, without empty ones at the end (Word writes a `lastRenderedPageBreak` before the last
    /// paragraph of some documents, which would otherwise leave a blank last page).
    func finish() -> [String] {
        var result = pages
        while result.count > 1, result.last?.isBlank == true { result.removeLast() }
        return result
    }
}
