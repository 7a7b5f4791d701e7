import CLeptonica
import CTesseract
import Synchronization

/// A loaded Tesseract recogniser for a fixed set of languages: the one owner of a `TessBaseAPI`, ended
/// and deleted in `deinit`.
///
/// Loading takes 0.05–0.25 s and ~100 MB per engine on an A4 page, so the pool makes one per thread and
/// reuses it for every page (never a process or an engine per page). Not thread-safe: used only by the
/// thread that made it.
final class TesseractEngine {
    private let handle: OpaquePointer

    /// - Parameters:
    ///   - languages: Tesseract's syntax, e.g. `eng` or `eng+deu`.
    ///   - dataPath: the tessdata folder, or nil for Tesseract's default (`TESSDATA_PREFIX` or the
    ///     compiled-in path).
    init(languages: String, dataPath: String?) throws(OCRError) {
        guard let handle = TessBaseAPICreate() else { throw .engineInitFailed(languages) }
        guard TessBaseAPIInit3(handle, dataPath, languages) == 0 else {
            TessBaseAPIDelete(handle)
            throw .engineInitFailed(languages)
        }
        self.handle = handle
        // Tesseract prints warnings ("Invalid resolution 0 dpi", "Empty page!!") for ordinary pages; they
        // would flood worker logs. Failures still surface through return codes.
        TessBaseAPISetVariable(handle, "debug_file", "/dev/null")
        // Fully automatic page segmentation, the command-line tool's default (psm 3).
        TessBaseAPISetPageSegMode(handle, PSM_AUTO)
    }

    deinit {
        TessBaseAPIEnd(handle)
        TessBaseAPIDelete(handle)
    }

    /// Recognises the whole image.
    ///
    /// - Parameters:
    ///   - deadline: when to give up; Tesseract checks it between words, and the elapsed time is checked
    ///     again afterwards because page layout analysis (before the first word) cannot be interrupted.
    ///   - cancellation: checked between words too, so a cancelled job frees its thread quickly.
    /// - Returns: the UTF-8 text and Tesseract's mean word confidence (0–100).
    func recognize(
        _ image: PageImage, deadline: ContinuousClock.Instant, timeLimit: Duration, cancellation: CancellationFlag
    ) throws(OCRError) -> (text: String, confidence: Double) {
        let remaining = deadline - .now
        guard remaining > .zero else { throw .timeout(seconds: timeLimit / .seconds(1)) }
        let monitor = RecognitionMonitor(deadline: remaining, cancellation: cancellation)
        defer { TessBaseAPIClear(handle) }
        TessBaseAPISetImage2(handle, image.pix)
        if image.resolution < 70 || image.resolution > 2400 {
            // No usable resolution in the file: say 300 DPI (what scans are) instead of Tesseract's guess of
            // 70, which it prints a warning about and which skews its size heuristics.
            TessBaseAPISetSourceResolution(handle, 300)
        }
        let status = TessBaseAPIRecognize(handle, monitor.handle)
        if cancellation.isCancelled { throw .recognitionFailed("cancelled") }
        if ContinuousClock.now >= deadline { throw .timeout(seconds: timeLimit / .seconds(1)) }
        guard status == 0 else { throw .recognitionFailed("Recognize returned \(status)") }
        guard let raw = TessBaseAPIGetUTF8Text(handle) else { throw .recognitionFailed("no text returned") }
        defer { TessDeleteText(raw) }
        return (String(cString: raw), Double(TessBaseAPIMeanTextConf(handle)))
    }
}

/// Tesseract's orientation and script detector (the `osd` model): the one owner of its own `TessBaseAPI`.
/// OSD is a separate model from the recognition languages, so it is a separate engine.
final class OrientationDetector {
    private let handle: OpaquePointer

    init(dataPath: String?) throws(OCRError) {
        guard let handle = TessBaseAPICreate() else { throw .engineInitFailed("osd") }
        guard TessBaseAPIInit3(handle, dataPath, "osd") == 0 else {
            TessBaseAPIDelete(handle)
            throw .engineInitFailed("osd")
        }
        self.handle = handle
        TessBaseAPISetVariable(handle, "debug_file", "/dev/null")
    }

    deinit {
        TessBaseAPIEnd(handle)
        TessBaseAPIDelete(handle)
    }

    /// How far the page is turned: the number of clockwise quarter turns that make it upright, and OSD's
    /// confidence; nil when OSD found too little text to decide.
    func detect(_ image: PageImage) -> (quarterTurns: Int, confidence: Double)? {
        defer { TessBaseAPIClear(handle) }
        TessBaseAPISetImage2(handle, image.pix)
        if image.resolution < 70 || image.resolution > 2400 { TessBaseAPISetSourceResolution(handle, 300) }
        var degrees: Int32 = 0, confidence: Float = 0, scriptConfidence: Float = 0
        var script: UnsafePointer<CChar>?
        guard TessBaseAPIDetectOrientationScript(handle, &degrees, &confidence, &script, &scriptConfidence) != 0 else {
            return nil
        }
        // OSD reports how far the content is turned clockwise (a page turned 90° clockwise reads 90);
        // turning it the rest of the way round makes it upright.
        return ((4 - Int(degrees) / 90) % 4, Double(confidence))
    }
}

/// A cancellation switch shared between the task waiting for a page and the thread recognising it.
final class CancellationFlag: Sendable {
    private let state = Atomic<Bool>(false)
    var isCancelled: Bool { state.load(ordering: .relaxed) }
    func cancel() { state.store(true, ordering: .relaxed) }
}

/// Tesseract's progress monitor (`ETEXT_DESC`) with a deadline and a cancel callback: the one owner of the
/// monitor, deleted in `deinit`. Lives for one `Recognize` call.
private final class RecognitionMonitor {
    let handle: OpaquePointer
    /// The monitor holds an unretained pointer to the flag; this reference keeps it alive meanwhile.
    private let cancellation: CancellationFlag

    init(deadline: Duration, cancellation: CancellationFlag) {
        handle = TessMonitorCreate()
        self.cancellation = cancellation
        let milliseconds = deadline.components.seconds * 1000 + deadline.components.attoseconds / 1_000_000_000_000_000
        TessMonitorSetDeadlineMSecs(handle, Int32(clamping: max(1, milliseconds)))
        TessMonitorSetCancelThis(handle, Unmanaged.passUnretained(cancellation).toOpaque())
        TessMonitorSetCancelFunc(handle) { context, _ in
            guard let context else { return false }
            return Unmanaged<CancellationFlag>.fromOpaque(context).takeUnretainedValue().isCancelled
        }
    }

    deinit { TessMonitorDelete(handle) }
}
