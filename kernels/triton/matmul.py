"""Tiled Triton matmul ``C = A @ B`` (2-D and batched 3-D), fp32 accumulation.

Source: Triton tutorial 03 "Matrix Multiplication" (grouped program ordering, ``% M``
wrap of tail rows, masked K tail), with a batch grid axis and an explicit fp32 precision
switch added.

Shape-suffix legend (kernel variables): ``_m`` / ``_n`` / ``_k`` name a block axis of
BLOCK_M rows, BLOCK_N columns, BLOCK_K reduction steps; ``a_mk`` is a (BLOCK_M, BLOCK_K)
tile of A, ``b_kn`` a (BLOCK_K, BLOCK_N) tile of B, ``acc_mn`` the (BLOCK_M, BLOCK_N)
fp32 accumulator; a ``_ptrs`` suffix marks a tile of addresses.

Why the grouped ordering: consecutive programs take GROUP_M row blocks of the same
column band, so the B band they all read stays in L2 (H200: 50 MB L2, 132 SMs); plain
row-major launch order would stream all of B once per row of tiles.

Work: ``2 * B * M * N * K`` FLOP; at least ``(B*M*K + B*K*N + B*M*N) * itemsize`` bytes
of DRAM traffic (:func:`matmul_flops`, :func:`matmul_bytes`).
"""

from __future__ import annotations

import dataclasses

import torch
import triton
import triton.language as tl

from ._common import INTERPRETER, check_device, check_float, device_guard

__all__ = ["MatmulConfig", "MATMUL_CONFIGS", "matmul", "matmul_flops", "matmul_bytes"]


@dataclasses.dataclass(frozen=True)
class MatmulConfig:
    """One tiling of the matmul kernel (a ``triton.Config``)."""

    block_m: int
    """Rows of C per program (power of two, >= 16 for tl.dot)."""
    block_n: int
    """Columns of C per program (power of two, >= 16)."""
    block_k: int
    """Reduction elements per main-loop step (power of two, >= 16)."""
    group_m: int = 8
    """Row blocks per group of the L2-friendly launch order (>= 1)."""
    num_warps: int = 4
    """Warps per program (Hopper wgmma wants 4 or 8 for 128-row tiles)."""
    num_stages: int = 3
    """Software-pipeline depth: shared-memory buffers of A/B tiles in flight."""

    def __post_init__(self):
        for f in ("block_m", "block_n", "block_k"):
            v = getattr(self, f)
            if v < 16 or v & (v - 1):
                raise ValueError(f"MatmulConfig.{f} must be a power of two >= 16, got {v}")
        if self.group_m < 1 or self.num_warps < 1 or self.num_stages < 1:
            raise ValueError("MatmulConfig.group_m, num_warps, num_stages must be >= 1")

    def to_triton(self) -> triton.Config:
        return triton.Config(
            {"BLOCK_M": self.block_m, "BLOCK_N": self.block_n, "BLOCK_K": self.block_k, "GROUP_M": self.group_m},
            num_warps=self.num_warps,
            num_stages=self.num_stages,
        )

    def smem_bytes(self, itemsize: int) -> int:
        """Shared memory the pipeline buffers take (bytes); H200 allows 227 KiB a block."""
        return self.num_stages * (self.block_m + self.block_n) * self.block_k * itemsize


#: Named presets.  ``tiny`` is the interpreter's fixed tiling (every program costs
#: Python time there, and 32 keeps masked tails in play on small test shapes).  The rest
#: are the autotuning set for Hopper (sm_90): the tutorial's CUDA list plus the deeper
#: 128x256x64 / 256x128x64 8-warp tiles that feed wgmma best for fp16/bf16.
MATMUL_CONFIGS: dict[str, MatmulConfig] = {
    "tiny": MatmulConfig(32, 32, 32, group_m=4, num_warps=4, num_stages=1),
    "h_128x256x64_s3": MatmulConfig(128, 256, 64, 8, num_warps=8, num_stages=3),
    "h_128x256x64_s4": MatmulConfig(128, 256, 64, 8, num_warps=8, num_stages=4),
    "h_256x128x64_s3": MatmulConfig(256, 128, 64, 8, num_warps=8, num_stages=3),
    "h_128x128x64_s4": MatmulConfig(128, 128, 64, 8, num_warps=8, num_stages=4),
    "h_128x128x64_s4w4": MatmulConfig(128, 128, 64, 8, num_warps=4, num_stages=4),
    "h_64x256x32_s4": MatmulConfig(64, 256, 32, 8, num_warps=4, num_stages=4),
    "h_128x128x32_s4": MatmulConfig(128, 128, 32, 8, num_warps=4, num_stages=4),
    "h_128x64x32_s4": MatmulConfig(128, 64, 32, 8, num_warps=4, num_stages=4),
    "h_64x128x32_s4": MatmulConfig(64, 128, 32, 8, num_warps=4, num_stages=4),
    "h_128x32x32_s4": MatmulConfig(128, 32, 32, 8, num_warps=4, num_stages=4),
    "h_64x32x32_s5": MatmulConfig(64, 32, 32, 8, num_warps=2, num_stages=5),
    "h_32x64x32_s5": MatmulConfig(32, 64, 32, 8, num_warps=2, num_stages=5),
}

