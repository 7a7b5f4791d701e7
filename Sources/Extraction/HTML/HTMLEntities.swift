/// Decodes HTML character references (`&amp;`, `&#233;`, `&#x1F600;`).
///
/// Covers numeric references fully (with the HTML5 rules for invalid and Windows-1252 code points) and the
/// named references text actually uses: HTML 4's Latin-1, typographic and Greek sets plus `&apos;`. The
/// full HTML5 table has 2,231 names, mostly mathematical; an unknown name is left as written, which is
/// what a reader would see anyway.
enum HTMLEntities {
    /// Decodes the reference that starts at `bytes[index]` (an `&`) and ends before `end`.
    ///
    /// - Returns: the decoded scalar and the number of bytes consumed, or nil when the `&` does not start a
    ///   reference (it is then literal text).
    static func decode(
        _ bytes: UnsafeBufferPointer<UInt8>,
        at index: Int,
        end: Int
    ) -> (scalar: Unicode.Scalar, length: Int)? {
        var cursor = index + 1
        guard cursor < end else { return nil }
        if bytes[cursor] == UInt8(ascii: "#") {
            return decodeNumeric(bytes, at: index, end: end)
        }
        // Named: the longest name is 8 letters; stop early so a long run of letters costs nothing.
        let nameStart = cursor
        while cursor < end, cursor - nameStart < maxNameLength, bytes[cursor].isASCIIAlphanumeric {
            cursor += 1
        }
        guard cursor > nameStart else { return nil }
        let name = String(decoding: UnsafeBufferPointer(rebasing: bytes[nameStart..<cursor]), as: UTF8.self)
        let hasSemicolon = cursor < end && bytes[cursor] == UInt8(ascii: ";")
        if hasSemicolon, let scalar = named[name] {
            return (scalar, cursor + 1 - index)
        }
        // Browsers also accept a few legacy names without the semicolon (`&amp`, `&nbsp`).
        if !hasSemicolon, legacyWithoutSemicolon.contains(name), let scalar = named[name] {
            return (scalar, cursor - index)
        }
        return nil
    }

    private static let maxNameLength = 8

    private static func decodeNumeric(
        _ bytes: UnsafeBufferPointer<UInt8>,
        at index: Int,
        end: Int
    ) -> (scalar: Unicode.Scalar, length: Int)? {
        var cursor = index + 2
        let isHex = cursor < end && (bytes[cursor] == UInt8(ascii: "x") || bytes[cursor] == UInt8(ascii: "X"))
        if isHex { cursor += 1 }
        let digitsStart = cursor
        var value: UInt32 = 0
        while cursor < end, let digit = digitValue(bytes[cursor], hex: isHex) {
            // Saturate instead of overflowing: anything past U+10FFFF becomes U+FFFD anyway.
            value = min(value * (isHex ? 16 : 10) + digit, 0x11_0000)
            cursor += 1
        }
        guard cursor > digitsStart else { return nil }
        if cursor < end && bytes[cursor] == UInt8(ascii: ";") { cursor += 1 }
        return (scalar(forCodePoint: value), cursor - index)
    }

    /// HTML5's mapping of numeric references: NUL, surrogates and out-of-range values become U+FFFD;
    /// 0x80–0x9F are read as Windows-1252, which is what pages that use them mean.
    private static func scalar(forCodePoint value: UInt32) -> Unicode.Scalar {
        if (0x80...0x9F).contains(value) {
            let mapped = windows1252[Int(value - 0x80)]
            return Unicode.Scalar(mapped == 0 ? value : mapped) ?? replacement
        }
        guard value != 0, let scalar = Unicode.Scalar(value) else { return replacement }
        return scalar
    }

    private static let replacement: Unicode.Scalar = "\u{FFFD}"

    private static func digitValue(_ byte: UInt8, hex: Bool) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f") where hex: UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F") where hex: UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// Windows-1252 for 0x80–0x9F; 0 where the code page has a hole (the value is kept).
    private static let windows1252: [UInt32] = [
        0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,
        0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A,
        0x0153, 0, 0x017E, 0x0178,
    ]

    private static let legacyWithoutSemicolon: Set<String> = ["amp", "lt", "gt", "quot", "nbsp", "copy", "reg"]

    /// Named references. Latin-1 (U+00A0–U+00FF) is listed in code-point order.
    private static let named: [String: Unicode.Scalar] = {
        var table: [String: Unicode.Scalar] = [
            "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'",
            "ensp": "\u{2002}", "emsp": "\u{2003}", "thinsp": "\u{2009}", "zwnj": "\u{200C}", "zwj": "\u{200D}",
            "lrm": "\u{200E}", "rlm": "\u{200F}", "ndash": "\u{2013}", "mdash": "\u{2014}", "lsquo": "\u{2018}",
            "rsquo": "\u{2019}", "sbquo": "\u{201A}", "ldquo": "\u{201C}", "rdquo": "\u{201D}",
            "bdquo": "\u{201E}", "dagger": "\u{2020}", "Dagger": "\u{2021}", "bull": "\u{2022}",
            "hellip": "\u{2026}", "permil": "\u{2030}", "prime": "\u{2032}", "Prime": "\u{2033}",
            "lsaquo": "\u{2039}", "rsaquo": "\u{203A}", "oline": "\u{203E}", "frasl": "\u{2044}",
            "euro": "\u{20AC}", "trade": "\u{2122}", "larr": "\u{2190}", "uarr": "\u{2191}", "rarr": "\u{2192}",
            "darr": "\u{2193}", "harr": "\u{2194}", "lArr": "\u{21D0}", "rArr": "\u{21D2}", "hArr": "\u{21D4}",
            "minus": "\u{2212}", "radic": "\u{221A}", "infin": "\u{221E}", "asymp": "\u{2248}", "ne": "\u{2260}",
            "le": "\u{2264}", "ge": "\u{2265}", "sum": "\u{2211}", "prod": "\u{220F}", "part": "\u{2202}",
            "forall": "\u{2200}", "exist": "\u{2203}", "isin": "\u{2208}", "sdot": "\u{22C5}",
            "OElig": "\u{0152}", "oelig": "\u{0153}", "Scaron": "\u{0160}", "scaron": "\u{0161}",
            "Yuml": "\u{0178}", "fnof": "\u{0192}", "circ": "\u{02C6}", "tilde": "\u{02DC}",
            "loz": "\u{25CA}", "spades": "\u{2660}", "clubs": "\u{2663}", "hearts": "\u{2665}",
            "diams": "\u{2666}",
        ]
        let latin1 = """
            nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 \
            sup3 acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave Aacute Acirc \
            Atilde Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve \
            Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig agrave aacute \
            acirc atilde auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml eth ntilde \
            ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml
            """
        for (offset, name) in latin1.split(separator: " ").enumerated() {
            table[String(name)] = Unicode.Scalar(UInt8(0xA0 + offset))
        }
        let greek =
            "Alpha Beta Gamma Delta Epsilon Zeta Eta Theta Iota Kappa Lambda Mu Nu Xi Omicron Pi Rho"
            + " - Sigma Tau Upsilon Phi Chi Psi Omega"
        for (offset, name) in greek.split(separator: " ").enumerated() where name != "-" {
            table[String(name)] = Unicode.Scalar(UInt32(0x391 + offset))
            table[name.lowercased()] = Unicode.Scalar(UInt32(0x3B1 + offset))
        }
        table["sigmaf"] = "\u{03C2}"
        return table
    }()
}

extension UInt8 {
    var isASCIIAlphanumeric: Bool { isASCIILetter || (0x30...0x39).contains(self) }
}
