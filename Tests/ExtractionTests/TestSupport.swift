/// A tiny deterministic generator, so tests and the throughput print use the same bytes on every run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}

/// English-like prose with sentences and paragraphs, for chunker properties and throughput.
enum Prose {
    static let vocabulary = """
        the of and to in is was for that with as on by at from this which be are an or it not have has were \
        document archive invoice contract retrieval embedding search index paragraph sentence boundary page \
        customer supplier payment delivery quarterly report revenue analysis international organisation \
        storage pipeline queue worker extraction tokenizer vector similarity ranking relevance evaluation \
        agreement termination obligations confidentiality jurisdiction notwithstanding hereinafter
        """.split(separator: " ").map(String.init)

    /// About `characters` characters of prose in paragraphs of 2–6 sentences of 5–25 words.
    static func text(characters: Int, seed: UInt64) -> String {
        var generator = SplitMix64(seed: seed)
        var text = ""
        text.reserveCapacity(characters + 200)
        while text.utf8.count < characters {
            if !text.isEmpty { text += "\n\n" }
            for sentence in 0..<Int.random(in: 2...6, using: &generator) {
                if sentence > 0 { text += " " }
                let words = (0..<Int.random(in: 5...25, using: &generator)).map { _ in
                    vocabulary.randomElement(using: &generator)!
                }
                var sentenceText = words.joined(separator: " ")
                sentenceText = sentenceText.prefix(1).uppercased() + sentenceText.dropFirst()
                if Int.random(in: 0..<4, using: &generator) == 0 {
                    sentenceText.insert(",", at: sentenceText.firstIndex(of: " ") ?? sentenceText.endIndex)
                }
                text += sentenceText + [".", ".", ".", "?", "!"].randomElement(using: &generator)!
            }
        }
        return text
    }
}
