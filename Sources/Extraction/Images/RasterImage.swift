/// An 8-bit grayscale page image, row by row without padding: what rendering a PDF page produces and what
/// OCR consumes. Grayscale because Tesseract reads gray (it converts colour itself), and a quarter of the
/// memory of RGBA at 300 DPI (8.7 MB instead of 35 MB for an A4 page).
public struct RasterImage: Sendable {
    public let width: Int
    public let height: Int
    /// `width × height` bytes, 0 = black, 255 = white.
    public let pixels: [UInt8]
    /// Resolution the page was rendered at, so OCR knows the text size.
    public let dpi: Int

    public init(width: Int, height: Int, pixels: [UInt8], dpi: Int) {
        precondition(pixels.count == width * height, "a raster needs width × height pixels")
        self.width = width
        self.height = height
        self.pixels = pixels
        self.dpi = dpi
    }
}
