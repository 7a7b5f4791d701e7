/// The chunker measures every word; building a `Substring` for each costs more than measuring it. The
/// built-in measures therefore also size raw UTF-8 directly, with results identical to `size(of:)`.
protocol UTF8ChunkSizeMeasure: ChunkSizeMeasure {
    /// The size of valid UTF-8 text, or nil to have the caller use `size(of:)`.
    func size(utf8: UnsafeBufferPointer<UInt8>) -> Int?
}

/// Any other measure, e.g. the embedding model's tokenizer: always sized through `Substring`s.
struct SubstringMeasure: UTF8ChunkSizeMeasure {
    let base: any ChunkSizeMeasure

    func size(of text: Substring) -> Int { base.size(of: text) }

    func size(utf8: UnsafeBufferPointer<UInt8>) -> Int? { nil }
}

extension CharacterMeasure: UTF8ChunkSizeMeasure {
    /// ASCII without CR is one character per byte (CR LF is the only ASCII grapheme cluster); anything else
    /// needs real grapheme breaking.
    func size(utf8: UnsafeBufferPointer<UInt8>) -> Int? {
        for byte in utf8 where byte >= 0x80 || byte == 0x0D { return nil }
        return utf8.count
    }
}

extension ApproximateTokenMeasure: UTF8ChunkSizeMeasure {
    func size(utf8: UnsafeBufferPointer<UInt8>) -> Int? {
        var estimate = TokenEstimate()
        var index = 0
        while index < utf8.count {
            let lead = utf8[index]
            if lead < 0x80 {
                estimate.addASCII(lead)
                index += 1
                continue
            }
            // Valid UTF-8 (it comes from a String): decode one scalar.
            var value = UInt32(lead)
            let length = lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            value &= length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07
            for offset in 1..<length {
                value = value << 6 | UInt32(utf8[index + offset] & 0x3F)
            }
            estimate.add(Unicode.Scalar(value)!)
            index += length
        }
        return estimate.finish()
    }
}
