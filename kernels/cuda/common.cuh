// Device helpers shared by layernorm_dropout.cu and reduction.cu: warp/block reductions,
// aligned vector loads, element <-> accumulator conversions, launch-size helpers.
//
// Hardware facts used here (NVIDIA, all architectures so far; sm_90 figures from the CUDA C++
// Programming Guide, "Compute Capabilities"):
//   - a warp is 32 threads; __shfl_down_sync moves a register between lanes without shared
//     memory, so a warp reduces 32 values in log2(32) = 5 shuffle steps;
//   - sm_90 (H100/H200): up to 2048 resident threads and 32 resident blocks per SM, 64K 32-bit
//     registers per SM, up to 228 KiB shared memory per SM (227 KiB usable by one block, 48 KiB
//     statically), 256 KiB combined L1/shared per SM; 132 SMs on H100 SXM / H200;
//   - the widest global load is 16 bytes per thread (LDG.128), which needs a 16-byte aligned
//     address: AlignedVector below.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "launch.h"  // AccType / acc_type

namespace td {
namespace cuda {

constexpr int WARP_SIZE = 32;
constexpr unsigned FULL_MASK = 0xffffffffu;  // all 32 lanes take part in the shuffle
// Widest single load per thread (bytes): LDG.128.
constexpr int MAX_VEC_BYTES = 16;

// VEC elements loaded/stored as one aligned access (VEC * sizeof(T) <= 16 bytes).
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) AlignedVector {
  T val[VEC];
};

// Element <-> accumulator conversions. Explicit intrinsics because torch's build flags
// (-D__CUDA_NO_HALF_CONVERSIONS__ etc.) switch off __half's implicit conversions; _rn rounds to
// nearest even, as at::Half(float) does on the host.
__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }
__device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_acc(acc_type<T> v) {
  return static_cast<T>(v);  // float -> float, double -> double
}
template <>
__device__ __forceinline__ __half from_acc<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// A product rounded on its own, never fused into a following add: nvcc contracts a * b + c
// into one FMA by default (--fmad=true), and two passes that recompute the same g = dy * gamma
// must round it the same way whether it then feeds a sum or a subtraction.
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

// Elements of T per 16-byte access: 4 for float, 8 for half/bfloat16, 2 for double.
template <typename T>
constexpr int max_vec() {
  return MAX_VEC_BYTES / static_cast<int>(sizeof(T));
}

// Lane 0 ends with the sum of v over the warp (5 shuffle steps for 32 lanes).
template <typename T>
__device__ __forceinline__ T warp_reduce_sum(T v) {
#pragma unroll
  for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1)
    v += __shfl_down_sync(FULL_MASK, v, offset);
  return v;
}

// Sum of K values over the whole block, returned to every thread.
// `shared` holds K * WARP_SIZE values; blockDim.x must be a multiple of 32 and <= 1024 (so at
// most 32 warps: one slot per warp). Two-level tree as in Harris' reduction #6/#7, with the
// intra-warp levels done by shuffles instead of shared memory (no __syncthreads inside a warp).
template <typename T, int K>
__device__ __forceinline__ void block_allreduce_sum(T (&v)[K], T* shared) {
  const int lane = threadIdx.x % WARP_SIZE;
  const int warp = threadIdx.x / WARP_SIZE;
  const int n_warps = blockDim.x / WARP_SIZE;
#pragma unroll
  for (int k = 0; k < K; ++k) v[k] = warp_reduce_sum(v[k]);
  if (lane == 0) {
#pragma unroll
    for (int k = 0; k < K; ++k) shared[k * WARP_SIZE + warp] = v[k];
  }
  __syncthreads();
  if (warp == 0) {
#pragma unroll
    for (int k = 0; k < K; ++k) {
      T t = lane < n_warps ? shared[k * WARP_SIZE + lane] : T(0);
      t = warp_reduce_sum(t);
      if (lane == 0) shared[k * WARP_SIZE] = t;
    }
  }
  __syncthreads();
#pragma unroll
  for (int k = 0; k < K; ++k) v[k] = shared[k * WARP_SIZE];
  __syncthreads();  // the caller may reuse `shared` right away
}

// Thread count for one block per row of n_vec vectors: enough warps to give each thread one
// vector, rounded up to a whole warp, capped at max_threads.
inline int row_block_threads(int64_t n_vec, int max_threads) {
  int64_t t = (n_vec + WARP_SIZE - 1) / WARP_SIZE * WARP_SIZE;
  if (t < WARP_SIZE) t = WARP_SIZE;
  if (t > max_threads) t = max_threads;
  return static_cast<int>(t);
}

inline bool is_aligned(const void* ptr, int bytes) {
  return reinterpret_cast<uintptr_t>(ptr) % static_cast<uintptr_t>(bytes) == 0;
}

}  // namespace cuda
}  // namespace td
