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
        // Values in [-1, 1] from a fixed scramble of the index, so a failure can be reproduced.
        func value(_ index: Int, _ salt: Int) -> Float { Float((index &* 7_919 &+ salt &* 104_729) % 2_001) / 1_000 - 1 }
        let matrix = (0..<rows * dimension).map { value($0, 0) }
        let queries = (0..<count).map { query in (0..<dimension).map { value($0, query + 1) } }
        var scores: [Float] = []
        matrix.withUnsafeBufferPointer {
            VectorScoring.dotProducts(matrix: $0, rows: rows, dimension: dimension, queries: queries, into: &scores)
        }
        #expect(scores.count >= rows * count)
        // The error relative to Σ|terms|, the scale a float32 sum's rounding grows with.
        var worst: Double = 0
        for i in 0..<rows {
            for j in 0..<count {
                var exact: Double = 0, magnitude: Double = 0
                for d in 0..<dimension {
                    let term = Double(matrix[i * dimension + d]) * Double(queries[j][d])
                    exact += term
                    magnitude += abs(term)
                }
                worst = max(worst, abs(Double(scores[i * count + j]) - exact) / max(magnitude, 1))
            }
        }
        #expect(worst < 1e-5, "largest relative difference \(worst) with \(count) queries (small kernels: \(VectorScoring.smallKernels))")
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
