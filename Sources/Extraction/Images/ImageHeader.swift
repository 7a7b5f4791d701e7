/// The size of each page of an image, read from its header without decoding any pixels.
///
/// This is what makes the pixel limit safe against decompression bombs: a 40 KB PNG can claim
/// 100,000 × 100,000 pixels, and only the header says so before a decoder allocates 10 GB. Multi-page TIFFs
/// list every page (image file directory); the other formats have one page (a GIF's first frame, which is
/// what decoders return).
public struct ImageHeader: Sendable, Equatable {
    public struct PageSize: Sendable, Equatable {
        public let width: Int
        public let height: Int

        public init(width: Int, height: Int) {
            self.width = width
            self.height = height
        }
    }

    public let kind: DocumentKind
    public let pages: [PageSize]

    public init(kind: DocumentKind, pages: [PageSize]) {
        self.kind = kind
        self.pages = pages
    }

    /// Reads the header of a PNG, JPEG, TIFF, GIF or WebP image and checks it against `limits`.
    ///
    /// - Throws: `malformed` when the header is truncated or inconsistent; `noPages`, `tooManyPages` and
    ///   `imageTooLarge` for the limits; `unsupportedType` for a kind that is not an image.
    public static func read(
        _ bytes: [UInt8],
        kind: DocumentKind,
        limits: DocumentLimits = .default
    ) throws(ExtractionError) -> ImageHeader {
        let pages: [PageSize]
        switch kind {
        case .png: pages = [try png(bytes)]
        case .jpeg: pages = [try jpeg(bytes)]
        case .gif: pages = [try gif(bytes)]
        case .webp: pages = [try webp(bytes)]
        case .tiff: pages = try tiff(bytes, maxPages: limits.maxPages)
        case .pdf, .zip, .docx, .html, .markdown, .plainText, .unknown: throw .unsupportedType(kind)
        }
        try limits.checkPageCount(pages.count, kind: kind)
        for (index, page) in pages.enumerated() {
            try limits.checkImageSize(width: page.width, height: page.height, page: index + 1, kind: kind)
        }
        return ImageHeader(kind: kind, pages: pages)
    }

    // MARK: - Formats

    /// PNG: the IHDR chunk must come first, right after the signature.
    private static func png(_ bytes: [UInt8]) throws(ExtractionError) -> PageSize {
        let reader = ByteReader(bytes, bigEndian: true)
        guard let chunk = reader.bytes(at: 12, count: 4), chunk == Array("IHDR".utf8),
            let width = reader.uint32(at: 16), let height = reader.uint32(at: 20)
        else { throw .malformed(.png, reason: "no IHDR header chunk") }
        return PageSize(width: Int(width), height: Int(height))
    }

    /// JPEG: walks the marker segments to the first start-of-frame (SOF0–SOF15 except DHT, JPG and DAC).
    private static func jpeg(_ bytes: [UInt8]) throws(ExtractionError) -> PageSize {
        let reader = ByteReader(bytes, bigEndian: true)
        var offset = 2
        while offset + 4 <= bytes.count {
            guard bytes[offset] == 0xFF else { throw .malformed(.jpeg, reason: "a marker is missing at byte \(offset)") }
            let marker = bytes[offset + 1]
            if marker == 0xFF { offset += 1; continue }  // fill byte
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { offset += 2; continue }
            if marker == 0xD9 || marker == 0xDA { break }  // end of image, or scan data without a frame header
            guard let length = reader.uint16(at: offset + 2), length >= 2 else { break }
            if (0xC0...0xCF).contains(marker), marker != 0xC4, marker != 0xC8, marker != 0xCC {
                guard let height = reader.uint16(at: offset + 5), let width = reader.uint16(at: offset + 7) else { break }
                return PageSize(width: Int(width), height: Int(height))
            }
            offset += 2 + Int(length)
        }
        throw .malformed(.jpeg, reason: "no frame header (SOF) before the image data")
    }

    private static func gif(_ bytes: [UInt8]) throws(ExtractionError) -> PageSize {
        let reader = ByteReader(bytes, bigEndian: false)
        guard let width = reader.uint16(at: 6), let height = reader.uint16(at: 8) else {
            throw .malformed(.gif, reason: "the logical screen descriptor is truncated")
        }
        return PageSize(width: Int(width), height: Int(height))
    }

