/// The text of one page of a document, as every extractor produces it.
///
/// Page numbers are 1-based and physical: they match what a viewer shows, so a blank page keeps its
/// number (and has empty text) instead of shifting the pages after it.
public struct ExtractedPage: Sendable, Equatable {
    public let number: Int
    public let text: String

    public init(number: Int, text: String) {
        self.number = number
        self.text = text
    }
}
