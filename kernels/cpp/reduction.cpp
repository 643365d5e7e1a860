// Sum reductions on the CPU: over a whole contiguous buffer, and over the last dim of (M, N).
//
// Accumulation (the choice the caller can rely on):
//   - every sum accumulates in double, whatever T is (float32 or float64);
//   - float32 input: double accumulators alone suffice. Each partial sum carries a relative
//     error of at most about n * 2^-53 (times sum|x| / |sum x|), below float32's 2^-24 rounding
//     of the result for n < 2^29 elements, so the result is the correctly rounded float of the
//     exact sum in practice; torch.sum uses float accumulators with cascade (pairwise-like)
//     summation and can differ from us in the last bits (tests compare with a tolerance).
//   - float64 input: double accumulators have no headroom, so sum_all sums fixed chunks of
//     CHUNK elements (the vectoriser keeps 4-8 partial sums in SIMD lanes, which is itself
//     blocked summation) and adds the chunk sums with Kahan compensation. sum_lastdim sums a
//     row with the same SIMD partial sums but no Kahan step (rows are short next to sum_all's
//     inputs; see the error note on sum_lastdim).
//
// Parallelism: OpenMP over chunks (sum_all) or rows (sum_lastdim). Chunk sums are stored per
// chunk and combined sequentially, so sum_all's result does not depend on the thread count.
//
// Bytes moved per call: n * sizeof(T) read (+ M * sizeof(T) written for sum_lastdim); the
// op is memory-bound (1 add per element loaded), so GB/s is the figure of merit.
// Source: the decomposition follows the CUDA reduction whitepaper (Mark Harris, "Optimizing
// Parallel Reduction in CUDA", 2007: many elements per thread, then a tree over partials);
// Kahan summation: Higham, "Accuracy and Stability of Numerical Algorithms", ch. 4.
#include "ops.h"

#include <cstddef>
#include <vector>

namespace td {
namespace cpu {
namespace {

// 4096 elements = 16-32 KiB: one chunk fits L1 (32-48 KiB on current x86 cores) and the
// number of chunk sums stays small next to n.
constexpr int64_t CHUNK = 4096;

// Sum of x[0:n] in double with the SIMD partial sums `omp simd reduction` gives.
template <typename T>
inline double sum_contiguous(const T* __restrict__ x, int64_t n) {
  double acc = 0.0;
#pragma omp simd reduction(+ : acc)
  for (int64_t k = 0; k < n; ++k) acc += static_cast<double>(x[k]);
  return acc;
}

}  // namespace

template <typename T>
T sum_all(const T* __restrict__ x, int64_t n) {
  if (n <= 0) return T(0);
  const int64_t n_chunks = (n + CHUNK - 1) / CHUNK;
  std::vector<double> chunk_sums(static_cast<size_t>(n_chunks));
#pragma omp parallel for schedule(static) if (n >= PARALLEL_GRAIN)
  for (int64_t c = 0; c < n_chunks; ++c) {
    const int64_t start = c * CHUNK;
    const int64_t len = (n - start) < CHUNK ? (n - start) : CHUNK;
    chunk_sums[static_cast<size_t>(c)] = sum_contiguous(x + start, len);
  }
  // Kahan-compensated combination of the chunk sums, in chunk order (deterministic).
  // Without -ffast-math the compiler may not reassociate this, so the compensation survives.
  double total = 0.0;
  double comp = 0.0;
  for (int64_t c = 0; c < n_chunks; ++c) {
    const double y = chunk_sums[static_cast<size_t>(c)] - comp;
    const double t = total + y;
    comp = (t - total) - y;
    total = t;
  }
  return static_cast<T>(total);
}

// Error note: a row of N float64 values summed with SIMD partial sums has relative error up to
// about (N / lanes) * 2^-53 * sum|x| / |sum x|; fine for rows of a tensor's last dim, and the
// tests compare against torch.sum with float64 tolerances.
template <typename T>
void sum_lastdim(const T* __restrict__ x, T* __restrict__ out, int64_t M, int64_t N) {
#pragma omp parallel for schedule(static) if (M * N >= PARALLEL_GRAIN)
  for (int64_t i = 0; i < M; ++i) out[i] = static_cast<T>(sum_contiguous(x + i * N, N));
}

template float sum_all<float>(const float*, int64_t);
template double sum_all<double>(const double*, int64_t);
template void sum_lastdim<float>(const float*, float*, int64_t, int64_t);
template void sum_lastdim<double>(const double*, double*, int64_t, int64_t);

}  // namespace cpu
}  // namespace td
