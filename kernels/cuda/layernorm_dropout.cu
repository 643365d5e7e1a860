// Fused LayerNorm + Dropout on the GPU: forward, backward (dx), backward (dgamma, dbeta).
//
// Sources: Apex's fused layer norm (apex/csrc/layer_norm_cuda_kernel.cu: Welford statistics
// per row, then a separate column-reduction kernel for dgamma/dbeta through partial sums) and
// PyTorch's aten/src/ATen/native/cuda/layer_norm_kernel.cu (vectorised row kernel,
// rstd = rsqrt(var + eps), dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with
// g = dy * gamma); Triton tutorials 04 (low-memory dropout: regenerate the mask from a seed
// and the element offset instead of storing it) and 05 (fused layer norm).
//
// Shape legend: M rows (product of the leading dims), N = row length (last dim). x, out,
// grad_out, grad_x are (M, N) row-major; weight, bias, grad_weight, grad_bias are (N,); mean
// and rstd are (M,) in acc_t. Element (i, j) has Philox offset i * N + j (kernels/rng/philox.py).
//
// Bytes moved per call (the minimum; kernels/cpp/common.py::layer_norm_dropout_bytes):
//   forward  2*M*N*sizeof(T) + 2*N*sizeof(T) + 2*M*sizeof(acc_t)   (read x, write out)
//   backward the dx kernel reads grad_out and x and writes grad_x (3*M*N*sizeof(T)); the
//            dgamma/dbeta kernel reads grad_out and x again (another 2*M*N*sizeof(T), mostly
//            from L2 when M*N*sizeof(T) fits its 50 MiB on H100/H200, else from HBM).
// No torch header here (see launch.h): bindings.cpp owns tensors, streams and dtype dispatch.
#include "launch.h"

#include <algorithm>
#include <initializer_list>

#include "common.cuh"
#include "philox.cuh"
#include "welford.cuh"

