/// Reads a PDF page by page: pages with a usable text layer give their text; the others are scans that
/// need OCR, which renders them with `render(_:page:limits:)`.
///
/// Every function here blocks in poppler: call it from a thread pool, never from the cooperative pool.
public enum PDFExtractor {
    /// What one page holds.
    public enum PageContent: Sendable, Equatable {
        /// The page's text layer, normalised.
        case textLayer(String)
        /// No usable text layer: the page is an image and must be OCR'd.
        case needsOCR
    }

    public struct Page: Sendable, Equatable {
        public let number: Int
        public let content: PageContent
    }

    /// Opens the PDF, checks its limits and classifies every page.
    ///
    /// A page that needs OCR is also checked against the pixel limit at the resolution it will be rendered
    /// at, so a page too large to OCR fails the document here, before anything is queued for OCR.
    ///
    /// - Throws: `encrypted`, `malformed` (corrupt), `noPages`, `tooManyPages`, `imageTooLarge`.
    public static func pages(of data: PDFData, limits: DocumentLimits = .default) throws(ExtractionError) -> [Page] {
        let document = try PDFDocument(data)
        try limits.checkPageCount(document.pageCount, kind: .pdf)
        var pages: [Page] = []
        pages.reserveCapacity(document.pageCount)
        for number in 1...document.pageCount {
            let page = try document.page(number)
            let text = page.text
            if hasUsableText(text, imageCoverage: page.imageCoverage) {
                pages.append(Page(number: number, content: .textLayer(text)))
            } else {
                let (width, height) = page.size
                _ = try limits.renderResolution(widthPoints: width, heightPoints: height, page: number)
                pages.append(Page(number: number, content: .needsOCR))
            }
        }
        return pages
    }

    /// Renders page `number` for OCR at `limits.renderDPI`, or lower if the page is too large for
    /// `limits.maxPixels` (see `DocumentLimits.renderResolution`).
    public static func render(_ data: PDFData, page number: Int, limits: DocumentLimits = .default) throws(ExtractionError) -> RasterImage {
        let document = try PDFDocument(data)
        guard number >= 1, number <= document.pageCount else {
            throw .malformed(.pdf, reason: "page \(number) does not exist (the document has \(document.pageCount))")
        }
        let page = try document.page(number)
        let (width, height) = page.size
        let dpi = try limits.renderResolution(widthPoints: width, heightPoints: height, page: number)
        return try page.render(dpi: dpi)
    }

    /// Whether a page's text layer is worth keeping instead of OCR.
    ///
    /// - Fewer than 32 letters and digits: a scan, perhaps with a page number or a stamp in real text.
    /// - Mostly images (≥ 90 % of the page) with under 200 letters and digits: a scan with a small text
    ///   overlay (a Bates number, a header added by a scanner).
    /// - More than a quarter of the visible characters are U+FFFD or private-use: fonts without a Unicode
    ///   mapping, whose "text" is glyph ids; OCR reads the page better.
    public static func hasUsableText(_ text: String, imageCoverage: Double) -> Bool {
        var alphanumerics = 0, visible = 0, garbage = 0
        for scalar in text.unicodeScalars where !scalar.properties.isWhitespace {
            visible += 1
            if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                alphanumerics += 1
            } else if scalar == "\u{FFFD}" || scalar.properties.generalCategory == .privateUse {
                garbage += 1
            }
        }
        if alphanumerics < 32 { return false }
        if imageCoverage >= 0.9 && alphanumerics < 200 { return false }
        return garbage * 4 <= visible
    }
}
