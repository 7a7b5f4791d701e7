import Testing

@testable import Extraction

@Suite("HTMLText")
struct HTMLTextTests {
    private func text(_ html: String) -> String { HTMLText.text(from: html) }

    @Test func paragraphsAndInlineElements() {
        #expect(text("<p>Hello <b>bold</b> <a href='/x'>link</a>!</p><p>Second</p>") == "Hello bold link!\n\nSecond")
        #expect(text("no<span>space</span>between") == "nospacebetween")
        #expect(text("<P>Upper</P><DIV>Case</DIV>") == "Upper\n\nCase")
    }

    @Test func invisibleContentIsDropped() {
        let html = """
            <html><head><title>Page title</title>
            <style>body { content: "<p>no</p>"; }</style>
            <script type="text/javascript">if (a < b && c > d) { document.write('<p>no</p>'); }</script>
            <script>var s = "</scrip" + "t>";</SCRIPT >
            </head><body><!-- a comment with <p>tags</p> -->
            <noscript><p>Enable JavaScript</p></noscript><template><p>later</p></template>
            <p>Visible</p></body></html>
            """
        #expect(text(html) == "Visible")
    }

    @Test func entities() {
        #expect(text("&amp; &lt;tag&gt; &quot;q&quot; &#39;s&#39; &apos;") == "& <tag> \"q\" 's' '")
        #expect(text("&#x41;&#66;&#X43; caf&eacute; &copy; &euro;&hellip; &mdash;") == "ABC café © €… —")
        #expect(text("a&nbsp;&nbsp;b&#160;c\u{00A0}d") == "a b c d")
        #expect(text("&unknown; &amp &ampersand; & alone &#; &#xZ;") == "&unknown; & &ampersand; & alone &#; &#xZ;")
        #expect(text("AT&T") == "AT&T")
        // HTML5's numeric rules: NUL, surrogates and huge values are U+FFFD; 0x80–0x9F are Windows-1252.
        #expect(text("&#0;&#xD800;&#x110000;&#99999999999999999999999;") == "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}")
        #expect(text("&#150;&#147;x&#148;&#128;") == "–“x”€")
        #expect(text("&nbsp;&iexcl;&yuml; &Alpha;&Omega;&omega;&sigmaf;") == "¡ÿ ΑΩως")
        #expect(text("soft&shy;hyphen") == "softhyphen")
    }

    @Test func nestedBlocks() {
        let html = "<div><div><h2>Title</h2><p>Intro</p></div><ul><li>one</li><li>two <em>2</em></li></ul></div>"
        #expect(text(html) == "Title\n\nIntro\n\none\ntwo 2")
        #expect(text("<div>line one</div><div>line two</div>") == "line one\nline two")
        #expect(text("a<br>b<br/>c<BR />d") == "a\nb\nc\nd")
        #expect(text("<section><article><p>deep</p></article></section>") == "deep")
    }

    @Test func tables() {
        let html = "<table><tr><th>Name</th><th>Qty</th></tr><tr><td>Apple</td><td>3</td></tr></table>After"
        #expect(text(html) == "Name Qty\nApple 3\n\nAfter")
    }

    @Test func whitespaceCollapses() {
        #expect(text("<p>  lots   of\n\n  space \r\n</p>\n\n\n<p>\tnext</p>") == "lots of space\n\nnext")
        #expect(text("   leading and trailing   ") == "leading and trailing")
    }

    @Test func preformattedKeepsLines() {
        #expect(text("<pre>let a = 1\r\nlet   b = 2\n</pre><p>after</p>") == "let a = 1\nlet b = 2\n\nafter")
    }

    @Test func malformedMarkup() {
        #expect(text("<p>unclosed <b>bold <i>italic</p><div>x") == "unclosed bold italic\n\nx")
        #expect(text("a < b and c > d, x<3") == "a < b and c > d, x<3")
        #expect(text("text <a href=") == "text")
        #expect(text("before<!-- never closed <p>x</p>") == "before")
        #expect(text("<a title=\"x > y\">link</a>") == "link")
        #expect(text("<a title=\"oops>text</a> more") == "text more")
        #expect(text("</>a</ b>c<//p>d") == "acd")
        #expect(text("<!-->x<!--->y") == "xy")
        #expect(text("<?php echo 1 ?>z<![CDATA[ hidden ]]>") == "z")
        #expect(text("<script>never closed <p>x</p>") == "")
        #expect(text("<p>a</p></p></div></li>b") == "a\n\nb")
        #expect(text("<p\nclass=x\n>wrapped tag</p>") == "wrapped tag")
        #expect(text("a</script>b</title>c") == "abc")
        #expect(text("soft\u{00AD}hyphen") == "softhyphen")
    }

    @Test func pathologicalInputsStayLinear() {
        // Each of these is quadratic for a naive scanner; 300 KB of it would take minutes.
        let inputs = [
            String(repeating: "<a b='", count: 50_000),
            String(repeating: "<a b=\"x\" c=\"", count: 25_000),
            String(repeating: "<!--<!", count: 50_000),
            String(repeating: "<script>", count: 40_000),
            String(repeating: "&#x", count: 100_000),
            String(repeating: "&amp", count: 75_000),
            String(repeating: "<", count: 300_000),
            String(repeating: "</", count: 150_000),
        ]
        let clock = ContinuousClock()
        for input in inputs {
            let elapsed = clock.measure { _ = HTMLText.text(from: input) }
            #expect(elapsed < .seconds(5), "input starting \(input.prefix(12))")
        }
    }

    @Test func title() {
        #expect(
            HTMLText.title(from: "<html><head><TITLE> My &amp;\n Title </TITLE></head><body>Body</body>")
                == "My & Title")
        #expect(HTMLText.title(from: "<p>no title</p>") == nil)
        #expect(HTMLText.title(from: "<title>   </title>") == nil)
        #expect(
            HTMLText.title(from: "<script>'<title>fake</title>'</script><!--<title>no</title>--><title>real</title>")
                == "real")
        #expect(HTMLText.title(from: "<title>unclosed") == "unclosed")
    }
}
