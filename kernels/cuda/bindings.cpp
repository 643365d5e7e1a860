// pybind11 bindings of the CUDA extension: tensor checks, allocation, device guard, current
// stream, dtype dispatch; the kernels themselves are behind the raw-pointer launchers of
// launch.h. Compiled by the host compiler (g++), not nvcc.
//
// Same function names and signatures as the CPU extension (kernels/cpp/bindings.cpp), so one
// autograd Function (kernels/cpp/common.py) serves both. Python wrappers (kernels/cuda/
// __init__.py) check inputs first with ValueError/TypeError; these TORCH_CHECKs (RuntimeError)
// guard callers of the raw module.
#include <torch/extension.h>

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <climits>
#include <optional>
#include <tuple>

#include "launch.h"

namespace {

// at:: element type -> the CUDA type the kernels use. at::Half / at::BFloat16 and __half /
// __nv_bfloat16 are each one 16-bit word, so the data pointers are reinterpret_cast.
template <typename T>
struct CudaType {
  using type = T;
};
template <>
struct CudaType<at::Half> {
  using type = __half;
};
template <>
struct CudaType<at::BFloat16> {
  using type = __nv_bfloat16;
};
static_assert(sizeof(at::Half) == sizeof(__half) && sizeof(at::BFloat16) == sizeof(__nv_bfloat16),
              "half types must share a layout for the pointer casts");

template <typename T>
const typename CudaType<T>::type* cptr(const at::Tensor& t) {
  return reinterpret_cast<const typename CudaType<T>::type*>(t.data_ptr<T>());
}
template <typename T>
typename CudaType<T>::type* mptr(const at::Tensor& t) {
  return reinterpret_cast<typename CudaType<T>::type*>(t.data_ptr<T>());
}
template <typename T>
const typename CudaType<T>::type* cptr_or_null(const std::optional<at::Tensor>& t) {
  return t.has_value() ? cptr<T>(*t) : nullptr;
}
template <typename T>
typename CudaType<T>::type* mptr_or_null(const std::optional<at::Tensor>& t) {
  return t.has_value() ? mptr<T>(*t) : nullptr;
}

// Multiprocessor count of t's device, cached per device (grids are sized on every call).
// Racing first queries store the same value, so the unsynchronised cache is benign.
int sm_count(const at::Tensor& t) {
  static int cache[64] = {0};
  const int device = t.get_device();
  if (device >= 0 && device < 64 && cache[device] != 0) return cache[device];
  int n = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
  if (device >= 0 && device < 64) cache[device] = n;
  return n;
}

void check_input(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor, got device ", t.device(),
              "; use kernels.cpp for CPU tensors");
  const auto st = t.scalar_type();
  TORCH_CHECK(st == at::kFloat || st == at::kHalf || st == at::kBFloat16 || st == at::kDouble,
              name, " must be float32, float16, bfloat16 or float64, got ", st);
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous; call .contiguous() first");
}

void check_param(const std::optional<at::Tensor>& t, const char* name, const at::Tensor& x) {
  if (!t.has_value()) return;
  check_input(*t, name);
  TORCH_CHECK(t->device() == x.device(), name, " is on ", t->device(), " but x is on ",
              x.device());
  TORCH_CHECK(t->dim() == 1 && t->size(0) == x.size(-1), name, " must have shape (",
              x.size(-1), ",) = x.shape[-1:], got ", t->sizes());
  TORCH_CHECK(t->scalar_type() == x.scalar_type(), name, " dtype ", t->scalar_type(),
              " differs from x dtype ", x.scalar_type());
}

void check_rows(const at::Tensor& x) {
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) >= 1, "x must have at least 1 dim and x.shape[-1] >= 1",
              ", got shape ", x.sizes());
  TORCH_CHECK(x.numel() / x.size(-1) <= INT_MAX,
              "at most 2^31 - 1 rows (one block per row, gridDim.x limit)");
}

void check_p_seed(double p, int64_t seed) {
  TORCH_CHECK(p >= 0.0 && p <= 1.0, "dropout probability p must be in [0, 1], got ", p);
  TORCH_CHECK(seed >= 0, "seed must be a non-negative int64, got ", seed);
}

