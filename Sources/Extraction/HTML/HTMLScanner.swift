/// A forgiving, single-pass HTML tokenizer over UTF-8 bytes.
///
/// It follows the HTML5 tokenizer where that matters for visible text (comments, bogus comments,
/// raw-text elements, `<` that does not start a tag, quoted attribute values containing `>`), and
/// ignores everything else: it builds no tree and keeps no attributes. Every byte is visited a bounded
/// number of times, so the run time is linear whatever the input; in particular an unclosed quote or
/// comment cannot make it rescan the rest of the document for each tag.
struct HTMLScanner {
    enum Token {
        /// Character data, entities not yet decoded.
        case text(Range<Int>)
        case startTag(HTMLElement?)
        case endTag(HTMLElement?)
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var position = 0
    /// Offsets of the last `"` and `'`: a quote at or after these cannot be closed, so it is not treated
    /// as opening a quoted value. This is what keeps malformed attributes linear.
    private let lastDoubleQuote: Int
    private let lastSingleQuote: Int

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        lastDoubleQuote = bytes.lastIndex(of: UInt8(ascii: "\"")) ?? -1
        lastSingleQuote = bytes.lastIndex(of: UInt8(ascii: "'")) ?? -1
    }

    var isAtEnd: Bool { position >= bytes.count }

    mutating func next() -> Token? {
        while position < bytes.count {
            guard bytes[position] == UInt8(ascii: "<") else { return .text(scanText()) }
            let next = byte(at: position + 1)
            switch next {
            case UInt8(ascii: "!"):
                skipCommentOrDeclaration()
            case UInt8(ascii: "?"):
                // A processing instruction is a bogus comment in HTML.
                skip(through: UInt8(ascii: ">"), from: position + 2)
            case UInt8(ascii: "/"):
                if let letter = byte(at: position + 2), letter.isASCIILetter {
                    position += 2
                    let element = scanTagName()
                    skipAttributes()
                    return .endTag(element)
                }
                // `</>` is dropped; `</ ...>` or `</3>` is a bogus comment.
                skip(through: UInt8(ascii: ">"), from: position + 2)
            case let letter? where letter.isASCIILetter:
                position += 1
                let element = scanTagName()
                skipAttributes()
                return .startTag(element)
            default:
                // `a < b`, `x<3`: a literal less-than sign.
                return .text(scanText())
            }
        }
        return nil
    }

    /// Moves past the content of a raw-text element (`<script>`, `<style>`, `<title>`…) that was just
    /// opened, and past its end tag; returns the content. Without an end tag the content runs to the end
    /// of the input, as in browsers.
    mutating func skipRawText(of element: HTMLElement) -> Range<Int> {
        let name = element.nameBytes
        let start = position
        var index = position
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "<"), byte(at: index + 1) == UInt8(ascii: "/"),
                hasName(name, at: index + 2)
            else {
                index += 1
                continue
            }
            let afterName = index + 2 + name.count
            if let terminator = byte(at: afterName),
                !(terminator.isASCIIWhitespace || terminator == UInt8(ascii: "/") || terminator == UInt8(ascii: ">"))
            {
                index += 1
                continue
            }
            position = afterName
            skipAttributes()
            return start..<index
        }
        position = bytes.count
        return start..<bytes.count
    }

    // MARK: - Pieces

    private func byte(at index: Int) -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    /// Text runs to the next `<` that can start markup.
    private mutating func scanText() -> Range<Int> {
        let start = position
        var index = position + 1
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "<"), let next = byte(at: index + 1),
                next.isASCIILetter || next == UInt8(ascii: "/") || next == UInt8(ascii: "!")
                    || next == UInt8(ascii: "?")
            {
                break
            }
            index += 1
        }
        position = index
        return start..<index
    }

    /// Reads a tag name (up to whitespace, `/` or `>`) and looks it up; unknown and overlong names are nil.
    private mutating func scanTagName() -> HTMLElement? {
        let start = position
        while let byte = byte(at: position),
            !(byte.isASCIIWhitespace || byte == UInt8(ascii: "/") || byte == UInt8(ascii: ">"))
        {
            position += 1
        }
        return HTMLElement(nameBytes: UnsafeBufferPointer(rebasing: bytes[start..<position]))
    }

    /// Skips attributes up to and including the tag's `>`. A quote opens a value only right after `=`, as in
    /// the HTML tokenizer, and only if it is closed somewhere later. EOF inside a tag drops the tag.
    private mutating func skipAttributes() {
        var afterEquals = false
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: ">"):
                position += 1
                return
            case UInt8(ascii: "="):
                afterEquals = true
                position += 1
                continue
            case UInt8(ascii: "\"") where afterEquals && position < lastDoubleQuote,
                UInt8(ascii: "'") where afterEquals && position < lastSingleQuote:
                // The closing quote exists, so this scan ends before the end of the input.
                position += 1
                while bytes[position] != byte { position += 1 }
            default:
                break
            }
            if !byte.isASCIIWhitespace { afterEquals = false }
            position += 1
        }
    }

    /// `<!--…-->`, `<!DOCTYPE…>`, `<![CDATA[…]]>` and other declarations: skipped.
    private mutating func skipCommentOrDeclaration() {
        let start = position + 2
        guard hasPrefix("--", at: start) else {
            skip(through: UInt8(ascii: ">"), from: start)
            return
        }
        // `<!-->` and `<!--->` are complete (empty) comments in HTML5.
        if byte(at: start + 2) == UInt8(ascii: ">") {
            position = start + 3
            return
        }
        if hasPrefix("->", at: start + 2) {
            position = start + 4
            return
        }
        var index = start + 2
        while index + 2 < bytes.count {
            if bytes[index] == UInt8(ascii: "-"), bytes[index + 1] == UInt8(ascii: "-"),
                bytes[index + 2] == UInt8(ascii: ">")
            {
                position = index + 3
                return
            }
            index += 1
        }
        // An unclosed comment swallows the rest of the document, as in browsers.
        position = bytes.count
    }

    private mutating func skip(through terminator: UInt8, from start: Int) {
        var index = start
        while index < bytes.count, bytes[index] != terminator { index += 1 }
        position = min(index + 1, bytes.count)
    }

    private func hasPrefix(_ prefix: StaticString, at index: Int) -> Bool {
        guard index + prefix.utf8CodeUnitCount <= bytes.count else { return false }
        return prefix.withUTF8Buffer { expected in
            expected.indices.allSatisfy { bytes[index + $0] == expected[$0] }
        }
    }

    /// Case-insensitive match of a lowercase tag name.
    private func hasName(_ name: [UInt8], at index: Int) -> Bool {
        guard index + name.count <= bytes.count else { return false }
        return name.indices.allSatisfy { bytes[index + $0].lowercasedASCII == name[$0] }
    }
}
