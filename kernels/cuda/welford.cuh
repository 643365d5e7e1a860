// Row statistics for layer norm: Welford's running mean/M2 per thread, Chan's pairwise
// combination across the lanes of a warp (shuffles) and the warps of a block (shared memory),
// and rsqrt in the accumulation type. Used by layernorm_dropout.cu.
//
// Sources: B. P. Welford, "Note on a method for calculating corrected sums of squares and
// products" (Technometrics, 1962); T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating formulae
// and a pairwise algorithm for computing sample variances" (1979); the same scheme as
// PyTorch's WelfordOps (aten/src/ATen/native/SharedReduceOps.h) and Apex's cuWelford*.
#pragma once

#include "common.cuh"

namespace td {
namespace cuda {

template <typename acc_t>
__device__ __forceinline__ acc_t rsqrt_acc(acc_t v);
template <>
__device__ __forceinline__ float rsqrt_acc<float>(float v) {
  return rsqrtf(v);  // MUFU.RSQ: <= 2 ulp, as PyTorch's CUDA layer_norm
}
template <>
__device__ __forceinline__ double rsqrt_acc<double>(double v) {
  return rsqrt(v);
}

// Running mean / sum of squared deviations (Welford 1962) of `count` values.
template <typename acc_t>
struct Welford {
  acc_t mean;
  acc_t m2;
  acc_t count;  // acc_t, not int: it is divided by in every update and combine
};

template <typename acc_t>
__device__ __forceinline__ void welford_add(Welford<acc_t>& s, acc_t v) {
  s.count += acc_t(1);
  const acc_t delta = v - s.mean;
  s.mean += delta / s.count;
  s.m2 += delta * (v - s.mean);
}

// Chan, Golub, LeVeque (1979) pairwise combination of two partial states.
template <typename acc_t>
__device__ __forceinline__ Welford<acc_t> welford_combine(const Welford<acc_t>& a,
                                                          const Welford<acc_t>& b) {
  if (b.count == acc_t(0)) return a;
  if (a.count == acc_t(0)) return b;
  const acc_t count = a.count + b.count;
  const acc_t delta = b.mean - a.mean;
  const acc_t nb_over_n = b.count / count;
  return {a.mean + delta * nb_over_n, a.m2 + b.m2 + delta * delta * a.count * nb_over_n, count};
}

template <typename acc_t>
__device__ __forceinline__ Welford<acc_t> welford_warp_reduce(Welford<acc_t> s) {
#pragma unroll
  for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1) {
    const Welford<acc_t> other{__shfl_down_sync(FULL_MASK, s.mean, offset),
                               __shfl_down_sync(FULL_MASK, s.m2, offset),
                               __shfl_down_sync(FULL_MASK, s.count, offset)};
    s = welford_combine(s, other);
  }
  return s;
}

// Whole-block Welford state, returned to every thread. shared: WARP_SIZE slots.
template <typename acc_t>
__device__ __forceinline__ Welford<acc_t> welford_block_allreduce(Welford<acc_t> s,
                                                                  Welford<acc_t>* shared) {
  const int lane = threadIdx.x % WARP_SIZE;
  const int warp = threadIdx.x / WARP_SIZE;
  const int n_warps = blockDim.x / WARP_SIZE;
  s = welford_warp_reduce(s);
  if (lane == 0) shared[warp] = s;
  __syncthreads();
  if (warp == 0) {
    s = lane < n_warps ? shared[lane] : Welford<acc_t>{acc_t(0), acc_t(0), acc_t(0)};
    s = welford_warp_reduce(s);
    if (lane == 0) shared[0] = s;
  }
  __syncthreads();
  return shared[0];
}

}  // namespace cuda
}  // namespace td
