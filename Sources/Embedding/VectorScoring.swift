import COpenBLAS

/// Scores for exact vector search, on OpenBLAS: the Search room's vector index keeps its vectors in one
/// contiguous row-major matrix and asks for all dot products with a query at once (`sgemv`).
public enum VectorScoring {
    /// Batches of at most this many queries are scored query by query (`sgemv`), see `dotProducts(matrix:rows:dimension:queries:into:)`.
    static let gemvLimit = 3

    /// `a · b` for two vectors of `dimension` floats: the graph search of the vector index compares one
    /// pair at a time.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, dimension: Int) -> Float {
        BLAS.ensureKernel()
        return cblas_sdot(Int32(dimension), a, 1, b, 1)
    }

    /// `scores[i] = matrix[i] · query` for `rows` rows of `dimension` floats.
    public static func dotProducts(
        matrix: UnsafeBufferPointer<Float>, rows: Int, dimension: Int, query: [Float], into scores: inout [Float]
    ) {
        precondition(query.count == dimension && matrix.count >= rows * dimension)
        BLAS.ensureKernel()
        if scores.count < rows { scores = [Float](repeating: 0, count: rows) }
        guard rows > 0, let base = matrix.baseAddress else { return }
        query.withUnsafeBufferPointer { q in
            scores.withUnsafeMutableBufferPointer { out in
                cblas_sgemv(
                    CblasRowMajor, CblasNoTrans, Int32(rows), Int32(dimension), 1, base, Int32(dimension), q.baseAddress,
                    1, 0, out.baseAddress, 1)
            }
        }
    }

    /// `scores[i * queries.count + j] = matrix[i] · queries[j]`: several queries in one pass over the
    /// matrix (one sgemm), so a large matrix is read from memory once per batch instead of once per query.
    ///
    /// Up to `gemvLimit` queries are scored with one `sgemv` each instead: `sgemm` first copies the whole
    /// matrix into its packed layout, which costs more than reading it once or twice more. Measured on
    /// 9,900 × 384 (SciFact), one thread: `sgemm` 0.73–0.81 ms for 1–2 queries, 0.78 for 4, 0.97 for 8;
    /// `sgemv` 0.20 ms per query.
    public static func dotProducts(
        matrix: UnsafeBufferPointer<Float>, rows: Int, dimension: Int, queries: [[Float]], into scores: inout [Float]
    ) {
        precondition(queries.allSatisfy { $0.count == dimension } && matrix.count >= rows * dimension)
        BLAS.ensureKernel()
        let count = queries.count
        if scores.count < rows * count { scores = [Float](repeating: 0, count: rows * count) }
        guard rows > 0, count > 0, let base = matrix.baseAddress else { return }
        if count <= gemvLimit {
            var column = [Float](repeating: 0, count: rows)
            for (j, query) in queries.enumerated() {
                query.withUnsafeBufferPointer { q in
                    column.withUnsafeMutableBufferPointer { out in
                        cblas_sgemv(
                            CblasRowMajor, CblasNoTrans, Int32(rows), Int32(dimension), 1, base, Int32(dimension), q.baseAddress,
                            1, 0, out.baseAddress, 1)
                    }
                }
                for i in 0..<rows { scores[i * count + j] = column[i] }
            }
            return
        }
        let packed = queries.flatMap { $0 }
        packed.withUnsafeBufferPointer { q in
            scores.withUnsafeMutableBufferPointer { out in
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(count), Int32(dimension), 1, base, Int32(dimension),
                    q.baseAddress, Int32(dimension), 0, out.baseAddress, Int32(count))
            }
        }
    }
}
