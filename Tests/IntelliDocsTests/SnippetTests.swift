import Search
import Testing

/// Snippets highlighted in process from PostgreSQL's lexemes: inflections match, the best window is
/// chosen, text is escaped.
struct SnippetTests {
    @Test func inflectionsOfTheLexemesAreMarked() {
        // Lexemes as `to_tsvector('english', 'running studies connections')` gives them.
        let snippet = Snippets.highlight("She was running two studies on network connections and a rune.", lexemes: ["run", "studi", "connect"])
        #expect(snippet == "She was <mark>running</mark> two <mark>studies</mark> on network <mark>connections</mark> and a <mark>rune</mark>.")
        #expect(Snippets.highlight("A happy study.", lexemes: ["happi"]) == "A <mark>happy</mark> study.")
        #expect(!Snippets.highlight("The generalization holds.", lexemes: ["general"]).contains("<mark>"))
    }

    @Test func theWindowWithTheMostDistinctTermsIsShown() {
        let filler = (1...60).map { "word\($0)" }.joined(separator: " ")
        let text = "alpha early mention. \(filler) beta gamma alpha together here. \(filler) tail"
        let snippet = Snippets.highlight(text, lexemes: ["alpha", "beta", "gamma"], maxWords: 10, fragments: 1)
        #expect(snippet.contains("<mark>beta</mark> <mark>gamma</mark> <mark>alpha</mark>"))
        #expect(!snippet.contains("early"))
        // Two fragments: the second window that matches joins in text order.
        let two = Snippets.highlight(text, lexemes: ["alpha", "beta", "gamma"], maxWords: 10, fragments: 2)
        #expect(two.components(separatedBy: " … ").count == 2 && two.hasPrefix("<mark>alpha</mark> early"))
        // No match: the beginning.
        #expect(Snippets.highlight(text, lexemes: ["zeta"], maxWords: 3) == "alpha early mention.")
    }

    @Test func textIsEscaped() {
        #expect(Snippets.highlight("<script>alert(1)</script> & invoice", lexemes: ["invoic"]) == "&lt;script&gt;alert(1)&lt;/script&gt; &amp; <mark>invoice</mark>")
    }
}