#: Shared memory per block on sm_90 (227 KiB opt-in); configs over it are pruned
#: before tuning rather than left to fail compilation one by one.
_SMEM_LIMIT = 227 * 1024


def _prune_configs(configs, named_args, **kwargs):
    itemsize = named_args["a_ptr"].element_size()
    kept = [
        c
        for c in configs
        if c.num_stages * (c.kwargs["BLOCK_M"] + c.kwargs["BLOCK_N"]) * c.kwargs["BLOCK_K"] * itemsize <= _SMEM_LIMIT
    ]
    return kept or configs[-1:]


@triton.jit
def _matmul_kernel(
    a_ptr,
    b_ptr,
    c_ptr,
    M,
    N,
    K,
    stride_ab,
    stride_am,
    stride_ak,
    stride_bb,
    stride_bk,
    stride_bn,
    stride_cb,
    stride_cm,
    stride_cn,
    INPUT_PRECISION: tl.constexpr,
    DOT_IN_FP32: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    """One (BLOCK_M, BLOCK_N) tile of C[b] = A[b] @ B[b]; grid = (tiles, batch)."""
    pid = tl.program_id(0)
    pid_b = tl.program_id(1)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    # grouped ordering (tutorial 03): GROUP_M row blocks share one column band
    num_pid_in_group = GROUP_M * num_pid_n
    group_id = pid // num_pid_in_group
    first_pid_m = group_id * GROUP_M
    group_size_m = min(num_pid_m - first_pid_m, GROUP_M)
    pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
    pid_n = (pid % num_pid_in_group) // group_size_m

    # Tail rows/columns wrap (% M, % N) instead of being masked: the loads stay in bounds
    # and unmasked, and the duplicated rows are dropped by the store mask.  With M, N
    # divisible by 16 (Triton specializes on that) the wrap keeps 16-wide contiguity.
    offs_m = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)) % M
    offs_n = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)) % N
    offs_k = tl.arange(0, BLOCK_K)
    # batch offsets in int64: B * stride can pass 2**31 even when one matrix does not
    a_ptrs = a_ptr + pid_b.to(tl.int64) * stride_ab + (offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak)
    b_ptrs = b_ptr + pid_b.to(tl.int64) * stride_bb + (offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn)

    acc_mn = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        k_left = K - k * BLOCK_K
        # K tail: zero-fill so the padding adds nothing to the dot product
        a_mk = tl.load(a_ptrs, mask=offs_k[None, :] < k_left, other=0.0)
        b_kn = tl.load(b_ptrs, mask=offs_k[:, None] < k_left, other=0.0)
        if DOT_IN_FP32:
            # interpreter only: its tl.dot multiplies bfloat16 bit patterns (triton#11584);
            # bf16 x bf16 products are exact in fp32, so this upcast changes no result
            a_mk = a_mk.to(tl.float32)
            b_kn = b_kn.to(tl.float32)
        acc_mn = tl.dot(a_mk, b_kn, acc_mn, input_precision=INPUT_PRECISION)
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk
    c_mn = acc_mn.to(c_ptr.dtype.element_ty)

    rows_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    c_ptrs = c_ptr + pid_b.to(tl.int64) * stride_cb + rows_m[:, None] * stride_cm + cols_n[None, :] * stride_cn
    tl.store(c_ptrs, c_mn, mask=(rows_m[:, None] < M) & (cols_n[None, :] < N))


_matmul_autotuned = triton.autotune(
    configs=[c.to_triton() for name, c in MATMUL_CONFIGS.items() if name != "tiny"],
    key=["M", "N", "K", "INPUT_PRECISION", "DOT_IN_FP32"],
    prune_configs_by={"early_config_prune": _prune_configs},
)(_matmul_kernel)


def matmul_flops(M: int, N: int, K: int, batch: int = 1) -> int:
    """FLOP of ``(batch, M, K) @ (batch, K, N)``: one multiply and one add per MAC."""
    return 2 * batch * M * N * K


def matmul_bytes(M: int, N: int, K: int, itemsize: int, batch: int = 1) -> int:
    """Compulsory DRAM bytes: read A and B once, write C once (a lower bound)."""
    return batch * (M * K + K * N + M * N) * itemsize


def _fits_int32(t: torch.Tensor) -> bool:
    # offsets inside one matrix are int32 in the kernel: the farthest element must fit
    span = sum((s - 1) * abs(st) for s, st in zip(t.shape[-2:], t.stride()[-2:]))
    return span < 2**31


