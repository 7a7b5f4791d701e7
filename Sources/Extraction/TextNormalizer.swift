/// The one place that decides what "clean text" means for every extractor, so that chunking, BM25 and
/// embeddings all see the same characters whatever the source format:
///
/// - CRLF and lone CR become LF; NEL (U+0085) becomes LF.
/// - NUL and other C0/C1 control characters are removed, except LF, tab and form feed (the page separator).
/// - Spaces and tabs at the end of a line are removed.
///
/// It works on UTF-8 bytes: every character it touches is ASCII or a two-byte C1 control, so a byte loop
/// is both correct and the fastest way through.
enum TextNormalizer {
    static func normalize(_ utf8: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(utf8.count)

        /// Drops the spaces and tabs just written before a line or page end.
        func trimTrailingBlanks() {
            while let last = output.last, last == .space || last == .tab {
                output.removeLast()
            }
        }

        utf8.withUnsafeBufferPointer { bytes in
            var index = 0
            let count = bytes.count
            while index < count {
                let byte = bytes[index]
                switch byte {
                case .lineFeed, .formFeed:
                    trimTrailingBlanks()
                    output.append(byte)
                case .carriageReturn:
                    // CRLF: the LF that follows ends the line; a lone CR (classic Mac) is a line end itself.
                    if index + 1 < count && bytes[index + 1] == .lineFeed { break }
                    trimTrailingBlanks()
                    output.append(.lineFeed)
                case .tab:
                    output.append(byte)
                case 0x00..<0x20, 0x7F:
                    break
                case 0xC2 where index + 1 < count && (0x80...0x9F).contains(bytes[index + 1]):
                    // A C1 control: usually Windows-1252 text decoded as Latin-1. NEL is a line end.
                    if bytes[index + 1] == 0x85 {
                        trimTrailingBlanks()
                        output.append(.lineFeed)
                    }
                    index += 1
                default:
                    output.append(byte)
                }
                index += 1
            }
        }
        trimTrailingBlanks()
        return output
    }

    /// Counts what the binary-content heuristic needs: scalars, NULs, and other control characters
    /// (C0 except tab, LF, CR and form feed; DEL). `utf8` must be valid UTF-8.
    static func controlStatistics(_ utf8: UnsafeBufferPointer<UInt8>) -> ControlStatistics {
        var statistics = ControlStatistics()
        for byte in utf8 {
            if byte & 0xC0 != 0x80 { statistics.scalars += 1 }
            switch byte {
            case 0x00: statistics.nuls += 1
            case .tab, .lineFeed, .carriageReturn, .formFeed: break
            case 0x01..<0x20, 0x7F: statistics.controls += 1
            default: break
            }
        }
        return statistics
    }

    struct ControlStatistics {
        var scalars = 0
        var nuls = 0
        var controls = 0

        /// More than 2 % control characters (NULs included) means the bytes are data, not text: real text
        /// has at most a few stray escapes or form feeds, while binary formats are full of low bytes.
        var looksBinary: Bool { (nuls + controls) * 50 > scalars }
    }
}

extension UInt8 {
    static let tab: UInt8 = 0x09
    static let lineFeed: UInt8 = 0x0A
    static let formFeed: UInt8 = 0x0C
    static let carriageReturn: UInt8 = 0x0D
    static let space: UInt8 = 0x20

    /// ASCII whitespace as HTML and the normaliser see it: space, tab, LF, FF, CR.
    var isASCIIWhitespace: Bool {
        self == .space || self == .tab || self == .lineFeed || self == .formFeed || self == .carriageReturn
    }

    var isASCIILetter: Bool { (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self) }

    var lowercasedASCII: UInt8 { (0x41...0x5A).contains(self) ? self | 0x20 : self }
}