namespace td {
namespace cuda {
namespace {

// One block per row. 512 threads = 16 warps: enough loads in flight per row for rows of a few
// thousand elements, and 4 such blocks fill an sm_90 SM's 2048 thread slots.
constexpr int ROW_MAX_THREADS = 512;
// dgamma/dbeta tile: 32 columns (one warp reads 32 consecutive elements of a row, a full
// 128-byte line for float32) by 16 rows in flight.
constexpr int GB_TILE_X = 32;
constexpr int GB_TILE_Y = 16;
constexpr int PARTIAL_SUM_THREADS = 256;

// dL/dy for the layer-norm output y: the incoming gradient through the regenerated mask.
template <typename acc_t>
__device__ __forceinline__ acc_t through_dropout(acc_t g, bool dropout, uint64_t seed,
                                                 uint64_t offset, float p, acc_t scale) {
  if (!dropout) return g;
  return philox_keep(seed, offset, p) ? mul_rn(g, scale) : acc_t(0);
}

// grid (M,), block (threads,) with threads a multiple of 32; VEC elements per access, VEC | N
// and all pointers aligned to VEC * sizeof(scalar_t) when VEC > 1 (the launcher checks).
// Pass 1 reads the row for the statistics, pass 2 reads it again (from L1/L2: the row was
// just loaded) to normalise, so HBM sees x once.
template <typename scalar_t, typename acc_t, int VEC>
__global__ void __launch_bounds__(ROW_MAX_THREADS)
    layer_norm_dropout_forward_kernel(const scalar_t* __restrict__ x,
                                      const scalar_t* __restrict__ weight,
                                      const scalar_t* __restrict__ bias,
                                      scalar_t* __restrict__ out, acc_t* __restrict__ mean,
                                      acc_t* __restrict__ rstd, int64_t N, acc_t eps,
                                      bool dropout, float p, acc_t scale, uint64_t seed) {
  using Vec = AlignedVector<scalar_t, VEC>;
  __shared__ Welford<acc_t> s_welford[WARP_SIZE];
  const int64_t row = blockIdx.x;
  const int64_t base = row * N;
  const int64_t n_vec = N / VEC;
  const Vec* __restrict__ x_vec = reinterpret_cast<const Vec*>(x + base);  // (n_vec,)

  Welford<acc_t> st{acc_t(0), acc_t(0), acc_t(0)};
  for (int64_t v = threadIdx.x; v < n_vec; v += blockDim.x) {
    const Vec xv = x_vec[v];
#pragma unroll
    for (int k = 0; k < VEC; ++k) welford_add(st, to_acc(xv.val[k]));
  }
  st = welford_block_allreduce(st, s_welford);
  const acc_t mu = st.mean;
  const acc_t rs = rsqrt_acc(st.m2 / static_cast<acc_t>(N) + eps);  // biased variance
  if (threadIdx.x == 0) {
    mean[row] = mu;
    rstd[row] = rs;
  }

  const Vec* __restrict__ w_vec = reinterpret_cast<const Vec*>(weight);
  const Vec* __restrict__ b_vec = reinterpret_cast<const Vec*>(bias);
  Vec* __restrict__ y_vec = reinterpret_cast<Vec*>(out + base);
  for (int64_t v = threadIdx.x; v < n_vec; v += blockDim.x) {
    const Vec xv = x_vec[v];
    Vec wv{};
    Vec bv{};
    if (weight != nullptr) wv = w_vec[v];  // uniform branch: no divergence
    if (bias != nullptr) bv = b_vec[v];
    Vec yv;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      acc_t y = (to_acc(xv.val[k]) - mu) * rs;
      if (weight != nullptr) y *= to_acc(wv.val[k]);
      if (bias != nullptr) y += to_acc(bv.val[k]);
      if (dropout) {
        const uint64_t offset = static_cast<uint64_t>(base + v * VEC + k);
        y = philox_keep(seed, offset, p) ? y * scale : acc_t(0);
      }
      yv.val[k] = from_acc<scalar_t>(y);
    }
    y_vec[v] = yv;
  }
}

// grid (M,), block as the forward. Pass 1: row sums of g = dy * gamma and g * xhat; pass 2:
// dx. g is formed with mul_rn in both passes so that g - mean(g) is exactly 0 when it should
// be (N == 1: dx == 0 instead of rounding residue times rstd ~ 1/sqrt(eps) = 316). The mask is
// regenerated in both passes (2 Philox calls per element) rather than staged in shared memory,
// so the kernel works for any N without a shared-memory size limit.
template <typename scalar_t, typename acc_t, int VEC>
__global__ void __launch_bounds__(ROW_MAX_THREADS)
    layer_norm_dropout_backward_dx_kernel(const scalar_t* __restrict__ grad_out,
                                          const scalar_t* __restrict__ x,
                                          const scalar_t* __restrict__ weight,
                                          const acc_t* __restrict__ mean,
                                          const acc_t* __restrict__ rstd,
                                          scalar_t* __restrict__ grad_x, int64_t N,
                                          bool dropout, float p, acc_t scale, uint64_t seed) {
  using Vec = AlignedVector<scalar_t, VEC>;
  __shared__ acc_t s_sums[2 * WARP_SIZE];
  const int64_t row = blockIdx.x;
  const int64_t base = row * N;
  const int64_t n_vec = N / VEC;
  const acc_t mu = mean[row];
  const acc_t rs = rstd[row];
  const Vec* __restrict__ go_vec = reinterpret_cast<const Vec*>(grad_out + base);
  const Vec* __restrict__ x_vec = reinterpret_cast<const Vec*>(x + base);
  const Vec* __restrict__ w_vec = reinterpret_cast<const Vec*>(weight);

  acc_t sums[2] = {acc_t(0), acc_t(0)};  // sum(g), sum(g * xhat)
  for (int64_t v = threadIdx.x; v < n_vec; v += blockDim.x) {
    const Vec gv = go_vec[v];
    const Vec xv = x_vec[v];
    Vec wv{};
    if (weight != nullptr) wv = w_vec[v];
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const uint64_t offset = static_cast<uint64_t>(base + v * VEC + k);
      acc_t g = through_dropout(to_acc(gv.val[k]), dropout, seed, offset, p, scale);
      if (weight != nullptr) g = mul_rn(g, to_acc(wv.val[k]));
      const acc_t xhat = (to_acc(xv.val[k]) - mu) * rs;
      sums[0] += g;
      sums[1] += g * xhat;
    }
  }
  block_allreduce_sum<acc_t, 2>(sums, s_sums);
  const acc_t inv_n = acc_t(1) / static_cast<acc_t>(N);
  const acc_t mean_g = sums[0] * inv_n;
  const acc_t mean_gx = sums[1] * inv_n;

