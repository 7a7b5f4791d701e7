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
        /// Byte offsets into the text's UTF-8.
        let start: Int
        let end: Int
        /// Index into the lexemes, or -1 when the word matches none.
        let lexeme: Int
    }

    public static func highlight(_ text: String, lexemes: [String], maxWords: Int = 25, fragments: Int = 2) -> String {
        highlight(text, stems: stems(lexemes), maxWords: maxWords, fragments: fragments)
    }

    /// The lexemes as the matching compares them (lower-cased UTF-8, no duplicates): made once per search
    /// for all the chunks it shows.
    public static func stems(_ lexemes: [String]) -> [[UInt8]] {
        Array(Set(lexemes.map { Array($0.lowercased().utf8) })).filter { !$0.isEmpty }
    }

    /// `highlight(_:lexemes:maxWords:fragments:)` with the lexemes prepared by `stems(_:)`.
    public static func highlight(_ text: String, stems: [[UInt8]], maxWords: Int = 25, fragments: Int = 2) -> String {
        var text = text
        return text.withUTF8 { bytes in
            let words = Self.words(in: bytes, stems: stems)
            if words.isEmpty { return escape(String(String(decoding: bytes, as: UTF8.self).prefix(240))) }
            var windows: [Range<Int>] = []
            var taken = [Bool](repeating: false, count: words.count)
            for _ in 0..<max(1, fragments) {
                guard let best = bestWindow(words, lexemes: stems.count, size: maxWords, excluding: taken) else { break }
                if !windows.isEmpty && !words[best].contains(where: { $0.lexeme >= 0 }) { break }
                windows.append(best)
                for index in best { taken[index] = true }
            }
            windows.sort { $0.lowerBound < $1.lowerBound }
            return windows.map { render(bytes, words: words, window: $0) }.joined(separator: " … ")
        }
    }

    /// Words — runs of letters and digits, with an apostrophe between letters kept inside ("don't") — and
    /// their matches. Works on UTF-8 bytes: ASCII is classified directly, other scalars by their Unicode
    /// properties (this runs for every shown chunk of every search, so a word is matched in place,
    /// without copying it).
    static func words(in bytes: UnsafeBufferPointer<UInt8>, stems: [[UInt8]]) -> [Word] {
        var words: [Word] = []
        words.reserveCapacity(bytes.count / 5)
        var start = -1
        var index = 0
        while index < bytes.count {
            let lead = bytes[index]
            let scalar: UInt32, length: Int, isWordCharacter: Bool
            if lead < 0x80 {
                (scalar, length) = (UInt32(lead), 1)
                isWordCharacter = lead &- 48 < 10 || (lead | 0x20) &- 97 < 26
            } else {
                (scalar, length) = decode(bytes, at: index)
                isWordCharacter = Unicode.Scalar(scalar).map { $0.properties.isAlphabetic || $0.properties.numericType != nil } ?? false
            }
            if isWordCharacter {
                if start < 0 { start = index }
            } else if start >= 0 && (scalar == 0x27 || scalar == 0x2019) && index + length < bytes.count && isLetter(bytes, at: index + length) {
                // An apostrophe inside a word.
            } else if start >= 0 {
                words.append(Word(start: start, end: index, lexeme: lexeme(bytes, start..<index, stems: stems)))
                start = -1
            }
            index += length
        }
        if start >= 0 { words.append(Word(start: start, end: bytes.count, lexeme: lexeme(bytes, start..<bytes.count, stems: stems))) }
        return words
    }

    static func isLetter(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> Bool {
        let (scalar, _) = decode(bytes, at: index)
        if scalar < 128 { return (scalar >= 65 && scalar <= 90) || (scalar >= 97 && scalar <= 122) }
        return Unicode.Scalar(scalar)?.properties.isAlphabetic ?? false
    }

    /// The scalar at `index` and its length in bytes (a malformed byte counts as one unknown scalar).
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> (UInt32, Int) {
        let lead = bytes[index]
        if lead < 0x80 { return (UInt32(lead), 1) }
        let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        guard length > 1, index + length <= bytes.count else { return (0xFFFD, 1) }
        var value = UInt32(lead) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
        for offset in 1..<length { value = value << 6 | (UInt32(bytes[index + offset]) & 0x3F) }
        return (value, length)
    }

    /// The index of the first stem the word `bytes[range]` matches, or -1.
    @inline(__always)
    static func lexeme(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, stems: [[UInt8]]) -> Int {
        for (position, stem) in stems.enumerated() where matches(bytes, range, stem: stem) { return position }
        return -1
    }

    /// The word (compared lower-cased, ASCII letters only) is the stem, or the stem plus at most four
    /// bytes, or the stem with its final `i` a `y` there.
    static func matches(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, stem: [UInt8]) -> Bool {
        @inline(__always) func lower(_ byte: UInt8) -> UInt8 { byte &- 65 < 26 ? byte | 0x20 : byte }
        let length = range.count, size = stem.count
        guard length >= size, lower(bytes[range.lowerBound]) == stem[0] else { return false }
        if length == size {
            var equal = true
            for position in 1..<size where lower(bytes[range.lowerBound + position]) != stem[position] {
                equal = false
                break
            }
            if equal { return true }
        }
        guard size >= 3, length - size <= 4 else { return false }
        let base = stem[size - 1] == UInt8(ascii: "i") ? size - 1 : size
        for position in 1..<base where lower(bytes[range.lowerBound + position]) != stem[position] { return false }
        if base == size { return true }
        let next = lower(bytes[range.lowerBound + base])
        return next == UInt8(ascii: "i") || next == UInt8(ascii: "y")
    }

    /// The window of `size` words, none taken, with the most distinct lexemes, then the most matches, then
    /// the earliest: one pass with running counts.
    static func bestWindow(_ words: [Word], lexemes: Int, size: Int, excluding taken: [Bool]) -> Range<Int>? {
        let size = min(size, words.count)
        guard size > 0 else { return nil }
        var counts = [Int](repeating: 0, count: max(lexemes, 1))
        var distinct = 0, hits = 0, blocked = 0
        func add(_ index: Int, _ delta: Int) {
            if taken[index] { blocked += delta }
            let lexeme = words[index].lexeme
            guard lexeme >= 0 else { return }
            if delta > 0 && counts[lexeme] == 0 { distinct += 1 }
            counts[lexeme] += delta
            if delta < 0 && counts[lexeme] == 0 { distinct -= 1 }
            hits += delta
        }
        for index in 0..<size { add(index, 1) }
        var best: (start: Int, distinct: Int, hits: Int)? = blocked == 0 ? (0, distinct, hits) : nil
        var start = 1
        while start + size <= words.count {
            add(start - 1, -1)
            add(start + size - 1, 1)
            if blocked == 0 && (best == nil || distinct > best!.distinct || (distinct == best!.distinct && hits > best!.hits)) {
                best = (start, distinct, hits)
            }
            start += 1
        }
        return best.map { $0.start..<($0.start + size) }
    }

    /// The window's text: from the start of the text when it holds the first word, through the punctuation
    /// that follows its last word.
    static func render(_ bytes: UnsafeBufferPointer<UInt8>, words all: [Word], window: Range<Int>) -> String {
        guard !window.isEmpty else { return "" }
        var out: [UInt8] = []
        out.reserveCapacity(512)
        func escaped(_ range: Range<Int>) {
            for byte in bytes[range] {
                switch byte {
                case UInt8(ascii: "&"): out.append(contentsOf: "&amp;".utf8)
                case UInt8(ascii: "<"): out.append(contentsOf: "&lt;".utf8)
                case UInt8(ascii: ">"): out.append(contentsOf: "&gt;".utf8)
                case UInt8(ascii: "\""): out.append(contentsOf: "&quot;".utf8)
                default: out.append(byte)
                }
            }
        }
        var cursor = window.lowerBound == 0 ? 0 : all[window.lowerBound].start
        for word in all[window] {
            escaped(cursor..<word.start)
            if word.lexeme >= 0 { out.append(contentsOf: "<mark>".utf8) }
            escaped(word.start..<word.end)
            if word.lexeme >= 0 { out.append(contentsOf: "</mark>".utf8) }
            cursor = word.end
        }
        var end = window.upperBound < all.count ? all[window.upperBound].start : bytes.count
        while end > cursor, [9, 10, 13, 32].contains(bytes[end - 1]) { end -= 1 }
        escaped(cursor..<end)
        return String(decoding: out, as: UTF8.self)
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
