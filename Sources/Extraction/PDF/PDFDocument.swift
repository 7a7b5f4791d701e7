import CPoppler

/// A PDF's bytes, held once and shared by every thread that opens the document.
///
/// OCR renders a document's scanned pages on several threads at once; each thread opens its own
/// `PDFDocument` (poppler's document objects are not thread-safe), and all of them read this one copy.
///
/// `@unchecked Sendable` is safe: the wrapped `GBytes` is immutable after creation and GLib counts its
/// references atomically; this class only reads it and releases its one reference in `deinit`.
public final class PDFData: @unchecked Sendable {
    let bytes: OpaquePointer
    public let count: Int

    public init(_ data: [UInt8]) {
        bytes = data.withUnsafeBytes { g_bytes_new($0.baseAddress, gsize($0.count)) }
        count = data.count
    }

    deinit { g_bytes_unref(bytes) }
}

/// An open PDF: the one owner of a `PopplerDocument`. Not thread-safe (poppler's objects are not); open one
/// per thread from a shared `PDFData`. Every call blocks: run it on a thread pool, never on the cooperative
/// pool.
public final class PDFDocument {
    private let handle: OpaquePointer
    /// Keeps the bytes alive for as long as poppler reads them.
    private let data: PDFData

    /// Opens a PDF without a password.
    ///
    /// - Throws: `encrypted` when the document needs a password; `malformed` when poppler cannot read it.
    public init(_ data: PDFData) throws(ExtractionError) {
        var error: UnsafeMutablePointer<GError>?
        guard let document = poppler_document_new_from_bytes(data.bytes, nil, &error) else {
            defer { if error != nil { g_error_free(error) } }
            if let error, error.pointee.domain == poppler_error_quark() {
                switch Int(error.pointee.code) {
                case Int(POPPLER_ERROR_ENCRYPTED.rawValue): throw .encrypted(.pdf)
                case Int(POPPLER_ERROR_BAD_CATALOG.rawValue): throw .malformed(.pdf, reason: "its page catalog is unreadable")
                default: break
                }
            }
            throw .malformed(.pdf, reason: "it could not be opened as a PDF")
        }
        self.handle = document
        self.data = data
    }

    deinit { g_object_unref(UnsafeMutableRawPointer(handle)) }

    public var pageCount: Int { Int(poppler_document_get_n_pages(handle)) }

    /// Page `number`, counted from 1.
    public func page(_ number: Int) throws(ExtractionError) -> PDFPage {
        guard number >= 1, number <= pageCount, let page = poppler_document_get_page(handle, Int32(number - 1)) else {
            throw .malformed(.pdf, reason: "page \(number) cannot be read")
        }
        return PDFPage(page, number: number, document: self)
    }
}

/// One page of an open `PDFDocument`, the one owner of its `PopplerPage`. Same threading rule as the
/// document.
public final class PDFPage {
    private let handle: OpaquePointer
    public let number: Int
    /// Poppler pages point into their document: keep it open.
    private let document: PDFDocument

    fileprivate init(_ handle: OpaquePointer, number: Int, document: PDFDocument) {
        self.handle = handle
        self.number = number
        self.document = document
    }

    deinit { g_object_unref(UnsafeMutableRawPointer(handle)) }

    /// Width and height in points (1/72 inch), as displayed: a page with `/Rotate 90` is reported turned.
    public var size: (width: Double, height: Double) {
        var width = 0.0, height = 0.0
        poppler_page_get_size(handle, &width, &height)
        return (width, height)
    }

    /// The text layer in reading order, normalised like every other extractor's text (see
    /// `TextNormalizer`). Empty for a page that is only an image.
    public var text: String {
        guard let raw = poppler_page_get_text(handle) else { return "" }
        defer { g_free(raw) }
        let utf8 = UnsafeBufferPointer(start: UnsafeRawPointer(raw).assumingMemoryBound(to: UInt8.self), count: strlen(raw))
        // Poppler returns valid UTF-8; decode defensively (repairing) rather than trusting it.
        let repaired = Array(String(decoding: utf8, as: UTF8.self).utf8)
        let normalized = repaired.withUnsafeBufferPointer(TextNormalizer.normalize).utf8
        return String(decoding: normalized.trimmingBlankEdges(keepingFormFeeds: false), as: UTF8.self)
    }

    /// The fraction of the page's area covered by images (overlaps counted twice, capped at 1): a page that
    /// is one big image is a scan, whatever little text sits on top of it.
    public var imageCoverage: Double {
        let (width, height) = size
        guard width > 0, height > 0, let mappings = poppler_page_get_image_mapping(handle) else { return 0 }
        defer { poppler_page_free_image_mapping(mappings) }
        var covered = 0.0
        var node: UnsafeMutablePointer<GList>? = mappings
        while let current = node {
            if let mapping = current.pointee.data?.assumingMemoryBound(to: PopplerImageMapping.self) {
                let area = mapping.pointee.area
                covered += abs(area.x2 - area.x1) * abs(area.y2 - area.y1)
            }
            node = current.pointee.next
        }
        return min(1, covered / (width * height))
    }

    /// Renders the page at `dpi` into an 8-bit gray raster, on white, as it would print (annotations that
    /// are hidden in print are left out).
    ///
    /// - Throws: `malformed` when cairo cannot allocate the surface (the caller checks the size against
    ///   `DocumentLimits` first, see `DocumentLimits.renderResolution`).
    public func render(dpi: Double) throws(ExtractionError) -> RasterImage {
        let (widthPoints, heightPoints) = size
        let width = Int((widthPoints * dpi / 72).rounded()), height = Int((heightPoints * dpi / 72).rounded())
        guard width > 0, height > 0, width < 32_768, height < 32_768 else {
            throw .malformed(.pdf, reason: "page \(number) has an unusable size (\(width) × \(height) pixels at \(Int(dpi)) DPI)")
        }
        guard let surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(width), Int32(height)) else {
            throw .malformed(.pdf, reason: "page \(number) could not be rendered (no memory for the image)")
        }
        defer { cairo_surface_destroy(surface) }
        guard cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS, let context = cairo_create(surface) else {
            throw .malformed(.pdf, reason: "page \(number) could not be rendered (no memory for the image)")
        }
        cairo_set_source_rgb(context, 1, 1, 1)
        cairo_paint(context)
        cairo_scale(context, dpi / 72, dpi / 72)
        poppler_page_render_for_printing(handle, context)
        let status = cairo_status(context)
        cairo_destroy(context)
        cairo_surface_flush(surface)
        guard status == CAIRO_STATUS_SUCCESS, let data = cairo_image_surface_get_data(surface) else {
            throw .malformed(.pdf, reason: "page \(number) could not be rendered")
        }
        let stride = Int(cairo_image_surface_get_stride(surface))
        // RGB24 is one native-endian 32-bit word per pixel, 0x00RRGGBB. Luma with the ITU-R BT.601 weights
        // (what Leptonica and Tesseract use), in fixed point.
        let pixels = [UInt8](unsafeUninitializedCapacity: width * height) { gray, count in
            for row in 0..<height {
                let line = UnsafeRawPointer(data + row * stride).assumingMemoryBound(to: UInt32.self)
                let out = row * width
                for column in 0..<width {
                    let pixel = line[column]
                    let red = (pixel >> 16) & 0xFF, green = (pixel >> 8) & 0xFF, blue = pixel & 0xFF
                    gray[out + column] = UInt8((red * 77 + green * 150 + blue * 29) >> 8)
                }
            }
            count = width * height
        }
        return RasterImage(width: width, height: height, pixels: pixels, dpi: Int(dpi.rounded()))
    }
}
