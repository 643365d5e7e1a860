// Host launchers of the CUDA kernels: raw device pointers in, cudaError_t out.
//
// Defined in layernorm_dropout.cu and reduction.cu (nvcc), called from bindings.cpp (the host
// compiler), which owns everything torch: checks, allocation, the current stream, the device
// guard, dtype dispatch. The .cu files include no torch header, so nvcc compiles each in a few
// seconds instead of the ~30-60 s that ATen's headers cost it (nvcc parses a .cu twice: host
// and device pass), and `compile_check` in CI stays quick.
//
// Element types: float, double, __half, __nv_bfloat16 (layout-identical to at::Half and
// at::BFloat16: one uint16 each, so bindings.cpp reinterpret_casts the data pointers).
// Accumulation type acc_t: double for double, float otherwise (as PyTorch's at::opmath_type).
//
// Shape legend: M rows, N = last-dim length; (M, N) buffers are row-major and contiguous.
// Every launcher launches on `stream` and returns cudaGetLastError() (launch errors only; the
// kernels run asynchronously). Nothing is launched for M == 0 or n == 0.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace td {
namespace cuda {

template <typename T>
struct AccType {
  using type = float;
};
template <>
struct AccType<double> {
  using type = double;
};
template <typename T>
using acc_type = typename AccType<T>::type;

// ---- LayerNorm + Dropout (layernorm_dropout.cu) --------------------------------------------

// out (M, N) = dropout(layer_norm(x)); mean, rstd (M,) acc_t. weight/bias may be null.
// Kept iff tl.rand(seed, i * N + j) > float(p); kept values scaled by 1 / (1 - p).
template <typename T>
cudaError_t launch_layer_norm_dropout_forward(const T* x, const T* weight, const T* bias, T* out,
                                              acc_type<T>* mean, acc_type<T>* rstd, int64_t M,
                                              int64_t N, double eps, double p, uint64_t seed,
                                              cudaStream_t stream);

// Elements of acc_t scratch the backward needs for dgamma/dbeta partials (0 if neither is
// wanted). sm_count: the device's multiprocessor count (sizes the grid).
int64_t layer_norm_dropout_backward_workspace(int64_t M, int64_t N, int sm_count);

// grad_x (M, N); grad_weight, grad_bias (N,) or null (then not computed); weight may be null.
// workspace: layer_norm_dropout_backward_workspace(M, N, sm_count) acc_t elements (may be null
// when both grad_weight and grad_bias are null).
template <typename T>
cudaError_t launch_layer_norm_dropout_backward(const T* grad_out, const T* x, const T* weight,
                                               const acc_type<T>* mean, const acc_type<T>* rstd,
                                               T* grad_x, T* grad_weight, T* grad_bias,
                                               acc_type<T>* workspace, int64_t M, int64_t N,
                                               double p, uint64_t seed, int sm_count,
                                               cudaStream_t stream);

// out[k] = tl.rand(seed, offsets[k]) for k < n.
cudaError_t launch_philox_uniform(const int64_t* offsets, float* out, int64_t n, uint64_t seed,
                                  int sm_count, cudaStream_t stream);

// ---- Sums (reduction.cu) --------------------------------------------------------------------

// Elements of acc_t scratch sum_all needs for n inputs (0: a single block does it all).
int64_t sum_all_workspace(int64_t n, int sm_count);

// *out = sum of x[0:n] (out: one element of device memory).
template <typename T>
cudaError_t launch_sum_all(const T* x, T* out, acc_type<T>* workspace, int64_t n, int sm_count,
                           cudaStream_t stream);

// out[i] = sum_j x[i * N + j], i < M, N >= 1.
template <typename T>
cudaError_t launch_sum_lastdim(const T* x, T* out, int64_t M, int64_t N, int sm_count,
                               cudaStream_t stream);

}  // namespace cuda
}  // namespace td
