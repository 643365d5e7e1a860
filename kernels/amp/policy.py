"""Automatic mixed precision by hand: an explicit cast policy and a mode that applies it.

``CastPolicy`` lists, per device, which ops autocast runs in the low-precision dtype,
which in float32 and which at the widest input type, following the op lists of the
PyTorch AMP docs (https://pytorch.org/docs/stable/amp.html, "CPU Ops that can autocast to
bfloat16" / "CUDA Ops that can autocast to float16") *as registered in this torch
version* (aten/src/ATen/autocast_mode.cpp and autocast_mode.h of torch 2.13).
``registered_autocast_ops(device)`` reads the live registrations, and the tests assert
that the tables equal them, so a torch upgrade that moves an op shows up as a failure.

Where this torch version differs from the docs pages:
- CPU: softmax, log_softmax, layer_norm, group_norm, exp, log, pow, sum, cumsum are NOT
  autocast ops (unlike CUDA): a float32 input stays float32 and a bfloat16 input stays
  bfloat16. Likewise mv, addmv, dot and addcmul are untouched on CPU.
- CPU also casts linalg_vecdot, _addmm_activation, scaled_dot_product_attention and
  _native_multi_head_attention to bfloat16; composite ops that *decompose* into listed ops
  (einsum, tensordot, inner, linalg.multi_dot/chain_matmul -> mm/bmm) come out in
  bfloat16 too, which no list mentions.
- CUDA: beyond the docs page, float16 also covers einsum, linalg_vecdot and
  scaled_dot_product_attention; float32 also covers rms_norm, logsumexp, huber_loss and
  upsample_*; promote also covers vdot. cross_entropy (listed as float32 in the docs) is
  not registered on CUDA: it decomposes into log_softmax and nll_loss, both float32 ops,
  so the result is float32 all the same (``composites`` below). Likewise ``trace`` on CUDA
  (its kernel calls ``diagonal().sum()``): float32 from a half input, while on CPU it is a
  float32 op by registration. Seen on an H100 (torch 2.11): the first GPU run failed on both.

Cast rules (autocast_mode.h): only *eligible* tensors are cast: floating point, on the
policy's device, and not float64 (doubles are never touched).
- lower_precision_fp: eligible -> lower dtype (bfloat16 on CPU, float16 on CUDA).
- fp32: eligible -> float32.
- fp32_set_opt_dtype (CUDA softmax, sum, ...): if the first argument is eligible and no
  dtype is given, call with dtype=float32 (inputs are not cast).
- fp32_append_dtype (CUDA norm): same effect, dtype=float32.
- promote: eligible -> float32 if any eligible input is float32, else the lower dtype.
- banned (CUDA binary_cross_entropy): RuntimeError.

``ManualAutocast`` applies a policy to calls made through torch / torch.nn.functional /
Tensor methods (a ``TorchFunctionMode``): each call is looked up by name, its tensor
arguments cast by hand, and the op run with torch's own autocast *off*. Scope: it sees
the function the user calls, not what that function does inside, so a Python-level
composite such as nn.MultiheadAttention runs as passthrough (torch.autocast would cast
the linear layers inside). Known C++ composites are listed in ``composites``.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from kernels.amp.scaler import DynamicLossScaler

__all__ = [
    "CastPolicy",
    "CPU_BF16_POLICY",
    "CUDA_FP16_POLICY",
    "ManualAutocast",
    "registered_autocast_ops",
    "policy_for",
    "DynamicLossScaler",
]


def _ops(text: str) -> frozenset[str]:
    return frozenset(text.split())


# --------------------------------------------------------------------------- CPU tables
_CPU_LOWER = _ops("""
    conv1d conv2d conv3d bmm mm linalg_vecdot baddbmm addmm _addmm_activation addbmm linear
    _convolution matmul conv_tbc mkldnn_rnn_layer conv_transpose1d conv_transpose2d
    conv_transpose3d prelu scaled_dot_product_attention _native_multi_head_attention""")
_CPU_FP32 = _ops("""
    avg_pool3d binary_cross_entropy grid_sampler polar prod quantile nanquantile stft cdist
    grid_sampler_2d _grid_sampler_2d_cpu_fallback grid_sampler_3d trace view_as_complex
    cholesky cholesky_inverse cholesky_solve inverse lu_solve orgqr ormqr pinverse max_pool3d
    max_unpool2d max_unpool3d adaptive_avg_pool3d reflection_pad1d reflection_pad2d
    replication_pad1d replication_pad2d replication_pad3d mse_loss cosine_embedding_loss
    nll_loss nll_loss2d hinge_embedding_loss poisson_nll_loss smooth_l1_loss
    cross_entropy_loss l1_loss huber_loss margin_ranking_loss soft_margin_loss
    triplet_margin_loss multi_margin_loss ctc_loss kl_div multilabel_margin_loss
    binary_cross_entropy_with_logits fft_fft fft_ifft fft_fft2 fft_ifft2 fft_fftn fft_ifftn
    fft_rfft fft_irfft fft_rfft2 fft_irfft2 fft_rfftn fft_irfftn fft_hfft fft_ihfft
    linalg_cond linalg_matrix_rank linalg_solve linalg_cholesky linalg_svdvals linalg_eigvals
    linalg_eigvalsh linalg_inv linalg_householder_product linalg_tensorinv linalg_tensorsolve
    fake_quantize_per_tensor_affine geqrf _lu_with_info qr svd triangular_solve
    fractional_max_pool2d fractional_max_pool3d adaptive_max_pool3d
    multilabel_margin_loss_forward linalg_qr linalg_cholesky_ex linalg_svd linalg_eig
    linalg_eigh linalg_lstsq linalg_inv_ex""")
_CPU_PROMOTE = _ops("stack cat index_copy")

# --------------------------------------------------------------------------- CUDA tables
_CUDA_LOWER = _ops("""
    _convolution conv1d conv2d conv3d conv_tbc conv_transpose1d conv_transpose2d
    conv_transpose3d convolution prelu addmm addmv addr matmul einsum mm mv linalg_vecdot
    linear addbmm baddbmm bmm chain_matmul linalg_multi_dot _thnn_fused_lstm_cell
    _thnn_fused_gru_cell lstm_cell gru_cell rnn_tanh_cell rnn_relu_cell
    _scaled_dot_product_flash_attention scaled_dot_product_attention cudnn_convolution
    cudnn_convolution_transpose""")
_CUDA_FP32 = _ops("""
    acos asin cosh erfinv exp expm1 log log10 log2 log1p reciprocal rsqrt sinh tan pow softplus
    layer_norm native_layer_norm rms_norm group_norm frobenius_norm nuclear_norm
    cosine_similarity poisson_nll_loss cosine_embedding_loss nll_loss nll_loss2d
    hinge_embedding_loss kl_div l1_loss smooth_l1_loss huber_loss mse_loss margin_ranking_loss
    multilabel_margin_loss soft_margin_loss triplet_margin_loss multi_margin_loss
    binary_cross_entropy_with_logits dist pdist cdist renorm logsumexp upsample_nearest1d
    _upsample_nearest_exact1d upsample_nearest2d _upsample_nearest_exact2d upsample_nearest3d
    _upsample_nearest_exact3d upsample_linear1d upsample_bilinear2d _upsample_bilinear2d_aa
    upsample_trilinear3d upsample_bicubic2d _upsample_bicubic2d_aa""")
_CUDA_FP32_SET_OPT_DTYPE = _ops("""
    prod softmax log_softmax cumprod cumsum linalg_vector_norm linalg_matrix_norm sum""")
_CUDA_FP32_APPEND_DTYPE = _ops("norm")
_CUDA_PROMOTE = _ops("""
    addcdiv addcmul atan2 bilinear cross dot vdot grid_sampler index_put tensordot scatter_add""")
_CUDA_BANNED = _ops("binary_cross_entropy")

# Python-level names -> the op name used in the tables.
_PY_ALIASES = types.MappingProxyType(
    {
        "__matmul__": "matmul",
        "__rmatmul__": "matmul",
        "concat": "cat",
        "concatenate": "cat",
        "__pow__": "pow",
        "__rpow__": "pow",
        "__rdiv__": "reciprocal",
        "__rtruediv__": "reciprocal",
        "cross_entropy": "cross_entropy_loss",
        "chain_matmul": "linalg_multi_dot",
    }
)

_CATEGORIES = ("lower_precision_fp", "fp32", "fp32_set_opt_dtype", "fp32_append_dtype", "promote", "banned")


@dataclass(frozen=True)
class CastPolicy:
    """Which ops autocast runs in which dtype on one device type.

    device_type: "cpu" or "cuda" (tensors on other devices are never cast).
    lower_dtype: the low-precision dtype (torch.bfloat16 on CPU, torch.float16 on CUDA).
    lower_precision_fp / fp32 / fp32_set_opt_dtype / fp32_append_dtype / promote / banned:
      aten op names (overload suffix dropped) per autocast policy; see the module doc.
    composites: ops not registered with autocast that decompose into registered ones,
      mapped to the category their result follows (checked by tests against autocast).
    strict_composites: composites that first check that their inputs share one dtype
      (tensordot, inner, multi_dot): with mixed inputs they raise under autocast too, so
      the policy leaves such calls uncast and the op raises the same error.
    kernel_composites: composites whose decomposition happens inside the device kernel
      (CUDA's trace): fake tensors run the op's meta function instead and cannot show it,
      so only a real device verifies them.
    """

    device_type: str
    lower_dtype: torch.dtype
    lower_precision_fp: frozenset = frozenset()
    fp32: frozenset = frozenset()
    fp32_set_opt_dtype: frozenset = frozenset()
    fp32_append_dtype: frozenset = frozenset()
    promote: frozenset = frozenset()
    banned: frozenset = frozenset()
    composites: Mapping[str, str] = field(default_factory=dict)
    strict_composites: frozenset = frozenset()
    kernel_composites: frozenset = frozenset()

    def registered_ops(self) -> frozenset[str]:
        """Union of the aten lists (what autocast registers for this device)."""
        return (
            self.lower_precision_fp
            | self.fp32
            | self.fp32_set_opt_dtype
            | self.fp32_append_dtype
            | self.promote
            | self.banned
        )

    def resolve(self, name: str) -> str:
        """Map a Python-level name (``__matmul__``, ``cross_entropy``) to a table name."""
        return _PY_ALIASES.get(name, name)

    def category(self, name: str) -> str:
        """One of lower_precision_fp, fp32, fp32_set_opt_dtype, fp32_append_dtype,
        promote, banned, or 'passthrough' (autocast leaves the op alone)."""
        op = self.resolve(name)
        for cat in _CATEGORIES:
            if op in getattr(self, cat):
                return cat
        return self.composites.get(op, "passthrough")

    def _eligible(self, x: Any) -> bool:
        return (
            isinstance(x, torch.Tensor)
            and x.is_floating_point()
            and x.device.type == self.device_type
            and x.dtype != torch.float64
        )

    def _tensors(self, args: tuple, kwargs: dict):
        for a in list(args) + list(kwargs.values()):
            if isinstance(a, (list, tuple)):
                yield from (t for t in a if isinstance(t, torch.Tensor))
            elif isinstance(a, torch.Tensor):
                yield a

    def compute_dtype(self, name: str, args: tuple = (), kwargs: dict | None = None) -> torch.dtype | None:
        """The dtype autocast casts eligible inputs to (or requests via dtype=) for this
        call; None for passthrough or when nothing is eligible."""
        kwargs = kwargs or {}
        cat = self.category(name)
        if kwargs.get("out") is not None:
            return None  # torch does not autocast a call given out=: it runs in out's dtype
        elig = [t for t in self._tensors(args, kwargs) if self._eligible(t)]
        if cat == "passthrough" or not elig:
            return None
        if self.resolve(name) in self.strict_composites and len({t.dtype for t in elig}) > 1:
            return None
        if cat == "lower_precision_fp":
            return self.lower_dtype
        if cat == "promote":
            widest = self.lower_dtype
            for t in elig:
                if t.dtype == torch.float32:
                    widest = torch.float32
                elif t.dtype != self.lower_dtype:
                    raise RuntimeError(f"Unexpected floating ScalarType {t.dtype} in autocast promote")
            return widest
        if cat in ("fp32_set_opt_dtype", "fp32_append_dtype"):
            first = args[0] if args else None
            return torch.float32 if self._eligible(first) and kwargs.get("dtype") is None else None
        return torch.float32  # fp32 (and banned, which never gets that far)

    def cast_args(self, name: str, args: tuple, kwargs: dict | None = None) -> tuple[tuple, dict]:
        """Return (args, kwargs) as autocast would pass them on; raises RuntimeError for
        a banned op. Lists/tuples of tensors (cat, stack) are cast element-wise."""
        kwargs = dict(kwargs or {})
        cat = self.category(name)
        if cat == "banned":
            raise RuntimeError(
                f"torch.nn.functional.{name} and torch.nn.BCELoss are unsafe to autocast. Use "
                "binary_cross_entropy_with_logits / BCEWithLogitsLoss, which are safe to autocast."
            )
        to = self.compute_dtype(name, args, kwargs)
        if to is None:
            return tuple(args), kwargs
        if cat in ("fp32_set_opt_dtype", "fp32_append_dtype"):
            kwargs["dtype"] = to  # inputs untouched; the op upcasts internally
            return tuple(args), kwargs

        def cast(x):
            if isinstance(x, (list, tuple)):
                return type(x)(cast(t) for t in x)
            return x.to(to) if self._eligible(x) and x.dtype != to else x

        return tuple(cast(a) for a in args), {k: cast(v) for k, v in kwargs.items()}


CPU_BF16_POLICY = CastPolicy(
    "cpu",
    torch.bfloat16,
    _CPU_LOWER,
    _CPU_FP32,
    promote=_CPU_PROMOTE,
    # einsum -> bmm, tensordot/inner -> mm, multi_dot -> mm: bfloat16 through decomposition
    composites=types.MappingProxyType(
        {
            "einsum": "lower_precision_fp",
            "tensordot": "lower_precision_fp",
            "inner": "lower_precision_fp",
            "linalg_multi_dot": "lower_precision_fp",
        }
    ),
    strict_composites=_ops("tensordot inner linalg_multi_dot"),
)

CUDA_FP16_POLICY = CastPolicy(
    "cuda",
    torch.float16,
    _CUDA_LOWER,
    _CUDA_FP32,
    _CUDA_FP32_SET_OPT_DTYPE,
    _CUDA_FP32_APPEND_DTYPE,
    _CUDA_PROMOTE,
    _CUDA_BANNED,
    # log_softmax + nll_loss, softmax, norm / div: all float32 on CUDA; inner -> tensordot; trace's
    # CUDA kernel is diagonal().sum() (aten/src/ATen/native/cuda/ReduceOps, trace_cuda), and that
    # inner sum goes through autocast's fp32_set_opt_dtype: float32 on CUDA, unlike the CPU kernel
    composites=types.MappingProxyType(
        {"cross_entropy_loss": "fp32", "softmin": "fp32", "normalize": "fp32", "inner": "promote", "trace": "fp32"}
    ),
    kernel_composites=_ops("trace"),
)


def policy_for(device_type: str) -> CastPolicy:
    """The default policy of a device type ("cpu" -> bfloat16, "cuda" -> float16)."""
    try:
        return {"cpu": CPU_BF16_POLICY, "cuda": CUDA_FP16_POLICY}[device_type]
    except KeyError:
        raise ValueError(f"no cast policy for device type {device_type!r}; use 'cpu' or 'cuda'") from None


def registered_autocast_ops(device_type: str) -> frozenset[str]:
    """Op names (overload dropped) with a kernel under this torch build's Autocast<device>
    dispatch key; available on any build (CPU wheels register AutocastCUDA kernels too)."""
    key = {"cpu": "AutocastCPU", "cuda": "AutocastCUDA"}.get(device_type)
    if key is None:
        raise ValueError(f"unknown device type {device_type!r}")
    names = set()
    for op in torch._C._dispatch_get_all_op_names():
        if op.startswith("aten::") and torch._C._dispatch_has_kernel_for_dispatch_key(op, key):
            names.add(op[len("aten::") :].split(".")[0])
    return frozenset(names)


class ManualAutocast(TorchFunctionMode):
    """``with ManualAutocast(policy): ...`` casts arguments by ``policy`` instead of
    torch.autocast (which must be off). Like autocast, float32 leaf tensors that require
    grad (weights) are cast to the low dtype once per context and reused."""

    def __init__(self, policy: CastPolicy = CPU_BF16_POLICY):
        super().__init__()
        self.policy = policy
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __enter__(self):
        if torch.is_autocast_enabled(self.policy.device_type):
            raise RuntimeError("ManualAutocast replaces torch.autocast; turn torch.autocast off")
        self._cache.clear()
        return super().__enter__()

    def __exit__(self, *exc):
        self._cache.clear()
        return super().__exit__(*exc)

    def _cached(self, x: Any, to: torch.dtype):
        if (
            isinstance(x, torch.Tensor)
            and to == self.policy.lower_dtype
            and x.dtype == torch.float32
            and x.requires_grad
            and x.is_leaf
            and x._base is None
        ):
            hit = self._cache.get(id(x))
            if hit is None or hit[0] is not x:
                hit = self._cache[id(x)] = (x, x.to(to))  # keep x alive so its id is not reused
            return hit[1]
        return None

    def __torch_function__(self, func, types_, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        cat = self.policy.category(name)
        if cat != "passthrough":
            to = self.policy.compute_dtype(name, args, kwargs)
            if to is not None and cat == "lower_precision_fp":
                args = tuple(c if (c := self._cached(a, to)) is not None else a for a in args)
            args, kwargs = self.policy.cast_args(name, args, kwargs)
        return func(*args, **kwargs)
