/// Byte-level Unicode validation and transcoding shared by the sniffer and the text extractor.
///
/// Written by hand rather than with `String(validating:)` because callers need the offset of the first bad
/// byte (users are told where their file is broken), the sniffer must accept a sequence cut off by its 8 KB
/// window, and the pipeline's throughput target makes a single pass over the bytes worth having.
enum UnicodeDecoding {
    /// The encodings `TextExtractor` reads.
    enum Encoding: Equatable {
        case utf8
        case utf16LittleEndian
        case utf16BigEndian

        var name: String {
            switch self {
            case .utf8: "UTF-8"
            case .utf16LittleEndian: "UTF-16LE"
            case .utf16BigEndian: "UTF-16BE"
            }
        }
    }

    /// The encoding a byte-order mark announces, and the mark's length. No mark means UTF-8.
    enum Detection: Equatable {
        case supported(Encoding, bomLength: Int)
        /// A UTF-32 mark: recognised so that it is not misread as UTF-16 followed by NULs.
        case unsupported(name: String)
    }

    /// Where a byte sequence stops being valid.
    struct InvalidSequence: Error {
        let offset: Int
    }

    static func detectEncoding(_ bytes: UnsafeBufferPointer<UInt8>) -> Detection {
        if bytes.starts(with: [0xFF, 0xFE, 0x00, 0x00]) { return .unsupported(name: "UTF-32LE") }
        if bytes.starts(with: [0x00, 0x00, 0xFE, 0xFF]) { return .unsupported(name: "UTF-32BE") }
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { return .supported(.utf8, bomLength: 3) }
        if bytes.starts(with: [0xFF, 0xFE]) { return .supported(.utf16LittleEndian, bomLength: 2) }
        if bytes.starts(with: [0xFE, 0xFF]) { return .supported(.utf16BigEndian, bomLength: 2) }
        return .supported(.utf8, bomLength: 0)
    }

    /// Validates `bytes` in `encoding` and returns them as UTF-8.
    ///
    /// - Parameter allowTruncatedTail: accept an incomplete (but so far valid) sequence at the very end,
    ///   which is dropped. Used when `bytes` is a prefix window of a longer document.
    /// - Throws: the offset, relative to `bytes`, where the first invalid sequence starts.
    static func utf8Bytes(
        of bytes: UnsafeBufferPointer<UInt8>,
        encoding: Encoding,
        allowTruncatedTail: Bool
    ) throws(InvalidSequence) -> [UInt8] {
        switch encoding {
        case .utf8:
            let validCount = try validateUTF8(bytes, allowTruncatedTail: allowTruncatedTail)
            return Array(bytes[..<validCount])
        case .utf16LittleEndian:
            return try transcodeUTF16(bytes, bigEndian: false, allowTruncatedTail: allowTruncatedTail)
        case .utf16BigEndian:
            return try transcodeUTF16(bytes, bigEndian: true, allowTruncatedTail: allowTruncatedTail)
        }
    }

    /// Checks UTF-8 well-formedness (Unicode 15, table 3-7: no overlongs, surrogates or values past
    /// U+10FFFF) and returns how many leading bytes are valid: all of them, or all but a truncated tail.
    static func validateUTF8(
        _ bytes: UnsafeBufferPointer<UInt8>,
        allowTruncatedTail: Bool
    ) throws(InvalidSequence) -> Int {
        let count = bytes.count
        var index = 0
        while index < count {
            // ASCII runs dominate real text: test eight bytes at a time.
            if index + 8 <= count,
                UnsafeRawPointer(bytes.baseAddress! + index).loadUnaligned(as: UInt64.self)
                    & 0x8080_8080_8080_8080 == 0
            {
                index += 8
                continue
            }
            let lead = bytes[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            // Lead byte → sequence length and the allowed range of the second byte (which is what
            // excludes overlongs, surrogates and values past U+10FFFF).
            let (length, secondRange): (Int, ClosedRange<UInt8>)
            switch lead {
            case 0xC2...0xDF: (length, secondRange) = (2, 0x80...0xBF)
            case 0xE0: (length, secondRange) = (3, 0xA0...0xBF)
            case 0xE1...0xEC, 0xEE...0xEF: (length, secondRange) = (3, 0x80...0xBF)
            case 0xED: (length, secondRange) = (3, 0x80...0x9F)
            case 0xF0: (length, secondRange) = (4, 0x90...0xBF)
            case 0xF1...0xF3: (length, secondRange) = (4, 0x80...0xBF)
            case 0xF4: (length, secondRange) = (4, 0x80...0x8F)
            default: throw InvalidSequence(offset: index)
            }
            for position in 1..<length {
                guard index + position < count else {
                    // The sequence is valid so far but the input ends inside it.
                    if allowTruncatedTail { return index }
                    throw InvalidSequence(offset: index)
                }
                let byte = bytes[index + position]
                let allowed = position == 1 ? secondRange : 0x80...0xBF
                guard allowed.contains(byte) else { throw InvalidSequence(offset: index) }
            }
            index += length
        }
        return count
    }

    private static func transcodeUTF16(
        _ bytes: UnsafeBufferPointer<UInt8>,
        bigEndian: Bool,
        allowTruncatedTail: Bool
    ) throws(InvalidSequence) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        let unitCount = bytes.count / 2

        func unit(_ index: Int) -> UInt32 {
            let first = UInt32(bytes[2 * index])
            let second = UInt32(bytes[2 * index + 1])
            return bigEndian ? first << 8 | second : second << 8 | first
        }

        var index = 0
        while index < unitCount {
            let value = unit(index)
            var scalarValue = value
            switch value {
            case 0xD800...0xDBFF:
                guard index + 1 < unitCount else {
                    if allowTruncatedTail && bytes.count - 2 * index <= 3 { return output }
                    throw InvalidSequence(offset: 2 * index)
                }
                let low = unit(index + 1)
                guard (0xDC00...0xDFFF).contains(low) else { throw InvalidSequence(offset: 2 * index) }
                scalarValue = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                index += 2
            case 0xDC00...0xDFFF:
                throw InvalidSequence(offset: 2 * index)
            default:
                index += 1
            }
            // Surrogates were excluded above, so the value is always a scalar.
            output.append(contentsOf: Unicode.UTF8.encode(Unicode.Scalar(scalarValue)!)!)
        }
        if bytes.count % 2 == 1 && !allowTruncatedTail {
            throw InvalidSequence(offset: bytes.count - 1)
        }
        return output
    }
}