  Vec* __restrict__ dx_vec = reinterpret_cast<Vec*>(grad_x + base);
  for (int64_t v = threadIdx.x; v < n_vec; v += blockDim.x) {
    const Vec gv = go_vec[v];
    const Vec xv = x_vec[v];
    Vec wv{};
    if (weight != nullptr) wv = w_vec[v];
    Vec dxv;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      const uint64_t offset = static_cast<uint64_t>(base + v * VEC + k);
      acc_t g = through_dropout(to_acc(gv.val[k]), dropout, seed, offset, p, scale);
      if (weight != nullptr) g = mul_rn(g, to_acc(wv.val[k]));
      const acc_t xhat = (to_acc(xv.val[k]) - mu) * rs;
      dxv.val[k] = from_acc<scalar_t>(rs * (g - mean_g - xhat * mean_gx));
    }
    dx_vec[v] = dxv;
  }
}

// grid (ceil(N / 32), splits), block (32, 16). Block (bx, by) sums dy * xhat and dy over the
// rows by*16 + ty, by*16 + ty + splits*16, ... of its 32 columns and writes one partial row:
// partial (2, splits, N) acc_t, [0] = dgamma partials, [1] = dbeta partials. Splitting M over
// gridDim.y gives the GPU enough blocks when N is small (N = 1024 is only 32 column tiles
// for 132 SMs); the partials are summed in a fixed order by the next kernel (deterministic,
// unlike atomicAdd).
template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(GB_TILE_X* GB_TILE_Y)
    layer_norm_dropout_backward_gamma_beta_kernel(const scalar_t* __restrict__ grad_out,
                                                  const scalar_t* __restrict__ x,
                                                  const acc_t* __restrict__ mean,
                                                  const acc_t* __restrict__ rstd,
                                                  acc_t* __restrict__ partial, int64_t M,
                                                  int64_t N, bool dropout, float p, acc_t scale,
                                                  uint64_t seed) {
  // +1 column of padding: the transposed read s[ty][tx] by a warp of fixed tx would otherwise
  // hit one of the 32 shared-memory banks 32 times (4-byte banks, 32 of them per SM).
  __shared__ acc_t s_dw[GB_TILE_Y][GB_TILE_X + 1];
  __shared__ acc_t s_db[GB_TILE_Y][GB_TILE_X + 1];
  const int64_t col = static_cast<int64_t>(blockIdx.x) * GB_TILE_X + threadIdx.x;
  const int64_t row_stride = static_cast<int64_t>(gridDim.y) * GB_TILE_Y;
  acc_t dw = acc_t(0);
  acc_t db = acc_t(0);
  if (col < N) {
    for (int64_t row = static_cast<int64_t>(blockIdx.y) * GB_TILE_Y + threadIdx.y; row < M;
         row += row_stride) {
      const int64_t idx = row * N + col;
      const acc_t dy = through_dropout(to_acc(grad_out[idx]), dropout, seed,
                                       static_cast<uint64_t>(idx), p, scale);
      const acc_t xhat = (to_acc(x[idx]) - mean[row]) * rstd[row];
      dw += dy * xhat;
      db += dy;
    }
  }
  s_dw[threadIdx.y][threadIdx.x] = dw;
  s_db[threadIdx.y][threadIdx.x] = db;
  __syncthreads();
  if (threadIdx.y == 0 && col < N) {
    for (int r = 1; r < GB_TILE_Y; ++r) {
      dw += s_dw[r][threadIdx.x];
      db += s_db[r][threadIdx.x];
    }
    const int64_t splits = gridDim.y;
    partial[static_cast<int64_t>(blockIdx.y) * N + col] = dw;
    partial[(splits + blockIdx.y) * N + col] = db;
  }
}

