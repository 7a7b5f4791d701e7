/// Highlighted snippets of chunks, built in this process from the chunk's text and the query's lexemes.
///
/// PostgreSQL's `ts_headline` re-parsed and re-stemmed every shown chunk: about 3 ms of database CPU per
/// search, on the same cores that answer the queries. Here a word counts as a match when it is one of the
/// query's lexemes (PostgreSQL's `english` stems) or an inflection of it: the stem is a prefix of the word
/// with at most four more letters (`run` → running, `connect` → connection), or ends in `i` where the word
/// has `y` (`studi` → study). That can light up a near-miss (`run` in "rune"); it never decides ranking,
/// which BM25 and the vectors do.
///
/// The snippet is the window of `maxWords` words with the most distinct matched lexemes (then the most
/// matches, then the earliest), plus a second non-overlapping window when it matches too, joined with
/// " … " in text order. Text is HTML-escaped and matches are wrapped in `<mark>…</mark>`, so a client can
/// render the snippet as HTML without trusting the document.
public enum Snippets {
    struct Word {
        let range: Range<String.Index>
        /// Index into the lexemes, or nil when the word matches none.
        let lexeme: Int?
    }

    public static func highlight(_ text: String, lexemes: [String], maxWords: Int = 25, fragments: Int = 2) -> String {
        let stems = Array(Set(lexemes.map { $0.lowercased() })).filter { !$0.isEmpty }
        let words = Self.words(in: text, stems: stems)
        if words.isEmpty { return escape(String(text.prefix(240))) }
        var windows: [Range<Int>] = []
        var taken = [Bool](repeating: false, count: words.count)
        for _ in 0..<max(1, fragments) {
            guard let best = bestWindow(words, size: maxWords, excluding: taken) else { break }
            if !windows.isEmpty && !words[best].contains(where: { $0.lexeme != nil }) { break }
            windows.append(best)
            for index in best { taken[index] = true }
        }
        windows.sort { $0.lowerBound < $1.lowerBound }
        return windows.map { render(text, words: words, window: $0) }.joined(separator: " … ")
    }

    /// Words (letters and digits, with inner apostrophes and hyphens kept in the word) and their matches.
    static func words(in text: String, stems: [String]) -> [Word] {
        var words: [Word] = []
        var start: String.Index?
        var index = text.startIndex
        func close(at end: String.Index) {
            guard let begin = start else { return }
            let word = text[begin..<end].lowercased()
            words.append(Word(range: begin..<end, lexeme: stems.firstIndex { matches(word, stem: $0) }))
            start = nil
        }
        while index < text.endIndex {
            let character = text[index]
            if character.isLetter || character.isNumber {
                if start == nil { start = index }
            } else if start != nil && (character == "'" || character == "’"), text.index(after: index) < text.endIndex,
                      text[text.index(after: index)].isLetter {
                // "don't": one word
            } else {
                close(at: index)
            }
            index = text.index(after: index)
        }
        close(at: text.endIndex)
        return words
    }

    static func matches(_ word: String, stem: String) -> Bool {
        if word == stem { return true }
        guard stem.count >= 3 else { return false }
        if word.hasPrefix(stem) && word.count - stem.count <= 4 { return true }
        if stem.hasSuffix("i") {
            let base = stem.dropLast()
            return word.hasPrefix(base) && word.dropFirst(base.count).first == "y" && word.count - stem.count <= 4
        }
        return false
    }

    static func bestWindow(_ words: [Word], size: Int, excluding taken: [Bool]) -> Range<Int>? {
        let size = min(size, words.count)
        var best: (range: Range<Int>, distinct: Int, hits: Int)?
        var start = 0
        while start + size <= words.count {
            let range = start..<(start + size)
            if range.contains(where: { taken[$0] }) {
                start += 1
                continue
            }
            var seen = Set<Int>()
            var hits = 0
            for index in range {
                if let lexeme = words[index].lexeme {
                    seen.insert(lexeme)
                    hits += 1
                }
            }
            if best == nil || seen.count > best!.distinct || (seen.count == best!.distinct && hits > best!.hits) {
                best = (range, seen.count, hits)
            }
            start += 1
        }
        return best?.range
    }

    /// The window's text: from the start of the text when it holds the first word, through the punctuation
    /// that follows its last word.
    static func render(_ text: String, words all: [Word], window: Range<Int>) -> String {
        guard !window.isEmpty else { return "" }
        var out = ""
        var cursor = window.lowerBound == 0 ? text.startIndex : all[window.lowerBound].range.lowerBound
        for word in all[window] {
            out += escape(String(text[cursor..<word.range.lowerBound]))
            let shown = escape(String(text[word.range]))
            out += word.lexeme == nil ? shown : "<mark>\(shown)</mark>"
            cursor = word.range.upperBound
        }
        let end = window.upperBound < all.count ? all[window.upperBound].range.lowerBound : text.endIndex
        var tail = text[cursor..<end]
        while let last = tail.last, last.isWhitespace { tail = tail.dropLast() }
        out += escape(String(tail))
        return out
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }
}
