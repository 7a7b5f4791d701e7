// Element-wise kernels of the forward pass; see include/ckernels.h.
//
// Each exported function is compiled three times (`target_clones`): AVX-512, AVX2 + FMA, and baseline
// x86-64; the dynamic loader picks one for this processor once. The loops are plain C that the compiler
// vectorises: the math below uses only arithmetic, comparisons and bit casts (no libm calls), and the
// sums and maxima keep LANES independent partial results, since the compiler may not reorder float
// additions by itself.
//
// Accuracy: exp is Cephes' expf (about 1 ulp); erf is the rational approximation XLA and Eigen use for
// float32 (under 4e-7 absolute). Both are far inside what the model's parity (cosine >= 0.9999) needs.
#include "ckernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__linux__) && !defined(INTELLIDOCS_NO_CLONES)
#define CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define CLONES
#endif

#define LANES 16

static inline float exp_nonpositive(float input) {
    float x = input < -87.3f ? -87.3f : input;
    // Adding 1.5 * 2^23 rounds x*log2(e) to an integer n, which lands in the low mantissa bits.
    const float magic = 12582912.0f;
    float shifted = x * 1.44269504f + magic;
    float n = shifted - magic;
    // r = x - n*ln2 in two steps (Cody-Waite), so the reduction loses no bits.
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * (r * r) + r + 1.0f;
    // 2^n written straight into the exponent field.
    uint32_t sbits, mbits;
    memcpy(&sbits, &shifted, 4);
    memcpy(&mbits, &magic, 4);
    uint32_t pbits = (sbits - mbits + 127u) << 23;
    float power;
    memcpy(&power, &pbits, 4);
    return y * power;
}

static inline float erf_approx(float input) {
    float x = input < -4.0f ? -4.0f : (input > 4.0f ? 4.0f : input);
    float x2 = x * x;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = x2 * p - 2.10102402082508e-06f;
    p = x2 * p - 5.69250639462346e-05f;
    p = x2 * p - 7.34990630326855e-04f;
    p = x2 * p - 2.95459980854025e-03f;
    p = x2 * p - 1.60960333262415e-02f;
    float q = x2 * -1.45660718464996e-05f - 2.13374055278905e-04f;
    q = x2 * q - 1.68282697438203e-03f;
    q = x2 * q - 7.37332916720468e-03f;
    q = x2 * q - 1.42647390514189e-02f;
    return x * p / q;
}

float intellidocs_exp_nonpositive(float x) { return exp_nonpositive(x); }
float intellidocs_erf(float x) { return erf_approx(x); }

CLONES
void intellidocs_add_bias_gelu(float *matrix, const float *bias, long rows, long columns, long stride) {
    for (long row = 0; row < rows; row++) {
        float *restrict values = matrix + row * stride;
        for (long column = 0; column < columns; column++) {
            float x = values[column] + bias[column];
            values[column] = 0.5f * x * (1.0f + erf_approx(x * 0.7071067811865475f));
        }
    }
}

/// Sum of `values[0..<count]` with LANES partial sums.
static inline float sum(const float *values, long count) {
    float partial[LANES] = {0};
    long index = 0;
    for (; index + LANES <= count; index += LANES)
        for (int lane = 0; lane < LANES; lane++) partial[lane] += values[index + lane];
    for (; index < count; index++) partial[0] += values[index];
    float total = 0;
    for (int lane = 0; lane < LANES; lane++) total += partial[lane];
    return total;
}

CLONES
void intellidocs_add_bias_layer_norm(const float *input, const float *bias, const float *gamma, const float *beta,
                                     long count, float epsilon, float *output) {
    if (bias) {
        for (long column = 0; column < count; column++) output[column] = input[column] + bias[column];
    } else if (output != input) {
        memmove(output, input, (size_t)count * sizeof(float));
    }
    float mean = sum(output, count) / (float)count;
    float partial[LANES] = {0};
    long index = 0;
    for (; index + LANES <= count; index += LANES)
        for (int lane = 0; lane < LANES; lane++) {
            float d = output[index + lane] - mean;
            partial[lane] += d * d;
        }
    for (; index < count; index++) {
        float d = output[index] - mean;
        partial[0] += d * d;
    }
    float squares = 0;
    for (int lane = 0; lane < LANES; lane++) squares += partial[lane];
    float scale = 1.0f / sqrtf(squares / (float)count + epsilon);
    for (long column = 0; column < count; column++)
        output[column] = (output[column] - mean) * scale * gamma[column] + beta[column];
}

