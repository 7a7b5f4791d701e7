import Testing

@testable import Search

/// The vector scan's top-k (`TopK.largest`) against the generic bounded heap (`TopK.select`) with the
/// order it replaces: best score first, equal scores in row order; columns gathered from a batch's score
/// matrix, row filters, ties, and fewer rows than asked for.
@Suite struct TopKTests {
    @Test(arguments: [1, 3, 8])
    func largestMatchesTheGenericSelection(stride: Int) {
        var generator = SeededGenerator(seed: UInt64(stride))
        for trial in 0..<60 {
            let rows = [0, 1, 5, 150, 1_000][trial % 5]
            // Few distinct values, so many ties; negative and positive.
            let scores = (0..<(rows * stride)).map { _ in Float(Int(generator.next() % 41) - 20) / 20 }
            let column = trial % stride
            let count = [1, 10, 200][trial % 3]
            let include: ((Int) -> Bool)? = trial % 2 == 0 ? nil : { $0 % 3 != 1 }
            let expected = TopK.select((0..<rows).lazy.filter { include?($0) ?? true }, count: count) { a, b in
                let x = scores[a * stride + column], y = scores[b * stride + column]
                return x != y ? x > y : a < b
            }
            // One column of a batch's row-major score matrix, gathered as the scan gathers it.
            let gathered = (0..<rows).map { scores[$0 * stride + column] }
            let found = gathered.withUnsafeBufferPointer {
                TopK.largest(scores: $0.baseAddress!, rows: rows, count: count, include: include)
            }
            #expect(found == expected, "trial \(trial): \(rows) rows, count \(count)")
        }
    }
}