// grid (ceil(N / 256),), block (256,): grad_weight[j] = sum_s partial[0, s, j], grad_bias
// likewise from partial[1]; either output may be null. Consecutive threads read consecutive
// columns of one partial row (coalesced).
template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(PARTIAL_SUM_THREADS)
    sum_gamma_beta_partials_kernel(const acc_t* __restrict__ partial, int64_t splits, int64_t N,
                                   scalar_t* __restrict__ grad_weight,
                                   scalar_t* __restrict__ grad_bias) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= N) return;
  acc_t dw = acc_t(0);
  acc_t db = acc_t(0);
  for (int64_t s = 0; s < splits; ++s) {
    dw += partial[s * N + col];
    db += partial[(splits + s) * N + col];
  }
  if (grad_weight != nullptr) grad_weight[col] = from_acc<scalar_t>(dw);
  if (grad_bias != nullptr) grad_bias[col] = from_acc<scalar_t>(db);
}

// Grid-stride loop: out[k] = tl.rand(seed, offsets[k]).
__global__ void philox_uniform_kernel(const int64_t* __restrict__ offsets,
                                      float* __restrict__ out, int64_t n, uint64_t seed) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n;
       k += stride)
    out[k] = td::philox_uniform(seed, static_cast<uint64_t>(offsets[k]));
}

// ---------------------------------------------------------------------------------------------
// Host launchers (declared in launch.h). bindings.cpp has checked shapes, dtypes, contiguity,
// devices and M < 2^31 (gridDim.x limit) before any of these runs.

// Vector width for these pointers: the type's 16-byte width when it divides N and every
// non-null pointer is 16-byte aligned (then every row start is aligned too), else 1.
template <typename T>
int vector_width(int64_t N, std::initializer_list<const void*> ptrs) {
  constexpr int V = max_vec<T>();
  if (N % V != 0) return 1;
  for (const void* ptr : ptrs)
    if (ptr != nullptr && !is_aligned(ptr, MAX_VEC_BYTES)) return 1;
  return V;
}

// 1 / (1 - p) from the double p (float(0.3) = 0.30000001..., a scale built from it would be
// 1.7e-8 off, visible in float64 results); 0 when p == 1, as F.dropout returns zeros.
template <typename acc_t>
acc_t dropout_scale(double p) {
  return p < 1.0 ? static_cast<acc_t>(1.0 / (1.0 - p)) : acc_t(0);
}

// Row splits of the dgamma/dbeta kernel: about 4 blocks of 512 threads per SM in total (2048
// resident threads per SM on sm_90), never more splits than 16-row tiles, nor than gridDim.y's
// limit of 65535.
int64_t gamma_beta_splits(int64_t M, int64_t N, int sm_count) {
  const int64_t tiles_x = (N + GB_TILE_X - 1) / GB_TILE_X;
  const int64_t row_tiles = (M + GB_TILE_Y - 1) / GB_TILE_Y;
  const int64_t want = (4LL * sm_count + tiles_x - 1) / tiles_x;
  return std::max<int64_t>(1, std::min<int64_t>({want, row_tiles, 65535}));
}

}  // namespace

int64_t layer_norm_dropout_backward_workspace(int64_t M, int64_t N, int sm_count) {
  return 2 * gamma_beta_splits(M, N, sm_count) * N;  // (2, splits, N): dgamma and dbeta rows
}

