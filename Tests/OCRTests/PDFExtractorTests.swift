import Extraction
import Testing

@Suite struct PDFExtractorTests {
    @Test func bornDigitalPagesKeepTheirTextLayer() throws {
        let pages = try PDFExtractor.pages(of: PDFData(try TestData.bytes("pdfs/born-digital/2020.acl-main.447.pdf")))
        #expect(pages.count == 15)
        guard case .textLayer(let text) = pages[0].content else { Issue.record("page 1 has no text layer"); return }
        #expect(text.contains("S2ORC"))
    }

    @Test func scannedPagesNeedOCR() throws {
        let pages = try PDFExtractor.pages(of: PDFData(try TestData.bytes("pdfs/scanned/multipage.pdf")))
        #expect(pages.count == 6)
        #expect(pages.allSatisfy { $0.content == .needsOCR })
    }

    /// A text page followed by a scanned page: one of each.
    @Test func mixedPDFHasBothKindsOfPages() throws {
        let mixed = try TestData.unitedPDF(["pdfs/born-digital/scotus-transcript-p1.pdf", "ocr-pages/ocrmypdf-linn/linn.pdf"])
        let pages = try PDFExtractor.pages(of: PDFData(mixed))
        #expect(pages.map(\.number) == [1, 2])
        guard case .textLayer(let text) = pages[0].content else { Issue.record("page 1 has no text layer"); return }
        #expect(text.contains("SUPREME COURT"))
        #expect(pages[1].content == .needsOCR)
    }

    @Test func scannedPageRendersAt300DPI() throws {
        let raster = try PDFExtractor.render(PDFData(try TestData.bytes("ocr-pages/ocrmypdf-linn/linn.pdf")), page: 1)
        #expect(raster.dpi == 300)
        #expect(raster.width == 2550 && raster.height == 3300)  // US letter
        // A printed page: mostly white, some black.
        let dark = raster.pixels.lazy.filter { $0 < 128 }.count
        #expect(dark > raster.pixels.count / 100 && dark < raster.pixels.count / 2)
    }

    /// The 30-inch page of multipage.pdf would be 9000 × 9000 pixels at 300 DPI; it renders smaller to fit.
    @Test func hugePageRendersBelow300DPIWithinThePixelLimit() throws {
        let raster = try PDFExtractor.render(PDFData(try TestData.bytes("pdfs/scanned/multipage.pdf")), page: 2)
        #expect(raster.width * raster.height <= DocumentLimits.default.maxPixels)
        #expect(raster.dpi < 300 && raster.dpi >= 150)
        #expect(throws: ExtractionError.self) {
            try PDFExtractor.pages(of: PDFData(try TestData.bytes("pdfs/scanned/multipage.pdf")), limits: DocumentLimits(maxPixels: 5_000_000))
        }
    }

    @Test func rotatedPageIsRenderedTurned() throws {
        // /Rotate 90 on a landscape media box: displayed (and rendered) as portrait.
        let raster = try PDFExtractor.render(PDFData(try TestData.bytes("ocr-pages/ocrmypdf-linn/rotated_skew.pdf")), page: 1)
        #expect(raster.height > raster.width)
    }

    @Test func badPDFsFailWithTheirReason() throws {
        #expect { try PDFExtractor.pages(of: PDFData(MiniPDF.encrypted)) } throws: { error in
            (error as? ExtractionError)?.code == .encrypted
        }
        #expect { try PDFExtractor.pages(of: PDFData(MiniPDF.corrupt)) } throws: { error in
            (error as? ExtractionError)?.code == .malformed
        }
        #expect { try PDFExtractor.pages(of: PDFData(MiniPDF.noPages)) } throws: { error in
            (error as? ExtractionError)?.code == .noPages
        }
        #expect { try PDFExtractor.pages(of: PDFData(try TestData.bytes("ocr-pages/ocrmypdf-linn/cardinal.pdf")), limits: DocumentLimits(maxPages: 3)) } throws: { error in
            (error as? ExtractionError)?.message.contains("has 4 pages, more than the limit of 3") == true
        }
    }

    @Test func textLayerHeuristic() {
        #expect(!PDFExtractor.hasUsableText("", imageCoverage: 0))
        #expect(!PDFExtractor.hasUsableText("Page 3", imageCoverage: 0))
        let sentence = "The quick brown fox jumps over the lazy dog near the river bank today."
        #expect(PDFExtractor.hasUsableText(sentence, imageCoverage: 0))
        #expect(!PDFExtractor.hasUsableText(sentence, imageCoverage: 0.95), "a full-page scan with a stamp")
        #expect(!PDFExtractor.hasUsableText(sentence + String(repeating: "\u{FFFD}", count: 100), imageCoverage: 0))
    }
}
