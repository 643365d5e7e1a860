// pybind11 bindings of the CPU extension: tensor checks, allocation, dispatch on dtype.
//
// Python wrappers (kernels/cpp/__init__.py) check inputs first and raise ValueError/TypeError;
// the TORCH_CHECKs here are the second line of defence for callers that use the raw module,
// and raise RuntimeError with the same wording. Same function names and signatures as the
// CUDA extension (kernels/cuda/bindings.cpp), so one autograd Function serves both.
#include <torch/extension.h>

#include <optional>
#include <tuple>

#include "ops.h"

namespace {

void check_float_cpu(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor, got device ", t.device(),
              "; use kernels.cuda for CUDA tensors");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, name,
              " must be float32 or float64, got ", t.scalar_type());
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous; call .contiguous() first");
}

void check_param(const std::optional<at::Tensor>& t, const char* name, const at::Tensor& x) {
  if (!t.has_value()) return;
  check_float_cpu(*t, name);
  TORCH_CHECK(t->dim() == 1 && t->size(0) == x.size(-1), name, " must have shape (",
              x.size(-1), ",) = x.shape[-1:], got ", t->sizes());
  TORCH_CHECK(t->scalar_type() == x.scalar_type(), name, " dtype ", t->scalar_type(),
              " differs from x dtype ", x.scalar_type());
}

void check_p_seed(double p, int64_t seed) {
  TORCH_CHECK(p >= 0.0 && p <= 1.0, "dropout probability p must be in [0, 1], got ", p);
  TORCH_CHECK(seed >= 0, "seed must be a non-negative int64, got ", seed);
}

template <typename T>
const T* data_or_null(const std::optional<at::Tensor>& t) {
  return t.has_value() ? t->data_ptr<T>() : nullptr;
}

template <typename T>
T* mutable_data_or_null(std::optional<at::Tensor>& t) {
  return t.has_value() ? t->data_ptr<T>() : nullptr;
}

// (out, mean, rstd): out like x; mean, rstd of shape x.shape[:-1], dtype of x.
std::tuple<at::Tensor, at::Tensor, at::Tensor> layer_norm_dropout_forward(
    const at::Tensor& x, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, double p, int64_t seed, double eps) {
  check_float_cpu(x, "x");
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) >= 1, "x must have at least 1 dim and x.shape[-1] >= 1",
              ", got shape ", x.sizes());
  check_param(weight, "weight", x);
  check_param(bias, "bias", x);
  check_p_seed(p, seed);
  TORCH_CHECK(eps >= 0.0, "eps must be >= 0, got ", eps);
  const int64_t N = x.size(-1);
  const int64_t M = x.numel() / N;
  auto out = at::empty_like(x);
  auto stat_shape = x.sizes().vec();
  stat_shape.pop_back();
  auto mean = at::empty(stat_shape, x.options());
  auto rstd = at::empty(stat_shape, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "layer_norm_dropout_forward", [&] {
    td::cpu::layer_norm_dropout_forward<scalar_t>(
        x.data_ptr<scalar_t>(), data_or_null<scalar_t>(weight), data_or_null<scalar_t>(bias),
        out.data_ptr<scalar_t>(), mean.data_ptr<scalar_t>(), rstd.data_ptr<scalar_t>(), M, N,
        eps, p, static_cast<uint64_t>(seed));
  });
  return {out, mean, rstd};
}

// (grad_x, grad_weight or None, grad_bias or None).
std::tuple<at::Tensor, std::optional<at::Tensor>, std::optional<at::Tensor>>
layer_norm_dropout_backward(const at::Tensor& grad_out, const at::Tensor& x,
                            const std::optional<at::Tensor>& weight, const at::Tensor& mean,
                            const at::Tensor& rstd, double p, int64_t seed, bool need_weight_grad,
                            bool need_bias_grad) {
  check_float_cpu(x, "x");
  check_float_cpu(grad_out, "grad_out");
  check_float_cpu(mean, "mean");
  check_float_cpu(rstd, "rstd");
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) >= 1, "x must have at least 1 dim and x.shape[-1] >= 1");
  TORCH_CHECK(grad_out.sizes() == x.sizes(), "grad_out shape ", grad_out.sizes(),
              " differs from x shape ", x.sizes());
  TORCH_CHECK(grad_out.scalar_type() == x.scalar_type() && mean.scalar_type() == x.scalar_type() &&
                  rstd.scalar_type() == x.scalar_type(),
              "grad_out, mean and rstd must have the dtype of x (", x.scalar_type(), ")");
  check_param(weight, "weight", x);
  check_p_seed(p, seed);
  const int64_t N = x.size(-1);
  const int64_t M = x.numel() / N;
  TORCH_CHECK(mean.numel() == M && rstd.numel() == M, "mean and rstd must have ", M,
              " elements (one per row of x)");
  auto grad_x = at::empty_like(x);
  std::optional<at::Tensor> grad_w;
  std::optional<at::Tensor> grad_b;
  if (need_weight_grad) grad_w = at::empty({N}, x.options());
  if (need_bias_grad) grad_b = at::empty({N}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "layer_norm_dropout_backward", [&] {
    td::cpu::layer_norm_dropout_backward<scalar_t>(
        grad_out.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), data_or_null<scalar_t>(weight),
        mean.data_ptr<scalar_t>(), rstd.data_ptr<scalar_t>(), grad_x.data_ptr<scalar_t>(),
        mutable_data_or_null<scalar_t>(grad_w), mutable_data_or_null<scalar_t>(grad_b), M, N,
        p, static_cast<uint64_t>(seed));
  });
  return {grad_x, grad_w, grad_b};
}

at::Tensor sum_all(const at::Tensor& x) {
  check_float_cpu(x, "x");
  auto out = at::empty({}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sum_all", [&] {
    out.fill_(td::cpu::sum_all<scalar_t>(x.data_ptr<scalar_t>(), x.numel()));
  });
  return out;
}

at::Tensor sum_lastdim(const at::Tensor& x) {
  check_float_cpu(x, "x");
  TORCH_CHECK(x.dim() >= 1, "x must have at least 1 dim for a sum over the last dim");
  const int64_t N = x.size(-1);
  auto out_shape = x.sizes().vec();
  out_shape.pop_back();
  auto out = at::empty(out_shape, x.options());
  const int64_t M = out.numel();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "sum_lastdim", [&] {
    td::cpu::sum_lastdim<scalar_t>(x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), M, N);
  });
  return out;
}

at::Tensor philox_uniform(const at::Tensor& offsets, int64_t seed) {
  TORCH_CHECK(offsets.device().is_cpu() && offsets.scalar_type() == at::kLong &&
                  offsets.is_contiguous(),
              "offsets must be a contiguous int64 CPU tensor");
  TORCH_CHECK(seed >= 0, "seed must be a non-negative int64, got ", seed);
  auto out = at::empty(offsets.sizes(), offsets.options().dtype(at::kFloat));
  td::cpu::philox_uniform(offsets.data_ptr<int64_t>(), out.data_ptr<float>(), offsets.numel(),
                          static_cast<uint64_t>(seed));
  return out;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "torchdrills CPU kernels: fused LayerNorm + Dropout, sum reductions, Philox.";
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
