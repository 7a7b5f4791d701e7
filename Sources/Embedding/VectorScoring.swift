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
    /// matrix, so a large matrix is read from memory once per batch instead of once per query.
    ///
    /// How, depends on OpenBLAS's kernels (`smallProductRows`):
    /// - with its AVX-512 kernels, the matrix goes in blocks of rows, each block's product small enough
    ///   for OpenBLAS's small-matrix kernel, which reads the operands in place: one `sgemm` over the whole
    ///   matrix first copies all of it into a packed layout, which costs as much as the products;
    /// - otherwise one `sgemm`, or one `sgemv` per query for up to `gemvLimit` queries (packing 15 MB to
    ///   score one or two queries costs more than reading it once or twice more).
    ///
    /// Measured on 9,900 × 384 (SciFact), one thread, Cooperlake kernels: 4 queries 45 → 139 GFLOP/s,
    /// 8 queries 75 → 139, 16 queries 137 → 173 (one `sgemm` → blocks); `sgemv` 35–38 per query.
    public static func dotProducts(
        matrix: UnsafeBufferPointer<Float>, rows: Int, dimension: Int, queries: [[Float]], into scores: inout [Float]
    ) {
        precondition(queries.allSatisfy { $0.count == dimension } && matrix.count >= rows * dimension)
        BLAS.ensureKernel()
        let count = queries.count
        if scores.count < rows * count { scores = [Float](repeating: 0, count: rows * count) }
        guard rows > 0, count > 0, let base = matrix.baseAddress else { return }
        if count == 1 || (count <= gemvLimit && !smallKernels) {
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
        guard smallKernels else {
            let packed = queries.flatMap { $0 }
            packed.withUnsafeBufferPointer { q in
                scores.withUnsafeMutableBufferPointer { out in
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(count), Int32(dimension), 1, base,
                        Int32(dimension), q.baseAddress, Int32(dimension), 0, out.baseAddress, Int32(count))
                }
            }
            return
        }
        // The queries as the columns of a [dimension × count] matrix: the small kernels take `A · B`
        // without transposes.
        var columns = [Float](repeating: 0, count: dimension * count)
        for (j, query) in queries.enumerated() {
            for d in 0..<dimension { columns[d * count + j] = query[d] }
        }
        let block = smallProductRows(columns: count, dimension: dimension)
        columns.withUnsafeBufferPointer { q in
            scores.withUnsafeMutableBufferPointer { out in
                for first in stride(from: 0, to: rows, by: block) {
                    let height = min(block, rows - first)
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(height), Int32(count), Int32(dimension), 1,
                        base + first * dimension, Int32(dimension), q.baseAddress, Int32(count), 0,
                        out.baseAddress! + first * count, Int32(count))
                }
            }
        }
    }

    /// Whether OpenBLAS runs its AVX-512 kernels, which include the small-matrix `sgemm` kernels (OpenBLAS
    /// takes them for a product with m·n·k ≤ 100³, no packing). With the AVX2 kernels, blocks measured
    /// no better than one call.
    static let smallKernels: Bool = ["skylakex", "cooperlake", "sapphirerapids"].contains(BLAS.coreName.lowercased())

    /// Rows per block so that one block's product stays under OpenBLAS's small-matrix limit (m·n·k ≤ 100³;
    /// beyond it the speed fell back to that of one packed call).
    static func smallProductRows(columns: Int, dimension: Int) -> Int {
        max(1, 960_000 / max(1, columns * dimension))
    }
}
