/// The visible text of an HTML document, laid out as plain paragraphs for search and chunking.
///
/// Not a browser: no CSS, no tree. It drops what is never visible (`<script>`, `<style>`, `<noscript>`,
/// `<template>`, `<title>` and comments), turns block elements into paragraph breaks (`\n\n`: `<p>`,
/// headings, lists, tables, sections) or line breaks (`\n`: `<div>`, `<li>`, `<tr>`, `<br>`), decodes
/// character references, and collapses whitespace as browsers do (line breaks inside `<pre>` are kept).
/// A no-break space counts as a space. Malformed markup degrades the way browsers degrade it, and the run
/// time is linear in the input whatever it contains.
public enum HTMLText {
    /// The document's visible text; paragraphs are separated by a blank line, and there is no leading or
    /// trailing whitespace.
    public static func text(from html: String) -> String {
        var html = html
        return html.withUTF8 { bytes in
            var scanner = HTMLScanner(bytes)
            var writer = TextWriter(capacity: bytes.count)
            var preformattedDepth = 0
            while let token = scanner.next() {
                switch token {
                case .text(let range):
                    writer.appendText(bytes, range, preformatted: preformattedDepth > 0)
                case .startTag(let element?):
                    switch element.role {
                    case .hidden, .title:
                        _ = scanner.skipRawText(of: element)
                    case .preformatted:
                        preformattedDepth += 1
                        writer.requestBreak(.paragraph)
                    default:
                        writer.requestBreak(element.role.separator)
                    }
                case .endTag(let element?):
                    if element.role == .preformatted { preformattedDepth = max(0, preformattedDepth - 1) }
                    writer.requestBreak(element.role.separator)
                case .startTag(nil), .endTag(nil):
                    break
                }
            }
            return writer.finish()
        }
    }

    /// The text of the document's first `<title>`, whitespace collapsed and references decoded; nil when
    /// there is none or it is blank. `<title>` inside scripts, styles or comments does not count.
    public static func title(from html: String) -> String? {
        var html = html
        return html.withUTF8 { bytes in
            var scanner = HTMLScanner(bytes)
            while let token = scanner.next() {
                guard case .startTag(let element?) = token else { continue }
                switch element.role {
                case .title:
                    var writer = TextWriter(capacity: 64)
                    writer.appendText(bytes, scanner.skipRawText(of: element), preformatted: false)
                    let title = writer.finish()
                    return title.isEmpty ? nil : title
                case .hidden:
                    _ = scanner.skipRawText(of: element)
                default:
                    continue
                }
            }
            return nil
        }
    }
}

extension HTMLElement.Role {
    /// What an element of this role puts between its content and its neighbours'.
    fileprivate var separator: TextWriter.Separator {
        switch self {
        case .paragraph, .preformatted: .paragraph
        case .line, .lineBreak: .line
        case .cell: .space
        case .hidden, .title: .none  // only a stray end tag gets here: its content was skipped already
        }
    }
}

/// Builds the output text, collapsing whitespace lazily: separators are remembered (the strongest wins)
/// and written only before the next visible character, so there is never leading, trailing or doubled
/// whitespace, whatever the markup nests.
private struct TextWriter {
    enum Separator: Int, Comparable {
        case none, space, line, paragraph

        static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    private var output: [UInt8] = []
    private var pending = Separator.none

    init(capacity: Int) {
        output.reserveCapacity(capacity)
    }

    mutating func requestBreak(_ separator: Separator) {
        pending = max(pending, separator)
    }

    /// Appends character data, decoding references and collapsing whitespace.
    mutating func appendText(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, preformatted: Bool) {
        var index = range.lowerBound
        let end = range.upperBound
        while index < end {
            let byte = bytes[index]
            switch byte {
            case .lineFeed where preformatted:
                requestBreak(.line)
            case .carriageReturn where preformatted:
                // CRLF counts once; a lone CR is a line end.
                if index + 1 >= end || bytes[index + 1] != .lineFeed { requestBreak(.line) }
            case .space, .tab, .lineFeed, .formFeed, .carriageReturn:
                requestBreak(.space)
            case UInt8(ascii: "&"):
                guard let (scalar, length) = HTMLEntities.decode(bytes, at: index, end: end) else {
                    write(byte)
                    break
                }
                write(scalar)
                index += length
                continue
            case 0xC2 where index + 1 < end && bytes[index + 1] == 0xA0:
                // A literal no-break space: a space for search purposes.
                requestBreak(.space)
                index += 1
            case 0xC2 where index + 1 < end && bytes[index + 1] == 0xAD:
                // A literal soft hyphen: invisible, like `&shy;`.
                index += 1
            case 0x00..<0x20, 0x7F:
                break
            default:
                write(byte)
            }
            index += 1
        }
    }

    private mutating func write(_ scalar: Unicode.Scalar) {
        switch scalar.value {
        case 0x20, 0x09, 0x0A, 0x0C, 0x0D, 0xA0:
            requestBreak(.space)
        case 0x00..<0x20, 0x7F, 0xAD:
            // Controls and soft hyphens are invisible.
            break
        default:
            for byte in UTF8.encode(scalar)! { write(byte) }
        }
    }

    /// Writes one byte of visible text, preceded by whatever separator is pending.
    private mutating func write(_ byte: UInt8) {
        if pending != .none, !output.isEmpty {
            switch pending {
            case .space: output.append(.space)
            case .line: output.append(.lineFeed)
            case .paragraph: output.append(contentsOf: [.lineFeed, .lineFeed])
            case .none: break
            }
        }
        pending = .none
        output.append(byte)
    }

    func finish() -> String {
        String(decoding: output, as: UTF8.self)
    }
}
