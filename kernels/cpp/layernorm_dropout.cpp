// Fused LayerNorm + Dropout on the CPU: forward and backward over rows of a (M, N) buffer.
//
// Sources: the row-wise formulation of PyTorch's aten/src/ATen/native/cpu/layer_norm_kernel.cpp
// (mean/rstd saved per row, backward dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with
// g = dy * gamma), and Triton tutorial 04 for the counter-based dropout mask, regenerated in
// the backward instead of stored (saves 1 byte/element of memory traffic and all its memory).
//
// Build: -O3 -march=native -fopenmp (kernels/cpp/__init__.py). Loops are written so GCC
// vectorises them without -ffast-math: contiguous unit-stride inner loops, __restrict__
// pointers, and `#pragma omp simd reduction` on sums (a plain floating-point sum is not
// vectorised without it, because reordering the additions changes the rounding).
// OpenMP splits rows across threads: each row is independent, so no synchronisation is needed
// in the forward; the backward keeps per-thread partial dgamma/dbeta rows (double) and adds
// them at the end, in thread order, so results do not depend on scheduling for a fixed thread
// count.
#include "ops.h"

#include <cmath>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "philox.cuh"  // found through extra_include_paths = kernels/cuda

namespace td {
namespace cpu {
namespace {

inline int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Scale applied to kept elements: 1 / (1 - p), and 0 when p == 1 (everything dropped,
// matching torch.nn.functional.dropout, which returns zeros instead of NaN = 0 * inf).
// Computed from the double p: float(0.3) = 0.30000001..., and a scale built from it would be
// 1.7e-8 off in relative terms, visible in float64 results.
template <typename T>
T dropout_scale(double p) {
  return p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
}

// dst[j] = keep(base + j) ? src[j] * scale : 0, with keep decided in float32 against
// p32 = float(p), as Triton compares tl.rand's float32 with a float32 p. dst may equal src
// (the loop reads src[j] before writing dst[j]; no __restrict__ here for that reason).
template <typename T>
void apply_dropout(const T* src, T* dst, int64_t n, uint64_t base, uint64_t seed, float p32,
                   T scale) {
  for (int64_t j = 0; j < n; ++j) {
    const bool keep = philox_keep(seed, base + static_cast<uint64_t>(j), p32);
    dst[j] = keep ? src[j] * scale : T(0);
  }
}

}  // namespace

template <typename T>
void layer_norm_dropout_forward(const T* __restrict__ x, const T* __restrict__ weight,
                                const T* __restrict__ bias, T* __restrict__ out,
                                T* __restrict__ mean, T* __restrict__ rstd, int64_t M, int64_t N,
                                double eps, double p, uint64_t seed) {
  const float p32 = static_cast<float>(p);
  const bool dropout = p > 0.0;  // kernels/rng/philox.py's convention, also in the CUDA kernels
  const T scale = dropout_scale<T>(p);
  const double inv_n = 1.0 / static_cast<double>(N);
#pragma omp parallel for schedule(static) if (M * N >= PARALLEL_GRAIN)
  for (int64_t i = 0; i < M; ++i) {
    const T* __restrict__ xr = x + i * N;  // (N,)
    T* __restrict__ yr = out + i * N;      // (N,)
    // Two-pass statistics in double: the row (N * sizeof(T) bytes) stays in L1/L2 between
    // passes, so the second read is cheap, and the two-pass variance cannot go negative the
    // way E[x^2] - E[x]^2 can under cancellation.
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < N; ++j) sum += static_cast<double>(xr[j]);
    const double mu = sum * inv_n;
    double sq = 0.0;
#pragma omp simd reduction(+ : sq)
    for (int64_t j = 0; j < N; ++j) {
      const double d = static_cast<double>(xr[j]) - mu;
      sq += d * d;
    }
    const double rs = 1.0 / std::sqrt(sq * inv_n + eps);
    mean[i] = static_cast<T>(mu);
    rstd[i] = static_cast<T>(rs);

    const T mu_t = static_cast<T>(mu);
    const T rs_t = static_cast<T>(rs);
    for (int64_t j = 0; j < N; ++j) yr[j] = (xr[j] - mu_t) * rs_t;
    // Separate affine passes instead of a branch per element: each is a unit-stride loop the
    // vectoriser handles, over a row that is still in L1.
    if (weight != nullptr)
      for (int64_t j = 0; j < N; ++j) yr[j] *= weight[j];
    if (bias != nullptr)
      for (int64_t j = 0; j < N; ++j) yr[j] += bias[j];
    if (dropout) apply_dropout(yr, yr, N, static_cast<uint64_t>(i * N), seed, p32, scale);
  }
}

template <typename T>
void layer_norm_dropout_backward(const T* __restrict__ grad_out, const T* __restrict__ x,
                                 const T* __restrict__ weight, const T* __restrict__ mean,
                                 const T* __restrict__ rstd, T* __restrict__ grad_x,
                                 T* __restrict__ grad_weight, T* __restrict__ grad_bias,
                                 int64_t M, int64_t N, double p, uint64_t seed) {
  const float p32 = static_cast<float>(p);
  const bool dropout = p > 0.0;  // kernels/rng/philox.py's convention, also in the CUDA kernels
  const T scale = dropout_scale<T>(p);
  const double inv_n = 1.0 / static_cast<double>(N);
  // gamma == 1 when there is no weight: one buffer of N ones instead of a branch per element.
  std::vector<T> ones;
  if (weight == nullptr) ones.assign(static_cast<size_t>(N), T(1));
  const T* __restrict__ w = weight != nullptr ? weight : ones.data();

  const int n_threads = M * N >= PARALLEL_GRAIN ? max_threads() : 1;
  const bool want_w = grad_weight != nullptr;
  const bool want_b = grad_bias != nullptr;
  // Per-thread partial column sums (double): (n_threads, N) each.
  std::vector<double> dw_part(want_w ? static_cast<size_t>(n_threads) * N : 0, 0.0);
  std::vector<double> db_part(want_b ? static_cast<size_t>(n_threads) * N : 0, 0.0);

#pragma omp parallel num_threads(n_threads)
  {
    const int t = thread_id();
    double* __restrict__ dwp = want_w ? dw_part.data() + static_cast<size_t>(t) * N : nullptr;
    double* __restrict__ dbp = want_b ? db_part.data() + static_cast<size_t>(t) * N : nullptr;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < M; ++i) {
      const T* __restrict__ gor = grad_out + i * N;  // (N,)
      const T* __restrict__ xr = x + i * N;          // (N,)
      T* __restrict__ gxr = grad_x + i * N;          // (N,) holds dy first, then dx
      // Everything after dy is computed in double: float products are exact in double, so
      // g - mean(g) is exactly 0 where it should be (N == 1: dx == 0, whereas float math with
      // FMA contraction leaves rounding residue times rstd ~ 1/sqrt(eps) = 316).
      const double mu = static_cast<double>(mean[i]);
      const double rs = static_cast<double>(rstd[i]);
      // dy = dL/d(layer-norm output): the incoming gradient through the same dropout mask.
      if (dropout) {
        apply_dropout(gor, gxr, N, static_cast<uint64_t>(i * N), seed, p32, scale);
      } else {
        for (int64_t j = 0; j < N; ++j) gxr[j] = gor[j];
      }
      if (dwp != nullptr)
        for (int64_t j = 0; j < N; ++j)
          dwp[j] += static_cast<double>(gxr[j]) * ((static_cast<double>(xr[j]) - mu) * rs);
      if (dbp != nullptr)
        for (int64_t j = 0; j < N; ++j) dbp[j] += static_cast<double>(gxr[j]);
      // Row sums of g = dy * gamma and g * xhat.
      double sum_g = 0.0;
      double sum_gx = 0.0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
      for (int64_t j = 0; j < N; ++j) {
        const double g = static_cast<double>(gxr[j]) * static_cast<double>(w[j]);
        const double xhat = (static_cast<double>(xr[j]) - mu) * rs;
        sum_g += g;
        sum_gx += g * xhat;
      }
      const double mean_g = sum_g * inv_n;
      const double mean_gx = sum_gx * inv_n;
      for (int64_t j = 0; j < N; ++j) {
        const double g = static_cast<double>(gxr[j]) * static_cast<double>(w[j]);
        const double xhat = (static_cast<double>(xr[j]) - mu) * rs;
        gxr[j] = static_cast<T>(rs * (g - mean_g - xhat * mean_gx));
      }
    }
  }

