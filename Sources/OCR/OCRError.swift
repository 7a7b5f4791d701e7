/// Why a page could not be OCR'd.
///
/// Following the project's error convention, `description` is safe to log and to show: it never contains
/// page text or file names. `debugDescription` adds where the error was raised.
public struct OCRError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case languageUnavailable, unreadableImage, timeout, recognitionFailed, shutDown
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A configured language has no trained data installed (a setup problem).
        public static let languageUnavailable = Code(.languageUnavailable)
        /// The image bytes cannot be decoded (corrupt, truncated, or a format Leptonica lacks).
        public static let unreadableImage = Code(.unreadableImage)
        /// The page took longer than the per-page time limit.
        public static let timeout = Code(.timeout)
        /// Tesseract failed on the page for another reason.
        public static let recognitionFailed = Code(.recognitionFailed)
        /// The pool was shut down before the page ran.
        public static let shutDown = Code(.shutDown)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// What happened and what to do about it.
    public let message: String
    public let file: String
    public let line: Int

    /// Whether trying the same page again cannot help: the input or the configuration is at fault.
    public var isPermanent: Bool {
        code == .unreadableImage || code == .timeout || code == .languageUnavailable
    }

    private init(code: Code, message: String, file: String, line: Int) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
    }

    public var description: String { message }
    public var debugDescription: String { "OCRError(code: \(code), message: \"\(message)\", raised at \(file):\(line))" }

    static func languageUnavailable(_ language: String, searched: [String], file: String = #fileID, line: Int = #line) -> Self {
        let package = language == "osd" ? "tesseract-ocr-osd" : "tesseract-ocr-\(language.lowercased().replacingOccurrences(of: "_", with: "-"))"
        return Self(
            code: .languageUnavailable,
            message: "no Tesseract data for language '\(language)' (looked for \(language).traineddata in "
                + "\(searched.joined(separator: ", "))): install it (apt-get install \(package)) or set TESSDATA_PREFIX",
            file: file, line: line)
    }

    static func engineInitFailed(_ languages: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(
            code: .languageUnavailable,
            message: "Tesseract could not load the languages '\(languages)': check that their .traineddata files are installed and readable",
            file: file, line: line)
    }

    static func unreadableImage(_ reason: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .unreadableImage, message: "the page image cannot be read (\(reason)); upload an intact copy", file: file, line: line)
    }

    static func timeout(seconds: Double, file: String = #fileID, line: Int = #line) -> Self {
        let limit = seconds >= 10 ? "\(Int(seconds.rounded())) s" : "\((seconds * 1000).rounded() / 1000) s"
        return Self(
            code: .timeout,
            message: "OCR of the page took longer than the \(limit) per-page limit; the page is unusually dense or "
                + "damaged: check it, or raise page_timeout in the pipeline's ocr options",
            file: file, line: line)
    }

    static func recognitionFailed(_ reason: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .recognitionFailed, message: "Tesseract failed on the page (\(reason))", file: file, line: line)
    }

    static func shutDown(file: String = #fileID, line: Int = #line) -> Self {
        Self(code: .shutDown, message: "the OCR thread pool was shut down before the page ran", file: file, line: line)
    }
}