CLONES
void intellidocs_softmax_rows(float *matrix, long rows, long columns) {
    for (long row = 0; row < rows; row++) {
        float *restrict values = matrix + row * columns;
        float partial[LANES];
        for (int lane = 0; lane < LANES; lane++) partial[lane] = -INFINITY;
        long index = 0;
        for (; index + LANES <= columns; index += LANES)
            for (int lane = 0; lane < LANES; lane++)
                partial[lane] = values[index + lane] > partial[lane] ? values[index + lane] : partial[lane];
        for (; index < columns; index++) partial[0] = values[index] > partial[0] ? values[index] : partial[0];
        float largest = -INFINITY;
        for (int lane = 0; lane < LANES; lane++) largest = partial[lane] > largest ? partial[lane] : largest;
        for (long column = 0; column < columns; column++) values[column] = exp_nonpositive(values[column] - largest);
        float inverse = 1.0f / sum(values, columns);
        for (long column = 0; column < columns; column++) values[column] *= inverse;
    }
}

// MARK: Products against packed weights

#if defined(__x86_64__)
#include <immintrin.h>

/// Rows of the output computed together: 12 rows × 2 vectors of 16 = 24 accumulators, which with the two
/// weight vectors and a broadcast fill 27 of AVX-512's 32 registers.
#define ROWS 12

int intellidocs_packed_gemm_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

void intellidocs_pack_panels(const float *weights, long n, long k, float *packed) {
    for (long panel = 0; panel < n / INTELLIDOCS_PANEL; panel++)
        for (long q = 0; q < k; q++)
            for (long j = 0; j < INTELLIDOCS_PANEL; j++)
                packed[(panel * k + q) * INTELLIDOCS_PANEL + j] = weights[(panel * INTELLIDOCS_PANEL + j) * k + q];
}

/// `rows` (≤ ROWS, a constant at each call site so the loops unroll into registers) rows of one panel.
__attribute__((target("avx512f"), always_inline))
static inline void panel_rows(const int rows, long k, const float *a, long lda, const float *panel, int accumulate, float *c, long ldc) {
    __m512 sums[ROWS][2];
#pragma clang loop unroll(full)
    for (int i = 0; i < ROWS; i++) {
        sums[i][0] = _mm512_setzero_ps();
        sums[i][1] = _mm512_setzero_ps();
    }
    for (long q = 0; q < k; q++) {
        const __m512 low = _mm512_loadu_ps(panel + q * INTELLIDOCS_PANEL);
        const __m512 high = _mm512_loadu_ps(panel + q * INTELLIDOCS_PANEL + 16);
#pragma clang loop unroll(full)
        for (int i = 0; i < ROWS; i++) {
            if (i < rows) {
                const __m512 value = _mm512_set1_ps(a[i * lda + q]);
                sums[i][0] = _mm512_fmadd_ps(value, low, sums[i][0]);
                sums[i][1] = _mm512_fmadd_ps(value, high, sums[i][1]);
            }
        }
    }
#pragma clang loop unroll(full)
    for (int i = 0; i < ROWS; i++) {
        if (i < rows) {
            float *row = c + i * ldc;
            if (accumulate) {
                sums[i][0] = _mm512_add_ps(_mm512_loadu_ps(row), sums[i][0]);
                sums[i][1] = _mm512_add_ps(_mm512_loadu_ps(row + 16), sums[i][1]);
            }
            _mm512_storeu_ps(row, sums[i][0]);
            _mm512_storeu_ps(row + 16, sums[i][1]);
        }
    }
}

__attribute__((target("avx512f")))
void intellidocs_gemm_packed(long m, long n, long k, const float *a, long lda, const float *panels, int accumulate, float *c, long ldc) {
    // Panel by panel: one panel's weights (k × 32 floats, 48 KB at k = 384) stay in cache for every row.
    for (long panel = 0; panel < n / INTELLIDOCS_PANEL; panel++) {
        const float *weights = panels + panel * k * INTELLIDOCS_PANEL;
        float *out = c + panel * INTELLIDOCS_PANEL;
        long i = 0;
        for (; i + ROWS <= m; i += ROWS) panel_rows(ROWS, k, a + i * lda, lda, weights, accumulate, out + i * ldc, ldc);
        switch (m - i) {
#define REST(r) case r: panel_rows(r, k, a + i * lda, lda, weights, accumulate, out + i * ldc, ldc); break;
            REST(1) REST(2) REST(3) REST(4) REST(5) REST(6) REST(7) REST(8) REST(9) REST(10) REST(11)
#undef REST
            default: break;
        }
    }
}

#else  // No AVX-512 here: callers see the kernel as unavailable and use OpenBLAS.

int intellidocs_packed_gemm_available(void) { return 0; }

void intellidocs_pack_panels(const float *weights, long n, long k, float *packed) {
    (void)weights; (void)n; (void)k; (void)packed;
}

void intellidocs_gemm_packed(long m, long n, long k, const float *a, long lda, const float *panels, int accumulate, float *c, long ldc) {
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)panels; (void)accumulate; (void)c; (void)ldc;
}

#endif
