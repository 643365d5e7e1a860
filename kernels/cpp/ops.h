// Raw-pointer CPU kernels of the torchdrills C++ extension, shared by layernorm_dropout.cpp,
// reduction.cpp and bindings.cpp.
//
// The kernels see no torch types: bindings.cpp checks shapes/dtypes/contiguity, allocates and
// calls these on contiguous buffers. Keeping torch headers out of the kernel files keeps them
// quick to compile (torch/extension.h alone costs ~30 s of g++ on a 2-core box) and keeps
// the loops plain enough for GCC's vectoriser (-O3 -march=native; see -fopt-info-vec).
//
// Shape legend: M = number of rows (product of all leading dims), N = row length (last dim).
// Element (i, j) of a row-major (M, N) buffer lives at i * N + j; that index is also the
// Philox offset of the dropout mask (see kernels/cuda/philox.cuh).
#pragma once

#include <cstdint>

namespace td {
namespace cpu {

// Work (elements) below which loops run on one thread: ATen's at::internal::GRAIN_SIZE. Under
// it an OpenMP fork/join costs more than it saves, and far more on a busy machine: a 3 x 9
// forward took 13 ms with 2 threads at load average 8 on 2 cores, 3 us with one.
constexpr int64_t PARALLEL_GRAIN = 32768;

// LayerNorm over the last dim then dropout, one row per OpenMP iteration.
//   x, out: (M, N); weight, bias: (N,) or nullptr; mean, rstd: (M,).
//   Statistics are accumulated in double (two-pass: mean, then sum of squared deviations).
//   out = keep ? ((x - mean) * rstd * weight + bias) * scale : 0 with scale = 1 / (1 - p);
//   The keep test compares in float32 (float(p)), as Triton does; the scale uses the double p.
//   p == 0 skips the RNG (every element kept: Philox gives u == 0 with probability 2^-31
//   and u > 0 would drop it); p == 1 drops everything (scale 0).
template <typename T>
void layer_norm_dropout_forward(const T* x, const T* weight, const T* bias, T* out, T* mean,
                                T* rstd, int64_t M, int64_t N, double eps, double p,
                                uint64_t seed);

// Backward of the above, regenerating the mask from (seed, offset).
//   grad_out, x, grad_x: (M, N); weight: (N,) or nullptr; mean, rstd: (M,);
//   grad_weight, grad_bias: (N,) or nullptr (not computed).
template <typename T>
void layer_norm_dropout_backward(const T* grad_out, const T* x, const T* weight, const T* mean,
                                 const T* rstd, T* grad_x, T* grad_weight, T* grad_bias,
                                 int64_t M, int64_t N, double p, uint64_t seed);

// Sum of n contiguous elements (double accumulation; see reduction.cpp for the error bound).
template <typename T>
T sum_all(const T* x, int64_t n);

// out[i] = sum_j x[i * N + j] for i < M.
template <typename T>
void sum_lastdim(const T* x, T* out, int64_t M, int64_t N);

// out[k] = tl.rand(seed, offsets[k]) (testing hook for the shared Philox header).
void philox_uniform(const int64_t* offsets, float* out, int64_t n, uint64_t seed);

}  // namespace cpu
}  // namespace td
