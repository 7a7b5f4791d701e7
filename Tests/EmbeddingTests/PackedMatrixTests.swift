import Testing

@testable import Embedding

/// Products against packed weights (`PackedMatrix`, the C kernel behind a search pass's products) against
/// the same sums taken in Double: every row count the kernel handles differently (whole blocks of 12 and
/// each remainder), column ranges starting at a later panel, overwriting and accumulating.
@Suite struct PackedMatrixTests {
    /// Without AVX-512 there is no packed copy at all (the encoder keeps to OpenBLAS), so nothing to check.
    @Test(.enabled(if: PackedMatrix.isAvailable, "the packed kernel needs AVX-512"), arguments: [1, 5, 11, 12, 13, 40, 157])
    func productsMatchDoubleSums(rows: Int) throws {
        let columns = 128, depth = 96
        // Values from a fixed scramble of the index, in about [−1, 1).
        func value(_ index: Int, _ salt: Int) -> Float { Float((index &* 2_654_435_761 &+ salt) % 2001) / 1000 - 1 }
        let weights = (0..<(columns * depth)).map { value($0, 17) }
        let inputs = (0..<(rows * depth)).map { value($0, 91) }
        let packed = try #require(weights.withUnsafeBufferPointer { PackedMatrix(weights: $0.baseAddress!, columns: columns, depth: depth) })
        let range = 32..<96  // panels 1 and 2 of 4
        for accumulate in [false, true] {
            let ldc = range.count + 8
            let start = (0..<(rows * ldc)).map { value($0, 5) }
            var output = start
            let done = inputs.withUnsafeBufferPointer { a in
                output.withUnsafeMutableBufferPointer { c in
                    packed.multiply(rows: rows, columns: range, a: a.baseAddress!, lda: depth, accumulate: accumulate, c: c.baseAddress!, ldc: ldc)
                }
            }
            #expect(done)
            var worst = 0.0
            for row in 0..<rows {
                for (offset, column) in range.enumerated() {
                    var sum = accumulate ? Double(start[row * ldc + offset]) : 0
                    var magnitude = abs(sum)
                    for q in 0..<depth {
                        let term = Double(inputs[row * depth + q]) * Double(weights[column * depth + q])
                        sum += term
                        magnitude += abs(term)
                    }
                    worst = max(worst, abs(Double(output[row * ldc + offset]) - sum) / magnitude)
                }
                // The padding columns past the range are never written.
                for offset in range.count..<ldc { #expect(output[row * ldc + offset] == start[row * ldc + offset]) }
            }
            #expect(worst < 1e-6, "\(rows) rows, accumulate \(accumulate): relative error \(worst)")
        }
        // Ranges that are not whole panels are refused (the caller then uses OpenBLAS).
        var scratch = [Float](repeating: 0, count: rows * columns)
        let refused = inputs.withUnsafeBufferPointer { a in
            scratch.withUnsafeMutableBufferPointer { c in
                packed.multiply(rows: rows, columns: 16..<48, a: a.baseAddress!, lda: depth, accumulate: false, c: c.baseAddress!, ldc: columns)
            }
        }
        #expect(!refused)
    }
}
