import CLeptonica

/// A page image: the one owner of a Leptonica `PIX`, freed in `deinit`.
///
/// Every operation returns a new image and leaves this one as it was. Not thread-safe and not `Sendable`:
/// an image lives on the OCR thread that made it.
final class PageImage {
    let pix: UnsafeMutablePointer<PIX>

    /// Takes ownership of `pix` (one reference).
    private init(owning pix: UnsafeMutablePointer<PIX>) {
        self.pix = pix
    }

    deinit {
        var reference: UnsafeMutablePointer<PIX>? = pix
        pixDestroy(&reference)
    }

    /// Leptonica prints informational messages ("not enough confidence to get orientation") for ordinary
    /// pages; keep warnings and errors only. A process-wide setting, made once when the first pool is made.
    static let quietInformationalMessages: Void = {
        _ = setMsgSeverity(Int32(L_SEVERITY_WARNING))
    }()

    var width: Int { Int(pixGetWidth(pix)) }
    var height: Int { Int(pixGetHeight(pix)) }
    var depth: Int { Int(pixGetDepth(pix)) }
    /// Horizontal resolution from the file or the renderer; 0 when unknown.
    var resolution: Int { Int(pixGetXRes(pix)) }

    /// Decodes PNG, JPEG, TIFF, GIF, WebP (and the other formats Leptonica reads). `page` (from 0) picks a
    /// page of a multi-page TIFF; other formats have only page 0.
    static func decode(_ bytes: [UInt8], page: Int = 0) throws(OCRError) -> PageImage {
        let decoded = bytes.withUnsafeBufferPointer { buffer -> UnsafeMutablePointer<PIX>? in
            guard let base = buffer.baseAddress else { return nil }
            let isTIFF = buffer.starts(with: [0x49, 0x49]) || buffer.starts(with: [0x4D, 0x4D])
            if isTIFF { return pixReadMemTiff(base, buffer.count, Int32(page)) }
            return page == 0 ? pixReadMem(base, buffer.count) : nil
        }
        guard let decoded else {
            throw .unreadableImage(page == 0 ? "the decoder rejected it" : "page \(page + 1) is missing or damaged")
        }
        return PageImage(owning: decoded)
    }

    /// An 8-bit gray image from row-major bytes (0 = black), as rendered from a PDF page.
    static func gray(width: Int, height: Int, pixels: [UInt8], resolution: Int) throws(OCRError) -> PageImage {
        guard width > 0, height > 0, pixels.count == width * height,
            let pix = pixCreate(Int32(width), Int32(height), 8), let data = pixGetData(pix)
        else { throw .unreadableImage("the raster is empty or too large") }
        let image = PageImage(owning: pix)
        let wordsPerLine = Int(pixGetWpl(pix))
        pixels.withUnsafeBytes { source in
            let destination = UnsafeMutableRawPointer(data)
            for row in 0..<height {
                (destination + row * wordsPerLine * 4).copyMemory(from: source.baseAddress! + row * width, byteCount: width)
            }
        }
        // Leptonica keeps bytes in big-endian order within each 32-bit word; on little-endian machines this
        // swaps the rows just copied into that order (and is a no-op on big-endian ones).
        pixEndianByteSwap(pix)
        pixSetResolution(pix, Int32(resolution), Int32(resolution))
        return image
    }

    /// The image's pixels as 8-bit gray, row-major (the inverse of `gray(width:height:pixels:resolution:)`):
    /// for inspecting what OCR saw, and for tests that make turned or noisy pages from real scans.
    func grayPixels() throws(OCRError) -> (width: Int, height: Int, pixels: [UInt8]) {
        let gray = try grayscale()
        // Undo Leptonica's in-word byte order on a copy, so rows can be copied as plain bytes.
        guard let swapped = pixEndianByteSwapNew(gray.pix), let data = pixGetData(swapped) else {
            throw .unreadableImage("its pixels cannot be copied")
        }
        let copy = PageImage(owning: swapped)
        let (width, height, wordsPerLine) = (copy.width, copy.height, Int(pixGetWpl(swapped)))
        let pixels = [UInt8](unsafeUninitializedCapacity: width * height) { buffer, count in
            let source = UnsafeRawPointer(data)
            for row in 0..<height {
                UnsafeMutableRawPointer(buffer.baseAddress! + row * width)
                    .copyMemory(from: source + row * wordsPerLine * 4, byteCount: width)
            }
            count = width * height
        }
        return (width, height, pixels)
    }