template <typename T>
cudaError_t launch_layer_norm_dropout_forward(const T* x, const T* weight, const T* bias, T* out,
                                              acc_type<T>* mean, acc_type<T>* rstd, int64_t M,
                                              int64_t N, double eps, double p, uint64_t seed,
                                              cudaStream_t stream) {
  using acc_t = acc_type<T>;
  if (M == 0) return cudaSuccess;
  constexpr int V = max_vec<T>();
  const int vec = vector_width<T>(N, {x, weight, bias, out});
  const int threads = row_block_threads(N / vec, ROW_MAX_THREADS);
  const unsigned rows = static_cast<unsigned>(M);  // one block per row
  const acc_t scale = dropout_scale<acc_t>(p);
  const acc_t eps_acc = static_cast<acc_t>(eps);
  const float p32 = static_cast<float>(p);  // the keep test is float32, as in Triton
  const bool dropout = p > 0.0;  // p == 0 keeps all without drawing (kernels/rng/philox.py)
  if (vec == V) {
    layer_norm_dropout_forward_kernel<T, acc_t, V><<<rows, threads, 0, stream>>>(
        x, weight, bias, out, mean, rstd, N, eps_acc, dropout, p32, scale, seed);
  } else {
    layer_norm_dropout_forward_kernel<T, acc_t, 1><<<rows, threads, 0, stream>>>(
        x, weight, bias, out, mean, rstd, N, eps_acc, dropout, p32, scale, seed);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_layer_norm_dropout_backward(const T* grad_out, const T* x, const T* weight,
                                               const acc_type<T>* mean, const acc_type<T>* rstd,
                                               T* grad_x, T* grad_weight, T* grad_bias,
                                               acc_type<T>* workspace, int64_t M, int64_t N,
                                               double p, uint64_t seed, int sm_count,
                                               cudaStream_t stream) {
  using acc_t = acc_type<T>;
  if (M == 0) return cudaSuccess;
  constexpr int V = max_vec<T>();
  const int vec = vector_width<T>(N, {grad_out, x, weight, grad_x});
  const int threads = row_block_threads(N / vec, ROW_MAX_THREADS);
  const unsigned rows = static_cast<unsigned>(M);  // one block per row
  const acc_t scale = dropout_scale<acc_t>(p);
  const float p32 = static_cast<float>(p);
  const bool dropout = p > 0.0;
  if (vec == V) {
    layer_norm_dropout_backward_dx_kernel<T, acc_t, V><<<rows, threads, 0, stream>>>(
        grad_out, x, weight, mean, rstd, grad_x, N, dropout, p32, scale, seed);
  } else {
    layer_norm_dropout_backward_dx_kernel<T, acc_t, 1><<<rows, threads, 0, stream>>>(
        grad_out, x, weight, mean, rstd, grad_x, N, dropout, p32, scale, seed);
  }
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess || (grad_weight == nullptr && grad_bias == nullptr)) return err;

  const int64_t splits = gamma_beta_splits(M, N, sm_count);
  const dim3 grid(static_cast<unsigned>((N + GB_TILE_X - 1) / GB_TILE_X),
                  static_cast<unsigned>(splits));
  const dim3 block(GB_TILE_X, GB_TILE_Y);
  layer_norm_dropout_backward_gamma_beta_kernel<T, acc_t><<<grid, block, 0, stream>>>(
      grad_out, x, mean, rstd, workspace, M, N, dropout, p32, scale, seed);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  const unsigned blocks =
      static_cast<unsigned>((N + PARTIAL_SUM_THREADS - 1) / PARTIAL_SUM_THREADS);
  sum_gamma_beta_partials_kernel<T, acc_t><<<blocks, PARTIAL_SUM_THREADS, 0, stream>>>(
      workspace, splits, N, grad_weight, grad_bias);
  return cudaGetLastError();
}

cudaError_t launch_philox_uniform(const int64_t* offsets, float* out, int64_t n, uint64_t seed,
                                  int sm_count, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  constexpr int threads = 256;
  const unsigned blocks =
      static_cast<unsigned>(std::min<int64_t>((n + threads - 1) / threads, 8LL * sm_count));
  philox_uniform_kernel<<<blocks, threads, 0, stream>>>(offsets, out, n, seed);
  return cudaGetLastError();
}

#define TD_INSTANTIATE_LAYER_NORM(T)                                                          \
  template cudaError_t launch_layer_norm_dropout_forward<T>(                                  \
      const T*, const T*, const T*, T*, acc_type<T>*, acc_type<T>*, int64_t, int64_t, double, \
      double, uint64_t, cudaStream_t);                                                        \
  template cudaError_t launch_layer_norm_dropout_backward<T>(                                 \
      const T*, const T*, const T*, const acc_type<T>*, const acc_type<T>*, T*, T*, T*,       \
      acc_type<T>*, int64_t, int64_t, double, uint64_t, int, cudaStream_t);

TD_INSTANTIATE_LAYER_NORM(float)
TD_INSTANTIATE_LAYER_NORM(double)
TD_INSTANTIATE_LAYER_NORM(__half)
TD_INSTANTIATE_LAYER_NORM(__nv_bfloat16)
#undef TD_INSTANTIATE_LAYER_NORM

}  // namespace cuda
}  // namespace td
