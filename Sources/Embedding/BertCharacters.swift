/// Character classes of BERT's basic tokenisation, as the model's own tokenizer (Hugging Face `tokenizers`,
/// `BertNormalizer` + `BertPreTokenizer`) applies them.
///
/// That tokenizer takes control, format, private-use, punctuation and non-spacing-mark categories from
/// Unicode 8.0 tables, while Swift knows a newer Unicode. A character assigned later (a newer emoji, a
/// combining mark from Unicode 10, a format character from Unicode 14) is therefore an ordinary word
/// character there, and must be one here too, or ids would differ: hence the `age` checks below.
/// Whitespace and lower-casing follow current Unicode in both.
extension Unicode.Scalar {
    /// The newest Unicode version whose categories the reference tokenizer knows.
    private static let bertCategoryVersion = (major: 8, minor: 0)

    /// Whether the reference tokenizer's Unicode 8.0 tables know this scalar at all.
    private var isKnownToBertTables: Bool {
        guard let age = properties.age else { return false }
        return (age.major, age.minor) <= Self.bertCategoryVersion
    }

    /// Dropped by `clean_text`: control (except tab, line feed and carriage return, which are whitespace),
    /// format, private-use and surrogate characters, plus NUL and U+FFFD.
    var isBertRemovedCharacter: Bool {
        switch value {
        case 0x09, 0x0A, 0x0D: return false
        case 0x00, 0xFFFD: return true
        default: break
        }
        switch properties.generalCategory {
        case .control, .format, .privateUse, .surrogate: return isKnownToBertTables
        default: return false
        }
    }

    /// Whitespace separates words (and becomes a plain space when cleaning).
    var isBertWhitespace: Bool {
        properties.isWhitespace
    }

    /// Punctuation becomes a word of its own: all ASCII punctuation (including symbols such as `$`, `+`,
    /// `^`, `|`, which Unicode calls symbols) and every Unicode punctuation category.
    var isBertPunctuation: Bool {
        switch value {
        case 0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E: return true
        case 0..<0x80: return false
        default: break
        }
        switch properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return isKnownToBertTables
        default:
            return false
        }
    }

    /// Accent stripping removes non-spacing marks after canonical decomposition (`é` → `e` + U+0301 → `e`).
    var isBertStrippedMark: Bool {
        properties.generalCategory == .nonspacingMark && isKnownToBertTables
    }

    /// CJK ideographs become words of their own. The ranges are the reference tokenizer's; note that it
    /// starts CJK Extension E at U+2B920 (not U+2B820), so U+2B820–U+2B91F stay ordinary characters.
    var isBertChineseCharacter: Bool {
        switch value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
            0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
