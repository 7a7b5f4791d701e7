/// A page to OCR, as the pool's threads receive it.
public enum OCRImage: Sendable {
    /// An encoded image file (PNG, JPEG, TIFF, GIF, WebP); `page` (from 0) picks a page of a multi-page TIFF.
    case encoded([UInt8], page: Int)
    /// 8-bit gray pixels, row-major, `width × height` bytes (a rendered PDF page).
    case gray(width: Int, height: Int, pixels: [UInt8], dpi: Int)
}

/// What OCR read on one page.
public struct OCRResult: Sendable, Equatable {
    /// The recognised text (Tesseract's layout: lines, blank lines between blocks).
    public let text: String
    /// Tesseract's mean word confidence, 0–100 (0 for a page without words).
    public let confidence: Double
    /// Clockwise quarter turns applied to make the page upright (0–3).
    public let quarterTurns: Int
    /// Clockwise rotation in degrees applied to straighten the text lines (0 when none was needed).
    public let deskewDegrees: Double
    /// Wall time spent on the page on its OCR thread, decoding included.
    public let seconds: Double

    public init(text: String, confidence: Double, quarterTurns: Int, deskewDegrees: Double, seconds: Double) {
        self.text = text
        self.confidence = confidence
        self.quarterTurns = quarterTurns
        self.deskewDegrees = deskewDegrees
        self.seconds = seconds
    }
}
