#ifndef INTELLIDOCS_CKERNELS_H
#define INTELLIDOCS_CKERNELS_H

/// The element-wise steps of the BERT forward pass (bias + GELU, bias + LayerNorm, softmax), in C so each
/// is compiled for AVX-512, AVX2 and baseline x86-64 and the processor picks its version when the library
/// loads (`target_clones`). Swift compiles for baseline x86-64 only (SSE, 4 floats at a time).
/// The Embedding module's `Kernels` is the only caller.

/// `matrix[r][c] = GELU(matrix[r][c] + bias[c])`, exact (erf) form, for `rows` rows of `columns` values,
/// rows `stride` floats apart.
void intellidocs_add_bias_gelu(float *matrix, const float *bias, long rows, long columns, long stride);

/// `output = LayerNorm(input + bias) * gamma + beta` for one row of `count` values (`bias` may be NULL;
/// `input` and `output` may be the same row). Two-pass mean and variance, as PyTorch.
void intellidocs_add_bias_layer_norm(const float *input, const float *bias, const float *gamma, const float *beta,
                                     long count, float epsilon, float *output);

/// Softmax of each of `rows` rows of `columns` values (stride `columns`), in place, maximum subtracted first.
void intellidocs_softmax_rows(float *matrix, long rows, long columns);

/// Matrix products against weights packed once, for the small products of a search pass, where OpenBLAS
/// repacking the weights on every call cost a fifth of the product time. AVX-512 only: callers check
/// `intellidocs_packed_gemm_available()` first and use OpenBLAS otherwise.
///
/// Weights are PyTorch's `[n × k]` (row-major, one row per output column); packed, they are panels of
/// `INTELLIDOCS_PANEL` output columns, each `k` rows of `INTELLIDOCS_PANEL` floats. `n` must be a multiple
/// of `INTELLIDOCS_PANEL`; `packed` holds `n × k` floats.
#define INTELLIDOCS_PANEL 32
int intellidocs_packed_gemm_available(void);
void intellidocs_pack_panels(const float *weights, long n, long k, float *packed);

/// `c[i][j] (+)= Σ_q a[i][q] · w[j][q]` for `m` rows and the `n` output columns of the panels starting at
/// `panels` (a multiple of `INTELLIDOCS_PANEL` columns into a packed matrix); `accumulate` adds to `c`
/// instead of overwriting it. `a` rows are `lda` floats apart, `c` rows `ldc`.
void intellidocs_gemm_packed(long m, long n, long k, const float *a, long lda, const float *panels, int accumulate, float *c, long ldc);

/// `e^x` for x <= 0 and `erf(x)`, the scalar forms of what the kernels use (for tests).
float intellidocs_exp_nonpositive(float x);
float intellidocs_erf(float x);

#endif