// mean/rstd dtype: float32, or float64 for float64 input (the kernels' acc_t).
at::ScalarType stat_type(const at::Tensor& x) {
  return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> layer_norm_dropout_forward(
    const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, double p, int64_t seed, double eps) {
  check_input(x, "x");
  check_rows(x);
  check_param(weight, "weight", x);
  check_param(bias, "bias", x);
  check_p_seed(p, seed);
  TORCH_CHECK(eps >= 0.0, "eps must be >= 0, got ", eps);
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t N = x.size(-1);
  const int64_t M = x.numel() / N;
  auto out = at::empty_like(x);
  auto stat_shape = x.sizes().vec();
  stat_shape.pop_back();
  auto mean = at::empty(stat_shape, x.options().dtype(stat_type(x)));
  auto rstd = at::empty(stat_shape, x.options().dtype(stat_type(x)));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "layer_norm_dropout_forward", [&] {
    using acc_t = td::cuda::acc_type<typename CudaType<scalar_t>::type>;
    C10_CUDA_CHECK(td::cuda::launch_layer_norm_dropout_forward(
        cptr<scalar_t>(x), cptr_or_null<scalar_t>(weight), cptr_or_null<scalar_t>(bias),
        mptr<scalar_t>(out), mean.data_ptr<acc_t>(), rstd.data_ptr<acc_t>(), M, N, eps, p,
        static_cast<uint64_t>(seed), stream));
  });
  return {out, mean, rstd};
}

std::tuple<at::Tensor, std::optional<at::Tensor>, std::optional<at::Tensor>>
layer_norm_dropout_backward(const at::Tensor& grad_out, const at::Tensor& x,
                            const std::optional<at::Tensor>& weight, const at::Tensor& mean,
                            const at::Tensor& rstd, double p, int64_t seed, bool need_weight_grad,
                            bool need_bias_grad) {
  check_input(x, "x");
  check_input(grad_out, "grad_out");
  check_rows(x);
  TORCH_CHECK(grad_out.sizes() == x.sizes() && grad_out.scalar_type() == x.scalar_type() &&
                  grad_out.device() == x.device(),
              "grad_out must match x in shape, dtype and device");
  check_param(weight, "weight", x);
  check_p_seed(p, seed);
  const int64_t N = x.size(-1);
  const int64_t M = x.numel() / N;
  for (const at::Tensor* s : {&mean, &rstd}) {
    TORCH_CHECK(s->is_cuda() && s->device() == x.device() && s->is_contiguous() &&
                    s->scalar_type() == stat_type(x) && s->numel() == M,
                "mean and rstd must be contiguous ", stat_type(x), " tensors with ", M,
                " elements on ", x.device(), " (as the forward returned them)");
  }
  const c10::cuda::CUDAGuard guard(x.device());
  auto grad_x = at::empty_like(x);
  std::optional<at::Tensor> grad_w;
  std::optional<at::Tensor> grad_b;
  if (need_weight_grad) grad_w = M == 0 ? at::zeros({N}, x.options()) : at::empty({N}, x.options());
  if (need_bias_grad) grad_b = M == 0 ? at::zeros({N}, x.options()) : at::empty({N}, x.options());
  const int sms = sm_count(x);
  at::Tensor workspace;
  if ((grad_w || grad_b) && M > 0)
    workspace = at::empty({td::cuda::layer_norm_dropout_backward_workspace(M, N, sms)},
                          x.options().dtype(stat_type(x)));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(),
                                  "layer_norm_dropout_backward", [&] {
    using acc_t = td::cuda::acc_type<typename CudaType<scalar_t>::type>;
    C10_CUDA_CHECK(td::cuda::launch_layer_norm_dropout_backward(
        cptr<scalar_t>(grad_out), cptr<scalar_t>(x), cptr_or_null<scalar_t>(weight),
        mean.data_ptr<acc_t>(), rstd.data_ptr<acc_t>(), mptr<scalar_t>(grad_x),
        mptr_or_null<scalar_t>(grad_w), mptr_or_null<scalar_t>(grad_b),
        workspace.defined() ? workspace.data_ptr<acc_t>() : nullptr, M, N, p,
        static_cast<uint64_t>(seed), sms, stream));
  });
  return {grad_x, grad_w, grad_b};
}

