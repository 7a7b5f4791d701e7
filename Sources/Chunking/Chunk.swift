/// A piece of a document small enough to embed and to show as a search hit.
public struct Chunk: Sendable, Equatable {
    /// 0-based position of the chunk within its document.
    public let index: Int
    /// The chunk's text: exactly the characters of its page between `startOffset` and `endOffset`. It
    /// starts and ends at a word, so it never has leading or trailing whitespace.
    public let text: String
    /// The page the chunk starts on.
    public let page: Int
    /// The page the chunk ends on. Chunks never span pages today (each page is chunked on its own), so
    /// this equals `page`; it exists so that stored chunks need no migration if that changes.
    public let endPage: Int
    /// Offset of the chunk's first character in its page's text, counted in Unicode scalars (the unit
    /// PostgreSQL's `substr` and `length` use for UTF-8 text, and what `String.unicodeScalars` counts).
    public let startOffset: Int
    /// Offset just past the chunk's last character in its page's text, in Unicode scalars.
    public let endOffset: Int

    public init(index: Int, text: String, page: Int, endPage: Int, startOffset: Int, endOffset: Int) {
        self.index = index
        self.text = text
        self.page = page
        self.endPage = endPage
        self.startOffset = startOffset
        self.endOffset = endOffset
    }
}
