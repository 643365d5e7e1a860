// Sum reductions on the GPU: whole tensor (two-stage tree) and last dim (one warp per row).
//
// Source: Mark Harris, "Optimizing Parallel Reduction in CUDA" (NVIDIA, 2007). The whole-tensor
// sum is his kernel #7 with today's tools: each thread first sums many elements in a
// grid-stride loop ("algorithm cascading": O(n / threads) sequential adds per thread, which is
// what makes the kernel bandwidth-bound instead of latency-bound), with 16-byte vector loads;
// then the block reduces with warp shuffles (__shfl_down_sync, no shared memory or
// __syncthreads inside a warp) and one shared-memory slot per warp; block partials go to a
// buffer and a second launch of the same kernel with one block reduces them. Two stages instead
// of atomicAdd on the result: the order of additions is fixed, so the result is bitwise
// reproducible run to run (floating-point atomics are not).
//
// Accumulation: float for float32/float16/bfloat16 input, double for float64 (acc_type in
// common.cuh). Each thread adds ~n / (grid * block) elements sequentially, then a tree adds the
// thread sums, so the error grows like (n / threads + log2(threads)) * eps_acc: for 1e8 float32
// elements over 132 * 4 * 512 threads, ~370 sequential adds per thread.
//
// Bytes moved per call: n * sizeof(T) read + the result (sum_all: plus grid * sizeof(acc_t)
// written and read back for the partials, < 4 KiB); sum_lastdim: M * N * sizeof(T) read and
// M * sizeof(T) written. GB/s = bytes / seconds; H200 HBM3e peaks at 4.8 TB/s.
// No torch header here (see launch.h): bindings.cpp owns tensors, streams and dtype dispatch.
#include "launch.h"

#include <algorithm>

#include "common.cuh"