at::Tensor philox_uniform(const at::Tensor& offsets, int64_t seed) {
  TORCH_CHECK(offsets.is_cuda() && offsets.scalar_type() == at::kLong && offsets.is_contiguous(),
              "offsets must be a contiguous int64 CUDA tensor");
  TORCH_CHECK(seed >= 0, "seed must be a non-negative int64, got ", seed);
  const c10::cuda::CUDAGuard guard(offsets.device());
  auto out = at::empty(offsets.sizes(), offsets.options().dtype(at::kFloat));
  C10_CUDA_CHECK(td::cuda::launch_philox_uniform(
      offsets.data_ptr<int64_t>(), out.data_ptr<float>(), offsets.numel(),
      static_cast<uint64_t>(seed), sm_count(offsets), c10::cuda::getCurrentCUDAStream()));
  return out;
}

at::Tensor sum_all(const at::Tensor& x) {
  check_input(x, "x");
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t n = x.numel();
  if (n == 0) return at::zeros({}, x.options());
  auto out = at::empty({}, x.options());
  const int sms = sm_count(x);
  const int64_t ws = td::cuda::sum_all_workspace(n, sms);
  at::Tensor workspace;
  if (ws > 0) workspace = at::empty({ws}, x.options().dtype(stat_type(x)));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "sum_all", [&] {
    using acc_t = td::cuda::acc_type<typename CudaType<scalar_t>::type>;
    C10_CUDA_CHECK(td::cuda::launch_sum_all(
        cptr<scalar_t>(x), mptr<scalar_t>(out),
        workspace.defined() ? workspace.data_ptr<acc_t>() : nullptr, n, sms, stream));
  });
  return out;
}

at::Tensor sum_lastdim(const at::Tensor& x) {
  check_input(x, "x");
  TORCH_CHECK(x.dim() >= 1, "x must have at least 1 dim for a sum over the last dim");
  const c10::cuda::CUDAGuard guard(x.device());
  const int64_t N = x.size(-1);
  auto out_shape = x.sizes().vec();
  out_shape.pop_back();
  if (N == 0) return at::zeros(out_shape, x.options());
  auto out = at::empty(out_shape, x.options());
  const int64_t M = out.numel();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "sum_lastdim", [&] {
    C10_CUDA_CHECK(td::cuda::launch_sum_lastdim(cptr<scalar_t>(x), mptr<scalar_t>(out), M, N,
                                                sm_count(x), stream));
  });
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "torchdrills CUDA kernels: fused LayerNorm + Dropout, sum reductions, Philox.";
  m.def("layer_norm_dropout_forward", &layer_norm_dropout_forward, py::arg("x"),
        py::arg("weight"), py::arg("bias"), py::arg("p"), py::arg("seed"), py::arg("eps"),
        "(out, mean, rstd) of LayerNorm over the last dim followed by Philox dropout.");
  m.def("layer_norm_dropout_backward", &layer_norm_dropout_backward, py::arg("grad_out"),
        py::arg("x"), py::arg("weight"), py::arg("mean"), py::arg("rstd"), py::arg("p"),
        py::arg("seed"), py::arg("need_weight_grad"), py::arg("need_bias_grad"),
        "(grad_x, grad_weight or None, grad_bias or None), mask regenerated from seed.");
  m.def("sum_all", &sum_all, py::arg("x"), "Sum of all elements, 0-dim tensor of x's dtype.");
  m.def("sum_lastdim", &sum_lastdim, py::arg("x"), "Sum over the last dim.");
  m.def("philox_uniform", &philox_uniform, py::arg("offsets"), py::arg("seed"),
        "tl.rand(seed, offsets) as float32, from the shared Philox header.");
}
