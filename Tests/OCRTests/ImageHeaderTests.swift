import Extraction
import Testing

@Suite struct ImageHeaderTests {
    @Test func readsPNGSizeWithoutDecoding() throws {
        let header = try ImageHeader.read(try TestData.bytes("ocr-pages/scribe-ocr-benchmark/img/filing_01.png"), kind: .png)
        #expect(header.pages == [.init(width: 2000, height: 2590)])
    }

    @Test func decompressionBombIsRejectedFromItsHeader() throws {
        let bomb = Bomb.png
        #expect(bomb.count < 100)
        #expect(TypeSniffer.sniff(bomb, fileName: nil).kind == .png)
        #expect { try ImageHeader.read(bomb, kind: .png) } throws: { error in
            guard let error = error as? ExtractionError else { return false }
            return error.code == .limitExceeded && error.message.contains("100000 × 100000")
                && error.message.contains("decompression bombs")
        }
    }

    @Test func readsJPEGFrameHeaderAfterOtherSegments() throws {
        // SOI, an APP0 segment of 16 bytes, then SOF0 with height 1200 and width 900.
        var jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10] + Array(repeating: 0, count: 14)
        jpeg += [0xFF, 0xC0, 0x00, 0x11, 0x08, 0x04, 0xB0, 0x03, 0x84, 0x03] + Array(repeating: 0, count: 9)
        #expect(try ImageHeader.read(jpeg, kind: .jpeg).pages == [.init(width: 900, height: 1200)])
        #expect(throws: ExtractionError.self) { try ImageHeader.read([0xFF, 0xD8, 0xFF, 0xD9], kind: .jpeg) }
    }

    @Test func countsEveryPageOfATIFFAndChecksEach() throws {
        let tiff = Self.tiff(pages: [(100, 200), (300, 400), (50_000, 50_000)])
        #expect { try ImageHeader.read(tiff, kind: .tiff) } throws: { error in
            (error as? ExtractionError)?.message.contains("Page 3") == true
        }
        let small = Self.tiff(pages: [(100, 200), (300, 400)])
        #expect(try ImageHeader.read(small, kind: .tiff).pages == [.init(width: 100, height: 200), .init(width: 300, height: 400)])
        #expect { try ImageHeader.read(Self.tiff(pages: Array(repeating: (10, 10), count: 6)), kind: .tiff, limits: DocumentLimits(maxPages: 5)) } throws: { error in
            (error as? ExtractionError)?.message.contains("more than the limit of 5") == true
        }
    }

    @Test func gifAndWebPSizes() throws {
        let gif = Array("GIF89a".utf8) + [0x20, 0x03, 0x58, 0x02] + Array(repeating: 0, count: 10)
        #expect(try ImageHeader.read(gif, kind: .gif).pages == [.init(width: 800, height: 600)])
        var webp = Array("RIFF".utf8) + [0, 0, 0, 0] + Array("WEBPVP8X".utf8) + [10, 0, 0, 0, 0, 0, 0, 0]
        webp += [0x1F, 0x03, 0x00, 0x57, 0x02, 0x00]  // canvas 800 × 600, stored minus one
        #expect(try ImageHeader.read(webp, kind: .webp).pages == [.init(width: 800, height: 600)])
    }

    /// A little-endian TIFF with one directory per page holding only ImageWidth and ImageLength (LONG).
    static func tiff(pages: [(Int, Int)]) -> [UInt8] {
        var bytes: [UInt8] = [0x49, 0x49, 0x2A, 0x00, 8, 0, 0, 0]
        func u16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
        func u32(_ value: Int) -> [UInt8] { u16(value & 0xFFFF) + u16(value >> 16) }
        for (index, (width, height)) in pages.enumerated() {
            let next = index + 1 < pages.count ? bytes.count + 2 + 2 * 12 + 4 : 0
            bytes += u16(2) + u16(256) + u16(4) + u32(1) + u32(width) + u16(257) + u16(4) + u32(1) + u32(height) + u32(next)
        }
        return bytes
    }
}