namespace td {
namespace cuda {
namespace {

// 512 threads = 16 warps per block; 4 resident blocks fill an sm_90 SM (2048 threads).
constexpr int SUM_THREADS = 512;
constexpr int SUM_BLOCKS_PER_SM = 4;
// sum_lastdim: 8 warps per block, one row per warp at a time.
constexpr int ROWS_THREADS = 256;

// grid-stride partial sums: out[blockIdx.x] = sum of this block's share of x[0:n].
// in_t -> out_t through acc_t; VEC elements per load when x is 16-byte aligned (VEC = 1
// otherwise). The n % VEC tail elements are added by the first threads of the grid.
template <typename in_t, typename out_t, typename acc_t, int VEC>
__global__ void __launch_bounds__(SUM_THREADS)
    sum_partials_kernel(const in_t* __restrict__ x, out_t* __restrict__ out, int64_t n) {
  using Vec = AlignedVector<in_t, VEC>;
  __shared__ acc_t s_warp[WARP_SIZE];
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t n_vec = n / VEC;
  const Vec* __restrict__ x_vec = reinterpret_cast<const Vec*>(x);
  acc_t acc = acc_t(0);
  for (int64_t i = tid; i < n_vec; i += stride) {
    const Vec v = x_vec[i];
#pragma unroll
    for (int k = 0; k < VEC; ++k) acc += to_acc(v.val[k]);
  }
  for (int64_t i = n_vec * VEC + tid; i < n; i += stride) acc += to_acc(x[i]);
  acc_t v[1] = {acc};
  block_allreduce_sum<acc_t, 1>(v, s_warp);
  if (threadIdx.x == 0) out[blockIdx.x] = from_acc<out_t>(v[0]);
}

// out[row] = sum_j x[row * N + j]: one warp per row, warps striding over rows. Lane l reads
// vectors l, l + 32, ...: consecutive lanes read consecutive 16-byte vectors (512 bytes per warp
// access, fully coalesced). A warp per row suits rows up to a few thousand elements; longer rows
// with few of them would want a block per row (not implemented).
template <typename in_t, typename acc_t, int VEC>
__global__ void __launch_bounds__(ROWS_THREADS)
    sum_lastdim_kernel(const in_t* __restrict__ x, in_t* __restrict__ out, int64_t M,
                       int64_t N) {
  using Vec = AlignedVector<in_t, VEC>;
  const int lane = threadIdx.x % WARP_SIZE;
  const int64_t warps_per_block = blockDim.x / WARP_SIZE;
  const int64_t warp = static_cast<int64_t>(blockIdx.x) * warps_per_block + threadIdx.x / WARP_SIZE;
  const int64_t warp_stride = static_cast<int64_t>(gridDim.x) * warps_per_block;
  const int64_t n_vec = N / VEC;
  for (int64_t row = warp; row < M; row += warp_stride) {  // warp-uniform loop: no divergence
    const Vec* __restrict__ row_vec = reinterpret_cast<const Vec*>(x + row * N);
    acc_t acc = acc_t(0);
    for (int64_t i = lane; i < n_vec; i += WARP_SIZE) {
      const Vec v = row_vec[i];
#pragma unroll
      for (int k = 0; k < VEC; ++k) acc += to_acc(v.val[k]);
    }
    acc = warp_reduce_sum(acc);
    if (lane == 0) out[row] = from_acc<in_t>(acc);
  }
}

// Stage-1 blocks for n elements: enough to fill every SM (4 blocks of 512 threads = 2048
// resident threads per sm_90 SM), and no more, since extra blocks only add partials. Sized at
// 4 elements per thread whatever the type: only the block count depends on it, and
// sum_all_workspace uses the same function, so launch and workspace always agree.
int64_t sum_all_blocks(int64_t n, int sm_count) {
  const int64_t per_block = static_cast<int64_t>(SUM_THREADS) * MAX_VEC_BYTES / 4;
  const int64_t max_blocks = static_cast<int64_t>(SUM_BLOCKS_PER_SM) * sm_count;
  return std::max<int64_t>(1, std::min<int64_t>((n + per_block - 1) / per_block, max_blocks));
}

}  // namespace

int64_t sum_all_workspace(int64_t n, int sm_count) {
  const int64_t blocks = sum_all_blocks(n, sm_count);
  return blocks == 1 ? 0 : blocks;
}

template <typename T>
cudaError_t launch_sum_all(const T* x, T* out, acc_type<T>* workspace, int64_t n, int sm_count,
                           cudaStream_t stream) {
  using acc_t = acc_type<T>;
  if (n == 0) return cudaSuccess;
  constexpr int V = max_vec<T>();
  const bool vec = is_aligned(x, MAX_VEC_BYTES);
  const int64_t blocks = sum_all_blocks(n, sm_count);
  if (blocks == 1) {  // small input: one block writes the result directly
    if (vec)
      sum_partials_kernel<T, T, acc_t, V><<<1, SUM_THREADS, 0, stream>>>(x, out, n);
    else
      sum_partials_kernel<T, T, acc_t, 1><<<1, SUM_THREADS, 0, stream>>>(x, out, n);
    return cudaGetLastError();
  }
  const unsigned grid = static_cast<unsigned>(blocks);
  if (vec)
    sum_partials_kernel<T, acc_t, acc_t, V><<<grid, SUM_THREADS, 0, stream>>>(x, workspace, n);
  else
    sum_partials_kernel<T, acc_t, acc_t, 1><<<grid, SUM_THREADS, 0, stream>>>(x, workspace, n);
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  // Stage 2: one block over the <= 4 * SMs partials (a few hundred values).
  sum_partials_kernel<acc_t, T, acc_t, 1><<<1, SUM_THREADS, 0, stream>>>(workspace, out, blocks);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_sum_lastdim(const T* x, T* out, int64_t M, int64_t N, int sm_count,
                               cudaStream_t stream) {
  using acc_t = acc_type<T>;
  if (M == 0) return cudaSuccess;
  constexpr int V = max_vec<T>();
  const bool vec = N % V == 0 && is_aligned(x, MAX_VEC_BYTES);
  const int64_t warps_per_block = ROWS_THREADS / WARP_SIZE;
  // 2048 resident threads per sm_90 SM = 8 blocks of 256: stop there, warps stride over rows.
  const unsigned grid = static_cast<unsigned>(
      std::min<int64_t>((M + warps_per_block - 1) / warps_per_block, 8LL * sm_count));
  if (vec)
    sum_lastdim_kernel<T, acc_t, V><<<grid, ROWS_THREADS, 0, stream>>>(x, out, M, N);
  else
    sum_lastdim_kernel<T, acc_t, 1><<<grid, ROWS_THREADS, 0, stream>>>(x, out, M, N);
  return cudaGetLastError();
}

#define TD_INSTANTIATE_SUM(T)                                                                 \
  template cudaError_t launch_sum_all<T>(const T*, T*, acc_type<T>*, int64_t, int,             \
                                         cudaStream_t);                                        \
  template cudaError_t launch_sum_lastdim<T>(const T*, T*, int64_t, int64_t, int, cudaStream_t);

TD_INSTANTIATE_SUM(float)
TD_INSTANTIATE_SUM(double)
TD_INSTANTIATE_SUM(__half)
TD_INSTANTIATE_SUM(__nv_bfloat16)
#undef TD_INSTANTIATE_SUM

}  // namespace cuda
}  // namespace td
