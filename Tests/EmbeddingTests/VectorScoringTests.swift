import Testing

@testable import Embedding

/// The exact scan's products (`VectorScoring`) against dot products summed in `Double`, for every way the
/// batch is computed: one `sgemv` per query, one `sgemm`, or blocks of rows for OpenBLAS's small kernels.
@Suite struct VectorScoringTests {
    /// 2,501 rows: the blocks (at most 960,000 / (queries × 384) rows each) end in a partial one for
    /// every batch size below.
    @Test(arguments: [1, 2, 3, 4, 5, 8, 13, 16, 32])
    func batchedProductsEqualDotProducts(queries count: Int) {
        let rows = 2_501, dimension = 384
        var generator = SplitMix(seed: UInt64(count))
        let matrix = (0..<rows * dimension).map { _ in generator.nextFloat() }
        let queries = (0..<count).map { _ in (0..<dimension).map { _ in generator.nextFloat() } }
        var scores: [Float] = []
        matrix.withUnsafeBufferPointer {
            VectorScoring.dotProducts(matrix: $0, rows: rows, dimension: dimension, queries: queries, into: &scores)
        }
        #expect(scores.count >= rows * count)
        var worst: Double = 0
        for i in 0..<rows {
            for j in 0..<count {
                var exact: Double = 0
                for d in 0..<dimension { exact += Double(matrix[i * dimension + d]) * Double(queries[j][d]) }
                worst = max(worst, abs(Double(scores[i * count + j]) - exact))
            }
        }
        // Terms are in [-1, 1): float sums of 384 of them are good to about 1e-5.
        #expect(worst < 1e-4, "largest difference \(worst) with \(count) queries (small kernels: \(VectorScoring.smallKernels))")
    }

    @Test func blocksStayUnderTheSmallKernelLimit() {
        for columns in [1, 4, 7, 16, 32, 64] {
            let rows = VectorScoring.smallProductRows(columns: columns, dimension: 384)
            #expect(rows >= 1)
            #expect(rows * columns * 384 <= 1_000_000)
            #expect((rows + 1) * columns * 384 > 960_000 || rows == 1)
        }
    }
}

/// A small deterministic generator, so a failure can be reproduced.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
}