    /// The image as the recogniser should get it: colour stays colour (Tesseract picks the best channel
    /// to threshold, which reads some coloured pages better than a luminance conversion done first);
    /// transparent pixels are laid on white (an RGBA scan with a transparent background would otherwise
    /// turn black); 2-, 4- and 16-bit images, which Tesseract does not take, become 8-bit gray.
    func forRecognition() throws(OCRError) -> PageImage {
        if depth == 32 && pixGetSpp(pix) == 4 {
            guard let blended = pixAlphaBlendUniform(pix, 0xFFFF_FF00) else {
                throw .unreadableImage("its transparency cannot be removed")
            }
            pixSetSpp(blended, 3)
            return PageImage(owning: blended)
        }
        if depth == 1 || depth == 8 || depth == 32 { return clone() }
        return try grayscale()
    }

    /// The image as 8-bit gray (luminance; colour maps removed), for measuring skew and orientation.
    func grayscale() throws(OCRError) -> PageImage {
        if depth == 8 && pixGetColormap(pix) == nil { return clone() }
        guard let gray = pixConvertTo8(pix, 0) else { throw .unreadableImage("its pixel format cannot be converted to gray") }
        return PageImage(owning: gray)
    }

    /// A second reference to the same pixels (Leptonica counts references; nothing is copied).
    func clone() -> PageImage { PageImage(owning: pixClone(pix)) }

    /// Rotated clockwise by `quarterTurns` × 90°.
    func rotated(quarterTurns: Int) throws(OCRError) -> PageImage {
        let turns = ((quarterTurns % 4) + 4) % 4
        if turns == 0 { return clone() }
        guard let rotated = pixRotateOrth(pix, Int32(turns)) else { throw .recognitionFailed("rotating the page failed") }
        return PageImage(owning: rotated)
    }

    /// Rotated clockwise by `degrees` about the centre, same size, bringing in white at the corners. Uses
    /// area mapping (interpolation) on gray and colour images, so text stays smooth for the recogniser.
    func rotated(degrees: Double) throws(OCRError) -> PageImage {
        guard let rotated = pixRotate(
            pix, Float(degrees * .pi / 180), Int32(L_ROTATE_AREA_MAP), Int32(L_BRING_IN_WHITE), 0, 0)
        else { throw .recognitionFailed("rotating the page failed") }
        return PageImage(owning: rotated)
    }

    /// Leptonica's quick guess of how the text is turned: the clockwise quarter turns that make it upright
    /// (1–3), 0 when it looks upright, nil when Leptonica is not confident (little text, mixed layouts).
    ///
    /// It counts ascenders and descenders on a 2× reduced binary image: ~10 ms on an A4 page, against
    /// ~0.2 s for Tesseract's OSD. On the benchmark pages it never called an upright page turned, but it
    /// has no opinion on many pages, so it only decides whether OSD runs before the first reading.
    func orientationHint() -> Int? {
        var binary = pixConvertTo1(pix, 130)
        defer { pixDestroy(&binary) }
        var reduced = pixReduceRankBinary2(binary, 1, nil)
        defer { pixDestroy(&reduced) }
        guard reduced != nil else { return nil }
        var upConfidence: Float = 0, leftConfidence: Float = 0, orientation: Int32 = 0
        guard pixOrientDetect(reduced, &upConfidence, &leftConfidence, 0, 0) == 0,
            makeOrientDecision(upConfidence, leftConfidence, 0, 0, &orientation, 0) == 0
        else { return nil }
        switch Int(orientation) {
        case Int(L_TEXT_ORIENT_UP): return 0
        case Int(L_TEXT_ORIENT_LEFT): return 1  // text turned counter-clockwise
        case Int(L_TEXT_ORIENT_DOWN): return 2
        case Int(L_TEXT_ORIENT_RIGHT): return 3  // text turned clockwise
        default: return nil
        }
    }

    /// The rotation (degrees, clockwise, as `rotated(degrees:)` takes it) that straightens the text lines,
    /// with Leptonica's confidence, or nil when none was found (blank page, no lines of text).
    ///
    /// Leptonica sweeps ±7° on a 4× reduced binary image, then refines by binary search at 2×: ~30 ms on an
    /// A4 page at 300 DPI. The binarisation here (fixed threshold 130, Leptonica's default for deskewing)
    /// is only for measuring: the recogniser gets the gray image and binarises it itself, which was as
    /// accurate on the scribe-ocr-benchmark pages as Otsu, Sauvola or background normalisation done here.
    func skew() -> (degrees: Double, confidence: Double)? {
        var binary = pixConvertTo1(pix, 130)
        defer { pixDestroy(&binary) }
        guard binary != nil else { return nil }
        var angle: Float = 0, confidence: Float = 0
        guard pixFindSkew(binary, &angle, &confidence) == 0 else { return nil }
        // pixFindSkew reports the correction in pixRotate's convention (clockwise positive).
        return (Double(angle), Double(confidence))
    }
}
