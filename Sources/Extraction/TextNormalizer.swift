/// The one place that decides what "clean text" means for every extractor, so that chunking, BM25 and
/// embeddings all see the same characters whatever the source format:
///
/// - CRLF and lone CR become LF; NEL (U+0085) becomes LF.
/// - NUL and other C0/C1 control characters are removed, except LF, tab and form feed (the page separator).
/// - Spaces and tabs at the end of a line are removed.
///
/// It works on UTF-8 bytes: every character it touches is ASCII or a two-byte C1 control, so a byte loop
/// is both correct and the fastest way through (this runs on every byte of every text document).
enum TextNormalizer {
    struct Result {
        var utf8: [UInt8]
        /// C0 controls (NUL included, tab/LF/CR/FF excluded) and DELs that were removed.
        var removedControls: Int

        /// More than 2 % control bytes means the input was data, not text: real text has at most a few
        /// stray escapes or form feeds, while binary formats are full of low bytes.
        func looksBinary(inputLength: Int) -> Bool { removedControls * 50 > inputLength }
    }

    /// Normalises valid UTF-8.
    static func normalize(_ input: UnsafeBufferPointer<UInt8>) -> Result {
        var removedControls = 0
        let utf8 = [UInt8](unsafeUninitializedCapacity: input.count) { output, written in
            var count = 0
            // Where the current line's trailing run of spaces and tabs starts, if it has one.
            var blankRunStart = 0
            var index = 0
            while index < input.count {
                let byte = input[index]
                index += 1
                if byte >= 0x20 && byte != 0x7F {
                    if byte == 0xC2, index < input.count, (0x80...0x9F).contains(input[index]) {
                        // A C1 control: usually Windows-1252 text decoded as Latin-1. NEL ends a line.
                        let isNextLine = input[index] == 0x85
                        index += 1
                        guard isNextLine else { continue }
                        count = blankRunStart
                        output[count] = .lineFeed
                        count += 1
                        blankRunStart = count
                        continue
                    }
                    output[count] = byte
                    count += 1
                    if byte != .space { blankRunStart = count }
                    continue
                }
                switch byte {
                case .tab:
                    output[count] = byte
                    count += 1
                case .lineFeed, .formFeed, .carriageReturn:
                    // CRLF: the LF that follows ends the line; a lone CR (classic Mac) is a line end itself.
                    if byte == .carriageReturn, index < input.count, input[index] == .lineFeed { continue }
                    count = blankRunStart
                    output[count] = byte == .formFeed ? .formFeed : .lineFeed
                    count += 1
                    blankRunStart = count
                default:
                    removedControls += 1
                }
            }
            written = blankRunStart
        }
        return Result(utf8: utf8, removedControls: removedControls)
    }

    /// Counts NULs and the other control bytes `normalize` would remove, for the sniffer, which must decide
    /// "text or not" without normalising. Uses the same 2 % threshold as `Result.looksBinary`.
    static func looksBinary(_ utf8: UnsafeBufferPointer<UInt8>) -> (hasNUL: Bool, looksBinary: Bool) {
        var nuls = 0
        var controls = 0
        for byte in utf8 where byte < 0x20 || byte == 0x7F {
            switch byte {
            case 0x00: nuls += 1
            case .tab, .lineFeed, .carriageReturn, .formFeed: break
            default: controls += 1
            }
        }
        return (nuls > 0, (nuls + controls) * 50 > utf8.count)
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