def matmul(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    config: MatmulConfig | str | None = None,
    allow_tf32: bool | None = None,
) -> torch.Tensor:
    """``a @ b`` with the Triton kernel.

    Args:
        a: (M, K) or (B, M, K); float16, bfloat16 or float32; any strides.
        b: (K, N) or (B, K, N) (or (K, N) against a 3-D ``a``: broadcast over the batch),
            same dtype and device as ``a``; any strides.
        config: a :class:`MatmulConfig` or a name in :data:`MATMUL_CONFIGS` to skip
            autotuning.  Default: ``"tiny"`` under the interpreter, autotuning over the
            Hopper set on CUDA (the first call per (M, N, K, dtype) benchmarks them all).
        allow_tf32: fp32 inputs only: use TF32 tensor cores (~1e-3 relative error) rather
            than exact fp32 FMA.  Default follows ``torch.backends.cuda.matmul.allow_tf32``,
            as ``torch.matmul`` does.
    Returns:
        New contiguous tensor (M, N) or (B, M, N) in ``a.dtype``; accumulation is fp32.
    Raises:
        TypeError: non-tensor or unsupported/mismatched dtype.
        ValueError: wrong ranks, inner dims that differ, batch sizes that differ,
            different devices, a CPU tensor without the interpreter, or a matrix whose
            element span passes 2**31 (int32 offsets in the kernel).
    """
    check_float("a", a)
    check_float("b", b)
    if a.dtype != b.dtype:
        raise TypeError(f"a and b must share a dtype, got {a.dtype} and {b.dtype}; cast one first")
    if a.device != b.device:
        raise ValueError(f"a and b must be on one device, got {a.device} and {b.device}")
    check_device("a", a)
    if a.dim() not in (2, 3) or b.dim() not in (2, 3) or (a.dim() == 2 and b.dim() == 3):
        raise ValueError(
            f"matmul takes (M, K) @ (K, N), (B, M, K) @ (B, K, N) or (B, M, K) @ (K, N); "
            f"got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"inner dimensions differ: a is {tuple(a.shape)}, b is {tuple(b.shape)} (need a[-1] == b[-2])")
    if a.dim() == 3 and b.dim() == 3 and a.shape[0] != b.shape[0]:
        raise ValueError(f"batch sizes differ: a is {tuple(a.shape)}, b is {tuple(b.shape)}")
    for name, t in (("a", a), ("b", b)):
        if not _fits_int32(t):
            raise ValueError(f"{name} spans >= 2**31 elements in one matrix; split the product into blocks")
    if a.dim() == 3 and a.shape[0] > 65535:
        raise ValueError(f"batch {a.shape[0]} exceeds the grid's y limit of 65535; split the batch")
    if a.shape[-2] * b.shape[-1] >= 2**31:
        raise ValueError("the output has >= 2**31 elements per matrix; split the product into blocks")

    if config is None and INTERPRETER:
        config = "tiny"
    if isinstance(config, str):
        if config not in MATMUL_CONFIGS:
            raise ValueError(f"unknown matmul config {config!r}; choose from {sorted(MATMUL_CONFIGS)}")
        config = MATMUL_CONFIGS[config]
    if config is not None and not isinstance(config, MatmulConfig):
        raise TypeError(f"config must be a MatmulConfig, a preset name or None, got {type(config).__name__}")
    if allow_tf32 is None:
        allow_tf32 = torch.backends.cuda.matmul.allow_tf32
    precision = "tf32" if (allow_tf32 and a.dtype == torch.float32 and not INTERPRETER) else "ieee"
    dot_in_fp32 = INTERPRETER and a.dtype == torch.bfloat16

    batched = a.dim() == 3
    M, K = a.shape[-2:]
    N = b.shape[-1]
    nb = a.shape[0] if batched else 1
    c = torch.empty((nb, M, N) if batched else (M, N), dtype=a.dtype, device=a.device)
    if c.numel() == 0:
        return c
    if K == 0:
        return c.zero_()

    # strides (batch, row, col); a missing batch axis has stride 0 (broadcast)
    sa = (a.stride(0), a.stride(1), a.stride(2)) if batched else (0, a.stride(0), a.stride(1))
    sb = (b.stride(0), b.stride(1), b.stride(2)) if b.dim() == 3 else (0, b.stride(0), b.stride(1))
    sc = (c.stride(0), c.stride(1), c.stride(2)) if batched else (0, c.stride(0), c.stride(1))
    args = (a, b, c, M, N, K, *sa, *sb, *sc)
    with device_guard(a):
        _launch(args, nb, M, N, precision, dot_in_fp32, config)
    return c


def _launch(args, nb, M, N, precision, dot_in_fp32, config):
    if config is None:
        grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]) * triton.cdiv(N, meta["BLOCK_N"]), nb)  # noqa: E731
        _matmul_autotuned[grid](*args, INPUT_PRECISION=precision, DOT_IN_FP32=dot_in_fp32)
    else:
        grid = (triton.cdiv(M, config.block_m) * triton.cdiv(N, config.block_n), nb)
        _matmul_kernel[grid](
            *args,
            INPUT_PRECISION=precision,
            DOT_IN_FP32=dot_in_fp32,
            BLOCK_M=config.block_m,
            BLOCK_N=config.block_n,
            BLOCK_K=config.block_k,
            GROUP_M=config.group_m,
            num_warps=config.num_warps,
            num_stages=config.num_stages,
        )
