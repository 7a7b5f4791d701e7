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

/// `e^x` for x <= 0 and `erf(x)`, the scalar forms of what the kernels use (for tests).
float intellidocs_exp_nonpositive(float x);
float intellidocs_erf(float x);

#endif
