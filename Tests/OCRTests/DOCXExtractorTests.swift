import Extraction
import Testing

@Suite struct DOCXExtractorTests {
    @Test func paragraphsTablesAndPageBreaks() throws {
        let body = DOCX.paragraph("Quarterly report")
            + "<w:p><w:r><w:t>Revenue</w:t></w:r><w:r><w:tab/><w:t>grew</w:t></w:r><w:r><w:br/><w:t>by ten percent.</w:t></w:r></w:p>"
            + "<w:tbl><w:tr><w:tc>\(DOCX.paragraph("Region"))</w:tc><w:tc>\(DOCX.paragraph("Sales"))</w:tc></w:tr>"
            + "<w:tr><w:tc>\(DOCX.paragraph("North"))</w:tc><w:tc>\(DOCX.paragraph("42"))</w:tc></w:tr></w:tbl>"
            + "<w:p><w:r><w:br w:type=\"page\"/></w:r></w:p>"
            + DOCX.paragraph("Appendix &amp; notes")
            + "<w:p><w:del><w:r><w:delText>deleted words</w:delText></w:r></w:del></w:p>"
        let docx = try DOCX.make(body: body)
        #expect(TypeSniffer.sniff(docx, fileName: nil).kind == .docx)
        let pages = try DOCXExtractor.extract(docx)
        #expect(pages.count == 2)
        #expect(pages[0].text == "Quarterly report\n\nRevenue\tgrew\nby ten percent.\n\nRegion\tSales\nNorth\t42")
        #expect(pages[1] == ExtractedPage(number: 2, text: "Appendix & notes"))
    }

    @Test func brokenDocumentsFailWithTheirReason() throws {
        #expect { try DOCXExtractor.extract(Array("PK\u{3}\u{4} not really a zip".utf8)) } throws: { error in
            (error as? ExtractionError)?.code == .malformed
        }
        #expect { try DOCXExtractor.extract(try DOCX.make(body: "<w:p><w:r><w:t>unclosed")) } throws: { error in
            (error as? ExtractionError)?.message.contains("not well-formed") == true
        }
        #expect { try DOCXExtractor.extract(try DOCX.make(body: "<w:p/>")) } throws: { error in
            (error as? ExtractionError)?.code == .emptyFile
        }
    }
}
