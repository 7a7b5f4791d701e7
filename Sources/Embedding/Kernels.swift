/// The element-wise work of the forward pass, fused so each activation is read and written once per step:
/// bias + GELU, bias + LayerNorm, and the softmax of attention scores.
///
/// Written as plain loops over `Float` on purpose. In release builds the compiler vectorises them (the
/// `exp` and `erf` below use only arithmetic, comparisons and bit casts, which it can; calls into the C
/// library it cannot), and in debug builds, which the tests use, scalar `Float` code stays fast while
/// `SIMD8<Float>` code would run through unspecialised generics a thousand times slower. Sums and maxima
/// keep four independent partial results, because the compiler may not reorder float additions by itself
/// and a single running sum would wait on every addition.
///
/// Accuracy: `exp` is Cephes' `expf` (about 1 ulp); `erf` is the rational approximation XLA and Eigen use
/// for float32 (under 4e-7 absolute). Both are far inside what parity (cosine ≥ 0.9999) needs.
enum Kernels {
    // MARK: exp and erf

    /// `e^x` for `x ≤ 0`, as softmax needs after subtracting the row maximum. x is clamped at −87.3, below
    /// which a float32 result would no longer be normal (e^−87.3 ≈ 1e−38 is nothing next to e⁰ = 1).
    @inline(__always)
    static func expNonPositive(_ input: Float) -> Float {
        let x: Float = input < -87.3 ? -87.3 : input
        // Adding 1.5 · 2²³ rounds x·log₂e to an integer n, which lands in the low mantissa bits.
        let magic: Float = 12_582_912
        let shifted = x * 1.442_695_04 + magic
        let n = shifted - magic
        // r = x − n·ln 2 in two steps (Cody–Waite), so the reduction loses no bits.
        let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4
        var p: Float = 1.987_569_15e-4
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let y = p * (r * r) + r + 1
        // 2ⁿ written straight into the exponent field: n + 127 shifted past the 23 mantissa bits.
        let power = Float(bitPattern: (shifted.bitPattern &- magic.bitPattern &+ 127) &<< 23)
        return y * power
    }

    /// `erf(x)`: x·P(x²)/Q(x²) on [−4, 4]; beyond that erf is ±1 in float32.
    @inline(__always)
    static func erf(_ input: Float) -> Float {
        let x: Float = input < -4 ? -4 : (input > 4 ? 4 : input)
        let x2 = x * x
        var p: Float = x2 * -2.726_142_258_013_06e-10 + 2.770_681_424_959_02e-08
        p = x2 * p - 2.101_024_020_825_08e-06
        p = x2 * p - 5.692_506_394_623_46e-05
        p = x2 * p - 7.349_906_303_268_55e-04
        p = x2 * p - 2.954_599_808_540_25e-03
        p = x2 * p - 1.609_603_332_624_15e-02
        var q: Float = x2 * -1.456_607_184_649_96e-05 - 2.133_740_552_789_05e-04
        q = x2 * q - 1.682_826_974_382_03e-03
        q = x2 * q - 7.373_329_167_204_68e-03
        q = x2 * q - 1.426_473_905_141_89e-02
        return x * p / q
    }

    /// GELU in its exact form, `x · Φ(x) = ½ · x · (1 + erf(x / √2))`, as BERT's `hidden_act: gelu`.
    @inline(__always)
    static func gelu(_ x: Float) -> Float {
        0.5 * x * (1 + erf(x * 0.707_106_781_186_547_5))
    }

    // MARK: Reductions

    /// `Σ element(i)` for `i` in `0..<count`, with four partial sums.
    @inline(__always)
    static func sum(_ count: Int, _ element: (Int) -> Float) -> Float {
        var (s0, s1, s2, s3): (Float, Float, Float, Float) = (0, 0, 0, 0)
        var index = 0
        while index + 4 <= count {
            s0 += element(index)
            s1 += element(index + 1)
            s2 += element(index + 2)
            s3 += element(index + 3)
            index += 4
        }
        while index < count {
            s0 += element(index)
            index += 1
        }
        return (s0 + s1) + (s2 + s3)
    }

    /// The largest of `values[0..<count]` (−∞ when empty), with four partial maxima.
    @inline(__always)
    static func maximum(_ values: UnsafePointer<Float>, _ count: Int) -> Float {
        var (m0, m1, m2, m3) = (-Float.infinity, -Float.infinity, -Float.infinity, -Float.infinity)
        var index = 0
        while index + 4 <= count {
            m0 = values[index] > m0 ? values[index] : m0
            m1 = values[index + 1] > m1 ? values[index + 1] : m1
            m2 = values[index + 2] > m2 ? values[index + 2] : m2
            m3 = values[index + 3] > m3 ? values[index + 3] : m3
            index += 4
        }
        while index < count {
            m0 = values[index] > m0 ? values[index] : m0
            index += 1
        }
        return max(max(m0, m1), max(m2, m3))
    }

    // MARK: Fused row operations

    /// `row ← GELU(row + bias)` for `rows` rows of `columns` values at stride `columns`.
    static func addBiasGELU(_ matrix: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, rows: Int, columns: Int) {
        for row in 0..<rows {
            let values = matrix + row * columns
            for column in 0..<columns {
                values[column] = gelu(values[column] + bias[column])
            }
        }
    }

    /// `output ← LayerNorm(input + bias) · gamma + beta` for one row of `count` values; `input` and
    /// `output` may be the same row. Mean and variance take two passes (as PyTorch does), not
    /// E[x²] − E[x]², which loses digits when the mean is large next to the spread.
    static func addBiasLayerNorm(
        _ input: UnsafePointer<Float>, bias: UnsafePointer<Float>?, gamma: UnsafePointer<Float>,
        beta: UnsafePointer<Float>, count: Int, epsilon: Float, output: UnsafeMutablePointer<Float>
    ) {
        if let bias {
            for column in 0..<count {
                output[column] = input[column] + bias[column]
            }
        } else if UnsafePointer(output) != input {
            output.update(from: input, count: count)
        }
        let mean = sum(count) { output[$0] } / Float(count)
        let variance = sum(count) { (output[$0] - mean) * (output[$0] - mean) } / Float(count)
        let scale = 1 / (variance + epsilon).squareRoot()
        for column in 0..<count {
            output[column] = (output[column] - mean) * scale * gamma[column] + beta[column]
        }
    }

    /// Softmax of each of `rows` rows of `columns` values (stride `columns`), in place, with the row's
    /// maximum subtracted first so `exp` cannot overflow.
    static func softmaxRows(_ matrix: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        for row in 0..<rows {
            let values = matrix + row * columns
            let largest = maximum(values, columns)
            for column in 0..<columns {
                values[column] = expNonPositive(values[column] - largest)
            }
            let inverse = 1 / sum(columns) { values[$0] }
            for column in 0..<columns {
                values[column] *= inverse
            }
        }
    }
}
