/// Why text could not be extracted from a document.
///
/// Every extraction failure is permanent for the bytes at hand: retrying will not help, so a stage gives
/// up on the document and shows `message` to the person who uploaded it. Following the project's error
/// convention, `description` (the message) is safe to log: it never contains document content or file
/// names, only codes and byte offsets. `debugDescription` adds where the error was raised.
public struct ExtractionError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    /// The kind of failure. A struct rather than an enum so that later extractors (PDF, OCR, DOCX) can add
    /// codes without breaking exhaustive switches in other modules.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case emptyFile, invalidEncoding, binaryContent, unsupportedType, malformed
            case encrypted, noPages, limitExceeded
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// The document has no bytes, or only whitespace.
        public static let emptyFile = Code(.emptyFile)
        /// The bytes are not valid UTF-8 (or UTF-16 with a byte-order mark).
        public static let invalidEncoding = Code(.invalidEncoding)
        /// A text document contains binary data.
        public static let binaryContent = Code(.binaryContent)
        /// No extractor handles this kind of document.
        public static let unsupportedType = Code(.unsupportedType)
        /// The document's structure is broken (reserved for the container formats: PDF, DOCX).
        public static let malformed = Code(.malformed)
        /// The document is password-protected (an encrypted PDF).
        public static let encrypted = Code(.encrypted)
        /// A paged document (PDF, TIFF) without a single page.
        public static let noPages = Code(.noPages)
        /// The document is over a configured limit (pages, pixels, entry size): a guard against documents
        /// that would exhaust memory or time, such as decompression bombs.
        public static let limitExceeded = Code(.limitExceeded)

        public var description: String { base.rawValue }
    }

    public let code: Code
    /// What happened and what to do about it; safe to log and to show to users.
    public let message: String
    /// Offset of the offending byte in the document, when the failure has one (invalid encodings).
    public let byteOffset: Int?
    /// Where the error was raised, for debugging.
    public let file: String
    public let line: Int

    private init(code: Code, message: String, byteOffset: Int? = nil, file: String, line: Int) {
        self.code = code
        self.message = message
        self.byteOffset = byteOffset
        self.file = file
        self.line = line
    }

    public var description: String { message }

    public var debugDescription: String {
        var text = "ExtractionError(code: \(code), message: \"\(message)\""
        if let byteOffset { text += ", byteOffset: \(byteOffset)" }
        return text + ", raised at \(file):\(line))"
    }

    public static func emptyFile(file: String = #fileID, line: Int = #line) -> Self {
        Self(
            code: .emptyFile,
            message: "The document contains no text: it is empty or only whitespace. Upload a file with content.",
            file: file,
            line: line
        )
    }

    /// Text that is not valid in its encoding; `byteOffset` is where the first bad sequence starts.
    public static func invalidEncoding(
        byteOffset: Int,
        encoding: String = "UTF-8",
        file: String = #fileID,
        line: Int = #line
    ) -> Self {
        Self(
            code: .invalidEncoding,
            message: "The text is not valid \(encoding): the first invalid byte sequence starts at byte offset "
                + "\(byteOffset). Re-save the file as UTF-8 (or UTF-16 with a byte-order mark) and upload it again.",
            byteOffset: byteOffset,
            file: file,
            line: line
        )
    }

    /// A text encoding IntelliDocs recognises but does not read (UTF-32).
    public static func unsupportedEncoding(_ encoding: String, file: String = #fileID, line: Int = #line) -> Self {
        Self(
            code: .invalidEncoding,
            message: "The text is encoded as \(encoding), which is not supported. "
                + "Re-save the file as UTF-8 and upload it again.",
            byteOffset: 0,
            file: file,
            line: line
        )
    }

    public static func binaryContent(file: String = #fileID, line: Int = #line) -> Self {
        Self(
            code: .binaryContent,
            message: "The file has a text type but contains binary data (NUL or control bytes). "
                + "Check that the right file was uploaded; a PDF, image or Word document needs its own extension.",
            file: file,
            line: line
        )
    }

    /// `kind` has no extractor here; `unknown` gets the list of what is supported.
    public static func unsupportedType(_ kind: DocumentKind, file: String = #fileID, line: Int = #line) -> Self {
        let message =
            switch kind {
            case .unknown:
                "The file type was not recognised. Upload a PDF, PNG, JPEG, TIFF, GIF, WebP, DOCX, HTML, "
                    + "Markdown or plain-text (UTF-8) file."
            case .zip:
                "ZIP archives are not documents. Unpack the archive and upload its files, or import it as a batch."
            default:
                "Text extraction for '\(kind.rawValue)' documents is not available here; "
                    + "it needs the \(kind.rawValue) extractor."
            }
        return Self(code: .unsupportedType, message: message, file: file, line: line)
    }

    /// A container whose structure is broken. `reason` is logged and shown: it must describe the structure
    /// ("no word/document.xml entry"), never quote document content.
    public static func malformed(
        _ kind: DocumentKind,
        reason: String,
        file: String = #fileID,
        line: Int = #line
    ) -> Self {
        Self(
            code: .malformed,
            message: "The \(kind.rawValue) document is damaged (\(reason)). "
                + "Open it in its application, save a fresh copy and upload that.",
            file: file,
            line: line
        )
    }

    /// A password-protected document: IntelliDocs does not ask for passwords.
    public static func encrypted(_ kind: DocumentKind, file: String = #fileID, line: Int = #line) -> Self {
        Self(
            code: .encrypted,
            message: "The \(kind.rawValue) document is password-protected (encrypted). "
                + "Save a copy without the password (for example with 'qpdf --decrypt') and upload that.",
            file: file,
            line: line
        )
    }

    /// A paged container that opens but holds no pages.
    public static func noPages(_ kind: DocumentKind, file: String = #fileID, line: Int = #line) -> Self {
        Self(
            code: .noPages,
            message: "The \(kind.rawValue) document has no pages. Check that the right file was uploaded.",
            file: file,
            line: line
        )
    }

    /// More pages than `DocumentLimits.maxPages` allows.
    public static func tooManyPages(
        _ kind: DocumentKind,
        count: Int,
        limit: Int,
        file: String = #fileID,
        line: Int = #line
    ) -> Self {
        Self(
            code: .limitExceeded,
            message: "The \(kind.rawValue) document has \(count) pages, more than the limit of \(limit). "
                + "Split it into parts of at most \(limit) pages, or raise max_pages in the pipeline's ocr options.",
            file: file,
            line: line
        )
    }

    /// A page whose pixels (from the image header, or a PDF page at the lowest usable resolution) exceed
    /// `DocumentLimits.maxPixels`. Checked before anything is decoded, so a decompression bomb (a tiny file
    /// claiming a gigantic image) costs nothing.
    public static func imageTooLarge(
        _ kind: DocumentKind,
        page: Int,
        width: Int,
        height: Int,
        limit: Int,
        file: String = #fileID,
        line: Int = #line
    ) -> Self {
        let megapixels = (Double(width) * Double(height) / 1e6 * 10).rounded() / 10
        return Self(
            code: .limitExceeded,
            message: "Page \(page) of the \(kind.rawValue) document is \(width) × \(height) pixels "
                + "(\(megapixels) megapixels), over the limit of \(limit) pixels per page, which guards against "
                + "decompression bombs. Scale the image down, or raise max_pixels in the pipeline's ocr options.",
            file: file,
            line: line
        )
    }

    /// A part of a container that unpacks to more than `limit` bytes (a ZIP bomb, or an absurd document).
    public static func entryTooLarge(
        _ kind: DocumentKind,
        entry: String,
        limit: Int,
        file: String = #fileID,
        line: Int = #line
    ) -> Self {
        Self(
            code: .limitExceeded,
            message: "The \(kind.rawValue) document's \(entry) unpacks to more than \(limit) bytes, over the limit "
                + "(a ZIP bomb or a damaged file). Save a fresh copy and upload that.",
            file: file,
            line: line
        )
    }
}