  // Combine the per-thread partials in thread order (deterministic for a fixed thread count).
  const int64_t combine_work = static_cast<int64_t>(n_threads) * N;
  if (want_w || want_b) {
#pragma omp parallel for schedule(static) if (combine_work >= PARALLEL_GRAIN)
    for (int64_t j = 0; j < N; ++j) {
      double dw = 0.0;
      double db = 0.0;
      for (int t = 0; t < n_threads; ++t) {
        if (want_w) dw += dw_part[static_cast<size_t>(t) * N + j];
        if (want_b) db += db_part[static_cast<size_t>(t) * N + j];
      }
      if (want_w) grad_weight[j] = static_cast<T>(dw);
      if (want_b) grad_bias[j] = static_cast<T>(db);
    }
  }
}

void philox_uniform(const int64_t* __restrict__ offsets, float* __restrict__ out, int64_t n,
                    uint64_t seed) {
#pragma omp parallel for schedule(static) if (n >= PARALLEL_GRAIN)
  for (int64_t k = 0; k < n; ++k)
    out[k] = td::philox_uniform(seed, static_cast<uint64_t>(offsets[k]));
}

// Explicit instantiations: the extension supports float32 and float64 (float64 for gradcheck).
template void layer_norm_dropout_forward<float>(const float*, const float*, const float*, float*,
                                                float*, float*, int64_t, int64_t, double, double,
                                                uint64_t);
template void layer_norm_dropout_forward<double>(const double*, const double*, const double*,
                                                 double*, double*, double*, int64_t, int64_t,
                                                 double, double, uint64_t);
template void layer_norm_dropout_backward<float>(const float*, const float*, const float*,
                                                 const float*, const float*, float*, float*,
                                                 float*, int64_t, int64_t, double, uint64_t);
template void layer_norm_dropout_backward<double>(const double*, const double*, const double*,
                                                  const double*, const double*, double*, double*,
                                                  double*, int64_t, int64_t, double, uint64_t);

}  // namespace cpu
}  // namespace td
