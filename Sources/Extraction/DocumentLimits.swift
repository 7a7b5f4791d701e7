/// Limits that keep one document from exhausting a worker's memory or time. They are checked from headers
/// and page counts before anything large is decoded, and a document over a limit fails permanently with a
/// reason that names the limit (see `ExtractionError.limitExceeded`).
///
/// The values come from the pipeline definition (the `ocr` stage's `max_pages` and `max_pixels` options);
/// the defaults are generous for office documents and scans.
public struct DocumentLimits: Sendable, Equatable {
    /// Most pages a PDF or multi-page TIFF may have.
    public var maxPages: Int
    /// Most pixels one page image may have, from its header (images) or at the rendering resolution (PDF
    /// pages). 50 million pixels is an A2 sheet at 300 DPI; the scale of a decompression bomb is billions.
    public var maxPixels: Int
    /// Resolution at which scanned PDF pages are rendered for OCR. 300 DPI is where Tesseract is most
    /// accurate on body text; lower loses small print, higher costs time without gaining accuracy.
    public var renderDPI: Double
    /// A PDF page too large for `maxPixels` at `renderDPI` is rendered at the highest resolution that fits,
    /// but never below this one (below it OCR reads nothing useful, so the page fails instead).
    public var minimumRenderDPI: Double

    public init(maxPages: Int = 500, maxPixels: Int = 50_000_000, renderDPI: Double = 300, minimumRenderDPI: Double = 150) {
        self.maxPages = maxPages
        self.maxPixels = maxPixels
        self.renderDPI = renderDPI
        self.minimumRenderDPI = minimumRenderDPI
    }

    public static let `default` = DocumentLimits()

    /// Throws when a paged document has no pages or more than `maxPages`.
    public func checkPageCount(_ count: Int, kind: DocumentKind) throws(ExtractionError) {
        if count == 0 { throw .noPages(kind) }
        if count > maxPages { throw .tooManyPages(kind, count: count, limit: maxPages) }
    }

    /// Throws when a page image is over `maxPixels` (or has a zero side, which no decoder can read).
    public func checkImageSize(width: Int, height: Int, page: Int, kind: DocumentKind) throws(ExtractionError) {
        guard width > 0, height > 0 else {
            throw .malformed(kind, reason: "page \(page) has a zero width or height in its header")
        }
        // Multiply in Double: header sizes are attacker-controlled and their product can overflow Int.
        if Double(width) * Double(height) > Double(maxPixels) {
            throw .imageTooLarge(kind, page: page, width: width, height: height, limit: maxPixels)
        }
    }

    /// The resolution to render a PDF page of `width` × `height` points at: `renderDPI` when the result fits
    /// in `maxPixels`, otherwise the highest resolution that does; throws when even `minimumRenderDPI` would
    /// not fit (a page several metres wide).
    public func renderResolution(widthPoints: Double, heightPoints: Double, page: Int) throws(ExtractionError) -> Double {
        let widthInches = widthPoints / 72, heightInches = heightPoints / 72
        guard widthInches > 0, heightInches > 0, widthInches.isFinite, heightInches.isFinite else {
            throw .malformed(.pdf, reason: "page \(page) has an empty or invalid page box")
        }
        let fitting = (Double(maxPixels) / (widthInches * heightInches)).squareRoot()
        let dpi = min(renderDPI, fitting.rounded(.down))
        if dpi < minimumRenderDPI {
            throw .imageTooLarge(
                .pdf, page: page, width: Int((widthInches * minimumRenderDPI).rounded(.up)),
                height: Int((heightInches * minimumRenderDPI).rounded(.up)), limit: maxPixels)
        }
        return dpi
    }
}
