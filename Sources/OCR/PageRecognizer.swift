import Foundation

/// What one OCR thread does to a page: decode, straighten, recognise, and turn the page upright when it
/// reads badly. Runs on a pool thread with that thread's engines.
///
/// The order is chosen by measurement (scribe-ocr-benchmark pages, Tesseract 5.3, this machine):
///
/// 1. **Deskew before reading.** Leptonica finds the skew in ~30 ms; pages more than 0.3° off are rotated
///    straight. On ten benchmark pages skewed by ±3° this cut CER from 43.5 % to 13.6 %; below 0.3°
///    Tesseract's own line finding copes, and resampling costs more than it gains.
/// 2. **Recognise** the image as decoded (colour stays colour). Tesseract binarises it itself; Leptonica's
///    Otsu, Sauvola or background normalisation first were no better overall on the benchmark pages.
/// 3. **Orientation without making upright pages pay for it.** OSD costs ~0.2 s a page, 10–40 % of
///    recognising an upright page, and is wrong at low confidence (it called an upright table 180° at
///    confidence 7). So it runs only when there is a reason:
///    - before reading, when Leptonica's 10 ms ascender/descender count says the page is turned (it never
///      said so of an upright benchmark page, but has no opinion on many pages);
///    - after reading, when the mean confidence is below `orientationThreshold` (upright pages read at
///      55–95, pages turned by 180° or 270° at 20–45). Then the turned page is deskewed and read again,
///      and the reading with the higher confidence wins, so a wrong OSD guess never makes the result
///      worse. (Turned by 90° clockwise, Tesseract often finds the vertical lines itself and reads well.)
struct PageRecognizer {
    var detectOrientation = true
    var deskew = true
    /// Mean confidence under which a page might be turned (see above).
    var orientationThreshold = 50.0
    /// Smallest skew worth correcting, in degrees.
    var minimumSkew = 0.3

    struct Engines {
        let recognizer: () throws(OCRError) -> TesseractEngine
        let orientation: () throws(OCRError) -> OrientationDetector
    }

    func recognize(
        _ input: OCRImage, engines: Engines, timeLimit: Duration, cancellation: CancellationFlag
    ) throws(OCRError) -> OCRResult {
        let started = ContinuousClock.now
        let deadline = started + timeLimit
        let decoded: PageImage
        switch input {
        case .encoded(let bytes, let page):
            decoded = try PageImage.decode(bytes, page: page)
        case .gray(let width, let height, let pixels, let dpi):
            decoded = try PageImage.gray(width: width, height: height, pixels: pixels, resolution: dpi)
        }
        var original = try decoded.forRecognition()
        var gray = try original.grayscale()
        let recognizer = try engines.recognizer()
        var turns = 0

        // Leptonica thinks the page is turned: let OSD decide before the first reading.
        if detectOrientation, let hint = gray.orientationHint(), hint != 0,
            let orientation = try engines.orientation().detect(gray), orientation.quarterTurns != 0
        {
            turns = orientation.quarterTurns
            original = try original.rotated(quarterTurns: turns)
            gray = try gray.rotated(quarterTurns: turns)
        }

        let (upright, skew) = try straightened(original, gray: gray)
        var best = try recognizer.recognize(upright, deadline: deadline, timeLimit: timeLimit, cancellation: cancellation)
        var appliedSkew = skew

        if detectOrientation && best.confidence < orientationThreshold,
            let orientation = try engines.orientation().detect(gray), orientation.quarterTurns != 0
        {
            // Turn the original, then measure its skew again: the first measure was taken on sideways lines.
            let (turned, turnedSkew) = try straightened(
                try original.rotated(quarterTurns: orientation.quarterTurns),
                gray: try gray.rotated(quarterTurns: orientation.quarterTurns))
            let second = try recognizer.recognize(turned, deadline: deadline, timeLimit: timeLimit, cancellation: cancellation)
            if second.confidence > best.confidence {
                best = second
                turns = (turns + orientation.quarterTurns) % 4
                appliedSkew = turnedSkew
            }
        }
        return OCRResult(
            text: Self.tidy(best.text), confidence: best.confidence, quarterTurns: turns, deskewDegrees: appliedSkew,
            seconds: (ContinuousClock.now - started) / .seconds(1))
    }

    /// The image with its skew (measured on `gray`) corrected when that is worth it, and the rotation applied.
    private func straightened(_ image: PageImage, gray: PageImage) throws(OCRError) -> (PageImage, Double) {
        guard deskew, let skew = gray.skew(), abs(skew.degrees) >= minimumSkew, skew.confidence >= 3 else {
            return (image, 0)
        }
        return (try image.rotated(degrees: skew.degrees), skew.degrees)
    }

    /// Tesseract ends lines with LF, separates blocks with blank lines and may leave trailing blanks and a
    /// form feed; keep its layout but drop the noise at line ends and at the edges.
    static func tidy(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in line.replacing(/[ \t\u{0C}]+$/, with: "") }
            .joined(separator: "\n")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