    /// WebP: the first chunk is VP8X (extended: canvas size), VP8 (lossy key frame) or VP8L (lossless).
    private static func webp(_ bytes: [UInt8]) throws(ExtractionError) -> PageSize {
        let reader = ByteReader(bytes, bigEndian: false)
        guard let fourCC = reader.bytes(at: 12, count: 4) else { throw .malformed(.webp, reason: "no image chunk") }
        switch String(decoding: fourCC, as: UTF8.self) {
        case "VP8X":
            guard let width = reader.uint24(at: 24), let height = reader.uint24(at: 27) else { break }
            return PageSize(width: Int(width) + 1, height: Int(height) + 1)
        case "VP8 ":
            guard reader.bytes(at: 23, count: 3) == [0x9D, 0x01, 0x2A], let width = reader.uint16(at: 26),
                let height = reader.uint16(at: 28)
            else { break }
            return PageSize(width: Int(width & 0x3FFF), height: Int(height & 0x3FFF))
        case "VP8L":
            guard bytes.count > 20, bytes[20] == 0x2F, let bits = reader.uint32(at: 21) else { break }
            return PageSize(width: Int(bits & 0x3FFF) + 1, height: Int((bits >> 14) & 0x3FFF) + 1)
        default:
            break
        }
        throw .malformed(.webp, reason: "the image chunk header is truncated or unknown")
    }

    /// TIFF and BigTIFF: follows the chain of image file directories, one per page, reading each page's
    /// ImageWidth (256) and ImageLength (257). Stops after `maxPages + 1` pages (enough to fail the limit)
    /// and on a directory that points back to one already seen (a loop in a crafted file).
    private static func tiff(_ bytes: [UInt8], maxPages: Int) throws(ExtractionError) -> [PageSize] {
        guard bytes.count >= 8 else { throw .malformed(.tiff, reason: "the header is truncated") }
        let reader = ByteReader(bytes, bigEndian: bytes[0] == 0x4D)
        let isBig = reader.uint16(at: 2) == 43
        var offset = isBig ? reader.uint64(at: 8).map { Int(clamping: $0) } : reader.uint32(at: 4).map { Int($0) }
        var visited: Set<Int> = []
        var pages: [PageSize] = []
        while let directory = offset, directory != 0, pages.count <= maxPages {
            guard visited.insert(directory).inserted else { break }
            let countSize = isBig ? 8 : 2, entrySize = isBig ? 20 : 12
            guard let rawCount = isBig ? reader.uint64(at: directory).map({ Int(clamping: $0) }) : reader.uint16(at: directory).map({ Int($0) }),
                rawCount < 10_000
            else { throw .malformed(.tiff, reason: "image file directory \(pages.count + 1) is truncated") }
            var width = 0, height = 0
            for index in 0..<rawCount {
                let entry = directory + countSize + index * entrySize
                guard let tag = reader.uint16(at: entry), let type = reader.uint16(at: entry + 2) else {
                    throw .malformed(.tiff, reason: "image file directory \(pages.count + 1) is truncated")
                }
                guard tag == 256 || tag == 257 else { continue }
                let valueOffset = entry + (isBig ? 12 : 8)
                // SHORT (3) or LONG (4), stored in the entry itself (LONG8 = 16 in BigTIFF).
                let value: Int? =
                    switch type {
                    case 3: reader.uint16(at: valueOffset).map { Int($0) }
                    case 4: reader.uint32(at: valueOffset).map { Int($0) }
                    case 16: reader.uint64(at: valueOffset).map { Int(clamping: $0) }
                    default: nil
                    }
                guard let value else { throw .malformed(.tiff, reason: "page \(pages.count + 1) has an unreadable size") }
                if tag == 256 { width = value } else { height = value }
            }
            pages.append(PageSize(width: width, height: height))
            let next = directory + countSize + rawCount * entrySize
            offset = isBig ? reader.uint64(at: next).map { Int(clamping: $0) } : reader.uint32(at: next).map { Int($0) }
        }
        return pages
    }
}

/// Bounds-checked reads of fixed-size integers from a byte array: every read of a header field returns nil
/// past the end instead of trapping, since headers come from untrusted files.
private struct ByteReader {
    let bytes: [UInt8]
    let bigEndian: Bool

    init(_ bytes: [UInt8], bigEndian: Bool) {
        self.bytes = bytes
        self.bigEndian = bigEndian
    }

    func bytes(at offset: Int, count: Int) -> [UInt8]? {
        guard offset >= 0, count >= 0, offset <= bytes.count - count else { return nil }
        return Array(bytes[offset..<offset + count])
    }

    private func integer(at offset: Int, size: Int) -> UInt64? {
        guard let field = bytes(at: offset, count: size) else { return nil }
        return (bigEndian ? field : field.reversed()).reduce(0) { $0 << 8 | UInt64($1) }
    }

    func uint16(at offset: Int) -> UInt16? { integer(at: offset, size: 2).map { UInt16($0) } }
    func uint24(at offset: Int) -> UInt32? { integer(at: offset, size: 3).map { UInt32($0) } }
    func uint32(at offset: Int) -> UInt32? { integer(at: offset, size: 4).map { UInt32($0) } }
    func uint64(at offset: Int) -> UInt64? { integer(at: offset, size: 8) }
}
