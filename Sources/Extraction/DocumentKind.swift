/// What a document's bytes are, as far as IntelliDocs cares: the kind decides which extractor reads it.
///
/// Raw values are stable identifiers (stored in the database and sent over the API), which is why
/// `plainText` is spelled `"text"`.
public enum DocumentKind: String, Sendable, Codable, CaseIterable {
    case pdf, png, jpeg, tiff, gif, webp, zip, docx, html, markdown
    case plainText = "text"
    case unknown

    /// The IANA media type used when the sniffer identifies this kind.
    public var mimeType: String {
        switch self {
        case .pdf: "application/pdf"
        case .png: "image/png"
        case .jpeg: "image/jpeg"
        case .tiff: "image/tiff"
        case .gif: "image/gif"
        case .webp: "image/webp"
        case .zip: "application/zip"
        case .docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        case .html: "text/html"
        case .markdown: "text/markdown"
        case .plainText: "text/plain"
        case .unknown: "application/octet-stream"
        }
    }

    /// Whether `TextExtractor` reads this kind (the others need the PDF, OCR or DOCX extractors).
    public var isText: Bool {
        switch self {
        case .html, .markdown, .plainText: true
        case .pdf, .png, .jpeg, .tiff, .gif, .webp, .zip, .docx, .unknown: false
        }
    }

    /// Whether this kind is a raster image, i.e. its text can only come from OCR.
    public var isImage: Bool {
        switch self {
        case .png, .jpeg, .tiff, .gif, .webp: true
        case .pdf, .zip, .docx, .html, .markdown, .plainText, .unknown: false
        }
    }
}

/// The sniffer's verdict on a document: its kind and the media type to store and serve it with.
public struct SniffedType: Sendable, Equatable {
    public let kind: DocumentKind
    public let mimeType: String

    public init(kind: DocumentKind, mimeType: String) {
        self.kind = kind
        self.mimeType = mimeType
    }

    /// A verdict with the kind's standard media type.
    public init(_ kind: DocumentKind) {
        self.init(kind: kind, mimeType: kind.mimeType)
    }
}
