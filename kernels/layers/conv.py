"""2-D convolution by hand: a direct tap loop, im2col + matmul (with a hand-written
backward), and a dilated version built from a zero-inserted kernel.

All three compute what ``torch.nn.functional.conv2d`` computes (PyTorch docs,
``torch.nn.Conv2d``: cross-correlation, zero padding, stride, dilation, groups)::

    out[n, o, y, x] = bias[o] + sum_{c in group(o)} sum_{i, j}
        w[o, c, i, j] * xpad[n, g*Cg + c, y*sh + i*dh, x*sw + j*dw]

    Ho = floor((H + 2*ph - dh*(kh - 1) - 1) / sh) + 1     (same for Wo)

Shape legend: N batch, C = Cin input channels, G groups, Cg = C/G channels per group,
O = Cout output channels, Og = O/G, kh/kw kernel, H/W input, Hp/Wp padded input,
Ho/Wo output, L = Ho*Wo output positions, K = kh*kw*Cg the patch length of one group.

* :func:`conv2d_direct`: one strided slice of the padded input per kernel tap (i, j),
  contracted with that tap's weights; kh*kw small GEMMs, gradients by autograd.
* :func:`im2col` / :func:`conv2d_im2col`: patches gathered from a strided view of the
  padded input into (K, L) matrices, a few images at a time (:data:`CHUNK_BYTES`), each
  chunk multiplied by the (Og, K) weights straight into the NCHW output. The backward is
  hand-written (:class:`Conv2dIm2col`): grad_w = grad_out @ cols^T and grad_x =
  col2im(w^T @ grad_out), the scatter-add that undoes the gather.
* :func:`dilate_kernel` / :func:`conv2d_zero_inserted`: dilation d is the same as an
  undilated convolution with a kernel of size d*(k-1)+1 that holds zeros between taps
  (Yu & Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016);
  correct, but it multiplies by the zeros.

Torch's signature, all four functions: ``padding`` may be an int, a pair, ``'valid'`` (no
padding) or ``'same'`` (output size = input size, stride 1 only, as torch); ``'same'`` needs
``dilation*(k-1)`` pixels in all and, when that is odd (an even kernel), puts the extra one on
the right/bottom, as ``F.conv2d`` does (``_convolution_mode`` in ATen's Convolution.cpp pads
``total // 2`` both sides and one more at the end). ``padding_mode`` is ``nn.Conv2d``'s:
``'zeros'`` (default), ``'reflect'`` (mirror without repeating the edge; padding < size),
``'replicate'`` (repeat the edge) or ``'circular'`` (wrap around; padding <= size), built
here by index arithmetic (:func:`pad_index`). An unbatched (C, H, W) input gives (O, Ho, Wo).

Errors: each function raises ValueError/TypeError naming the argument, as torch would
(bad rank, channels not divisible by groups, weight shape, output smaller than 1x1, an
unknown padding string or mode, 'same' with stride > 1, reflect/circular padding too wide).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from harness.contract import impl

IntPair = int | Sequence[int]
Padding = IntPair | str
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _pair(v: IntPair, name: str) -> tuple[int, int]:
    if isinstance(v, str):
        raise TypeError(f"conv2d: {name}={v!r}: only int or (int, int) is supported here, not strings")
    t = (v, v) if isinstance(v, int) else tuple(v)
    if len(t) != 2 or not all(isinstance(a, int) for a in t):
        raise TypeError(f"conv2d: {name} must be an int or a pair of ints, got {v!r}")
    return t  # type: ignore[return-value]


def pad_index(size: int, before: int, after: int, mode: str, device=None) -> torch.Tensor:
    """Source index of every padded position along one dim of length ``size``: int64
    (before + size + after,), so ``x.index_select(dim, pad_index(...))`` pads ``x``.

    ``mode``: ``'reflect'`` (-1 -> 1, size -> size-2: the edge is not repeated),
    ``'replicate'`` (clamped to the edge) or ``'circular'`` (modulo size), as ``F.pad``.
    Raises ValueError when reflect padding is >= size or circular padding > size (torch's limits).
    """
    if mode == "reflect" and max(before, after) >= size:
        raise ValueError(
            f"conv2d: padding_mode='reflect' needs padding < input size, got padding "
            f"({before}, {after}) for a dim of size {size}"
        )
    if mode == "circular" and max(before, after) > size:
        raise ValueError(
            f"conv2d: padding_mode='circular' needs padding <= input size, got padding "
            f"({before}, {after}) for a dim of size {size}"
        )
    i = torch.arange(-before, size + after, device=device)  # padded position -> source position
    if mode == "reflect":
        i = i.abs()  # -1 -> 1
        return torch.where(i >= size, 2 * (size - 1) - i, i)  # size -> size - 2
    if mode == "replicate":
        return i.clamp(0, size - 1)
    return i % size  # circular


def _padding(padding: Padding, kernel: tuple[int, int], stride: IntPair, dilation: IntPair) -> tuple[int, ...]:
    """``padding`` as (top, bottom, left, right) pixels; strings resolved as torch does."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"conv2d: padding={padding!r}: the strings accepted are 'valid' and 'same'")
        if _pair(stride, "stride") != (1, 1):
            raise ValueError(f"conv2d: padding='same' needs stride 1 (as torch), got stride={stride!r}")
        out: list[int] = []
        for k, d in zip(kernel, _pair(dilation, "dilation")):
            total = d * (k - 1)  # the dilated kernel's reach beyond one pixel
            out += [total // 2, total - total // 2]  # the odd pixel goes on the right/bottom, as torch
        return tuple(out)
    ph, pw = _pair(padding, "padding")
    return (ph, ph, pw, pw)


def _as_batched_padded(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: IntPair,
    padding: Padding,
    dilation: IntPair,
    padding_mode: str,
) -> tuple[torch.Tensor, tuple[int, int], bool]:
    """(x as (N, C, H, W), the symmetric zero padding still to apply, whether x was unbatched).

    Padding that is not symmetric zeros ('same' with an even reach, or a non-zeros mode) is
    applied here, so the convolutions below only ever see symmetric zero padding.
    """
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"conv2d: padding_mode={padding_mode!r}: choose one of {PADDING_MODES}")
    if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"conv2d: input must be (N, C, H, W) or unbatched (C, H, W), got shape {got}")
    unbatched = x.dim() == 3
    if unbatched:
        x = x.unsqueeze(0)  # (1, C, H, W)
    if weight.dim() != 4:
        raise ValueError(f"conv2d: weight must be (Cout, Cin/groups, kh, kw), got shape {tuple(weight.shape)}")
    t, b, l, r = _padding(padding, (weight.shape[2], weight.shape[3]), stride, dilation)
    if min(t, b, l, r) < 0:
        raise ValueError(f"conv2d: padding must be >= 0, got padding={padding!r}")
    if padding_mode == "zeros" and t == b and l == r:
        return x, (t, l), unbatched
    if padding_mode == "zeros":
        x = F.pad(x, (l, r, t, b))  # (N, C, H+t+b, W+l+r): zeros, one side wider than the other
    else:
        rows = pad_index(x.shape[2], t, b, padding_mode, x.device)  # (H+t+b,)
        cols = pad_index(x.shape[3], l, r, padding_mode, x.device)  # (W+l+r,)
        x = x.index_select(2, rows).index_select(3, cols)  # (N, C, H+t+b, W+l+r)
    return x, (0, 0), unbatched


def _unbatch(out: torch.Tensor, unbatched: bool) -> torch.Tensor:
    return out.squeeze(0) if unbatched else out  # (1, O, Ho, Wo) -> (O, Ho, Wo)


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of one spatial dim (formula in the module docstring)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv2d_flops(n: int, cin: int, cout: int, hout: int, wout: int, kh: int, kw: int, groups: int = 1) -> int:
    """Multiply-adds counted as 2 FLOPs: 2*N*Cout*Ho*Wo*(Cin/groups)*kh*kw (bias not counted)."""
    return 2 * n * cout * hout * wout * (cin // groups) * kh * kw


@dataclasses.dataclass(frozen=True)
class ConvShape:
    """One convolution problem: out (n, cout, Ho, Wo) = conv2d(x (n, cin, h, w),
    weight (cout, cin/groups, kh, kw)); the config of the convolution benchmarks."""

    n: int
    """batch (images)"""
    cin: int
    """input channels"""
    cout: int
    """output channels"""
    h: int
    """input height (pixels)"""
    w: int
    """input width (pixels)"""
    kh: int = 3
    """kernel height (taps)"""
    kw: int = 3
    """kernel width (taps)"""
    stride: tuple[int, int] = (1, 1)
    """step between output positions (rows, cols), pixels"""
    padding: tuple[int, int] = (1, 1)
    """zeros added on each side (rows, cols), pixels"""
    dilation: tuple[int, int] = (1, 1)
    """spacing between kernel taps (rows, cols), pixels"""
    groups: int = 1
    """channel groups (cin and cout divisible by it; groups = cin is depthwise)"""
    bias: bool = True
    """add a per-output-channel bias"""

    @property
    def out_hw(self) -> tuple[int, int]:
        return (
            conv_output_size(self.h, self.kh, self.stride[0], self.padding[0], self.dilation[0]),
            conv_output_size(self.w, self.kw, self.stride[1], self.padding[1], self.dilation[1]),
        )

    def label(self) -> str:
        extra = "".join(
            f",{k}={v}"
            for k, v, d in (
                ("s", self.stride, (1, 1)),
                ("p", self.padding, (1, 1)),
                ("d", self.dilation, (1, 1)),
                ("g", self.groups, 1),
            )
            if v != d
        )
        return f"{self.n}x{self.cin}x{self.h}x{self.w}->{self.cout},k{self.kh}x{self.kw}{extra}"

    def kwargs(self) -> dict:
        """stride/padding/dilation/groups as ``F.conv2d`` keyword arguments."""
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def flops(self) -> int:
        return conv2d_flops(self.n, self.cin, self.cout, *self.out_hw, self.kh, self.kw, self.groups)

    def bytes(self, dtype: torch.dtype) -> int:
        """Input, weight and output, each moved once."""
        el = torch.empty((), dtype=dtype).element_size()
        ho, wo = self.out_hw
        return el * (
            self.n * self.cin * self.h * self.w
            + self.cout * self.cin // self.groups * self.kh * self.kw
            + self.n * self.cout * ho * wo
        )

    def inputs(self, device, dtype, seed: int):
        """(x, weight, bias or None, kwargs), seeded; weights scaled by 1/sqrt(fan_in) as
        nn.Conv2d's init does, so outputs stay O(1) and a float32 tolerance means the same
        at every size."""
        g = torch.Generator().manual_seed(seed)
        fan_in = self.cin // self.groups * self.kh * self.kw
        x = torch.randn(self.n, self.cin, self.h, self.w, generator=g, dtype=dtype)
        w = torch.randn(self.cout, self.cin // self.groups, self.kh, self.kw, generator=g, dtype=dtype) / fan_in**0.5
        b = torch.randn(self.cout, generator=g, dtype=dtype) if self.bias else None
        return x.to(device), w.to(device), None if b is None else b.to(device), self.kwargs()


def check_conv_args(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: IntPair,
    padding: IntPair,
    dilation: IntPair,
    groups: int,
):
    """Validate conv2d arguments; return ((sh, sw), (ph, pw), (dh, dw), (Ho, Wo)).

    Raises:
        ValueError: x not (N, C, H, W), weight not (O, C/groups, kh, kw), C or O not
            divisible by groups, bias not (O,), stride/dilation < 1, padding < 0, or an
            output smaller than 1x1.
        TypeError: non-int stride/padding/dilation, or dtypes that differ.
    """
    s, p, d = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    if x.dim() != 4:
        raise ValueError(f"conv2d: input must be (N, C, H, W), got shape {tuple(x.shape)}")
    if weight.dim() != 4:
        raise ValueError(f"conv2d: weight must be (Cout, Cin/groups, kh, kw), got shape {tuple(weight.shape)}")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    c, o = x.shape[1], weight.shape[0]
    if c % groups or o % groups:
        raise ValueError(
            f"conv2d: in_channels ({c}) and out_channels ({o}) must both be divisible by groups ({groups})"
        )
    if weight.shape[1] != c // groups:
        raise ValueError(
            f"conv2d: weight {tuple(weight.shape)} expects {weight.shape[1] * groups} input "
            f"channels with groups={groups}, but input has {c}"
        )
    if bias is not None and tuple(bias.shape) != (o,):
        raise ValueError(f"conv2d: bias must have shape ({o},), got {tuple(bias.shape)}")
    if min(s) < 1 or min(d) < 1 or min(p) < 0:
        raise ValueError(
            f"conv2d: need stride >= 1, dilation >= 1, padding >= 0; got stride={s}, dilation={d}, padding={p}"
        )
    if weight.dtype != x.dtype or (bias is not None and bias.dtype != x.dtype):
        raise TypeError(
            f"conv2d: input {x.dtype} and weight {weight.dtype} (bias "
            f"{None if bias is None else bias.dtype}) must share a dtype"
        )
    kh, kw = weight.shape[2:]
    ho = conv_output_size(x.shape[2], kh, s[0], p[0], d[0])
    wo = conv_output_size(x.shape[3], kw, s[1], p[1], d[1])
    if ho < 1 or wo < 1:
        raise ValueError(
            f"conv2d: output would be {ho}x{wo}: input {tuple(x.shape[2:])} padded by {p} is "
            f"smaller than the dilated kernel ({d[0] * (kh - 1) + 1}x{d[1] * (kw - 1) + 1})"
        )
    return s, p, d, (ho, wo)


# -- direct: one GEMM per kernel tap ---------------------------------------------------------
def conv2d_direct(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Direct convolution: for each tap (i, j), the strided window of the padded input it
    touches times that tap's (Og, Cg) weight slice, accumulated. Gradients by autograd.

    Args/returns as ``F.conv2d``: x (N, C, H, W) or (C, H, W), weight (O, C/groups, kh, kw),
    bias (O,) or None -> (N, O, Ho, Wo) (or (O, Ho, Wo)) in x's dtype; ``padding`` also
    'same'/'valid' and ``padding_mode`` as ``nn.Conv2d`` (module docstring).
    """
    x, padding, unbatched = _as_batched_padded(x, weight, stride, padding, dilation, padding_mode)
    (sh, sw), (ph, pw), (dh, dw), (ho, wo) = check_conv_args(x, weight, bias, stride, padding, dilation, groups)
    n, c = x.shape[:2]
    o, cg, kh, kw = weight.shape
    g = groups
    xp = F.pad(x, (pw, pw, ph, ph))  # (N, C, Hp, Wp)
    xg = xp.view(n, g, cg, *xp.shape[2:])  # (N, G, Cg, Hp, Wp)
    wg = weight.view(g, o // g, cg, kh, kw)  # (G, Og, Cg, kh, kw)
    out = x.new_zeros(n, g, o // g, ho, wo)  # (N, G, Og, Ho, Wo)
    for i in range(kh):
        for j in range(kw):
            # the input pixels tap (i, j) sees for every output position: (N, G, Cg, Ho, Wo)
            win = xg[..., i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw]
            out = out + torch.einsum("ngchw,goc->ngohw", win, wg[..., i, j])
    out = out.reshape(n, o, ho, wo)  # (N, O, Ho, Wo)
    return _unbatch(out if bias is None else out + bias.view(1, o, 1, 1), unbatched)


# -- im2col + matmul -----------------------------------------------------------------------------
def im2col(
    x: torch.Tensor, kernel_size: IntPair, stride: IntPair = 1, padding: IntPair = 0, dilation: IntPair = 1
) -> torch.Tensor:
    """Patches of x as columns, the layout of ``F.unfold``: (N, C*kh*kw, L), L = Ho*Wo.

    Built by hand from a strided view of the padded input (``as_strided``: no data moves
    until the final reshape copies the patches out). Row index = c*kh*kw + i*kw + j.
    """
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
        _pair(kernel_size, "kernel_size"),
        _pair(stride, "stride"),
        _pair(padding, "padding"),
        _pair(dilation, "dilation"),
    )
    if x.dim() != 4:
        raise ValueError(f"im2col: input must be (N, C, H, W), got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    ho, wo = conv_output_size(h, kh, sh, ph, dh), conv_output_size(w, kw, sw, pw, dw)
    if ho < 1 or wo < 1:
        raise ValueError(f"im2col: output would be {ho}x{wo} for input {h}x{w}, kernel {kh}x{kw}")
    xp = F.pad(x, (pw, pw, ph, ph)).contiguous()  # (N, C, Hp, Wp)
    s_n, s_c, s_h, s_w = xp.stride()
    view = xp.as_strided((n, c, kh, kw, ho, wo), (s_n, s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w))
    return view.reshape(n, c * kh * kw, ho * wo)  # (N, C*kh*kw, L), a copy


#: Bytes of patch matrix built per chunk of images. The patch matrix of a whole batch is
#: kh*kw times the input (75 MB for 32x64x32x32 at 3x3); built a few images at a time it
#: stays in cache between the gather that writes it and the GEMM that reads it. Measured
#: on the 2-core EPYC (2 MB L2 per core, 32 MB L3), 32x64x32x32 3x3, one thread, speed
#: relative to F.conv2d: chunks of 4 / 16 / 64 / 128 MB ran at 0.65x / 0.48x / 0.32x /
#: 0.31x (the last two are one batch-wide matrix or close to it).
CHUNK_BYTES = 4 * 2**20


def _chunk(n_per_image_bytes: int, n: int) -> int:
    return max(1, min(n, CHUNK_BYTES // max(1, n_per_image_bytes)))


def _cols(
    xp: torch.Tensor, groups: int, kh: int, kw: int, s: tuple[int, int], d: tuple[int, int], ho: int, wo: int
) -> torch.Tensor:
    """Patches of a padded chunk xp (n, C, Hp, Wp) as (n, G, K, L), K ordered (c, i, j) as
    ``F.unfold`` orders rows: a strided view, copied once by the reshape."""
    n, c = xp.shape[:2]
    cg = c // groups
    s_n, s_c, s_h, s_w = xp.stride()
    view = xp.as_strided(
        (n, groups, cg, kh, kw, ho, wo), (s_n, cg * s_c, s_c, d[0] * s_h, d[1] * s_w, s[0] * s_h, s[1] * s_w)
    )
    return view.reshape(n, groups, cg * kh * kw, ho * wo)  # (n, G, K, L)


def _col2im_add(
    gxp: torch.Tensor,
    gcols: torch.Tensor,
    groups: int,
    kh: int,
    kw: int,
    s: tuple[int, int],
    d: tuple[int, int],
    ho: int,
    wo: int,
) -> None:
    """Adjoint of :func:`_cols`: scatter-add patch gradients (n, G, K, L) into the padded
    input gradient gxp (n, C, Hp, Wp), in place. Overlapping windows add up."""
    n, c = gxp.shape[:2]
    g7 = gcols.view(n, groups, c // groups, kh, kw, ho, wo)  # (n, G, Cg, kh, kw, Ho, Wo)
    for i in range(kh):
        for j in range(kw):
            gxp[
                :, :, i * d[0] : i * d[0] + s[0] * (ho - 1) + 1 : s[0], j * d[1] : j * d[1] + s[1] * (wo - 1) + 1 : s[1]
            ] += g7[:, :, :, i, j].reshape(n, c, ho, wo)


class Conv2dIm2col(torch.autograd.Function):
    """im2col + GEMM forward, chunk by chunk over the batch, with a hand-written backward
    that recomputes each chunk's patches instead of keeping them (memory: one chunk)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        s, p, d, (ho, wo) = check_conv_args(x, weight, bias, stride, padding, dilation, groups)
        n = x.shape[0]
        o, cg, kh, kw = weight.shape
        xp = F.pad(x, (p[1], p[1], p[0], p[0])).contiguous()  # (N, C, Hp, Wp)
        wm = weight.reshape(groups, o // groups, cg * kh * kw)  # (G, Og, K), K ordered (c, i, j)
        out = x.new_empty(n, groups, o // groups, ho * wo)  # (N, G, Og, L): NCHW once viewed
        step = _chunk(x.shape[1] * kh * kw * ho * wo * x.element_size(), n)
        for n0 in range(0, n, step):
            cols = _cols(xp[n0 : n0 + step], groups, kh, kw, s, d, ho, wo)  # (n, G, K, L)
            torch.matmul(wm, cols, out=out[n0 : n0 + step])  # (G, Og, K) @ (n, G, K, L) -> (n, G, Og, L)
        out = out.view(n, o, ho, wo)  # (N, O, Ho, Wo)
        if bias is not None:
            out += bias.view(1, o, 1, 1)
        ctx.save_for_backward(xp, wm)
        ctx.geom = (x.shape, s, p, d, ho, wo, groups, kh, kw, step)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, grad_out):
        xp, wm = ctx.saved_tensors
        (n, c, h, w), s, p, d, ho, wo, groups, kh, kw, step = ctx.geom
        o = wm.shape[0] * wm.shape[1]
        go = grad_out.reshape(n, groups, o // groups, ho * wo)  # (N, G, Og, L)
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gxp = torch.zeros_like(xp) if need_x else None  # (N, C, Hp, Wp)
        gwm = torch.zeros_like(wm) if need_w else None  # (G, Og, K)
        for n0 in range(0, n, step):
            g = go[n0 : n0 + step]  # (n, G, Og, L)
            if need_w:
                cols = _cols(xp[n0 : n0 + step], groups, kh, kw, s, d, ho, wo)  # recomputed (n, G, K, L)
                gwm += (g @ cols.transpose(-1, -2)).sum(0)  # (n, G, Og, K) summed over images
            if need_x:
                _col2im_add(gxp[n0 : n0 + step], wm.transpose(1, 2) @ g, groups, kh, kw, s, d, ho, wo)
        grad_x = gxp[:, :, p[0] : p[0] + h, p[1] : p[1] + w].contiguous() if need_x else None
        grad_w = gwm.view(o, c // groups, kh, kw) if need_w else None
        grad_b = grad_out.sum(dim=(0, 2, 3)) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b, None, None, None, None


def conv2d_im2col(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """im2col + matmul convolution with a hand-written backward; arguments as ``F.conv2d``.

    Returns (N, O, Ho, Wo), contiguous. Memory: a patch matrix holds kh*kw times its
    images' elements (divided by stride**2), the price of turning convolution into GEMM;
    built chunk by chunk, only one chunk's worth (<= CHUNK_BYTES, at least one image)
    is live at a time. Unbatched input, 'same'/'valid' and ``padding_mode`` as :func:`conv2d_direct`.
    """
    x, padding, unbatched = _as_batched_padded(x, weight, stride, padding, dilation, padding_mode)
    return _unbatch(Conv2dIm2col.apply(x, weight, bias, stride, padding, dilation, groups), unbatched)


def conv2d_unfold(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """``F.unfold`` + matmul (NCHW patch layout, batched per image); gradients by autograd.
    The textbook version of im2col; arguments and result as :func:`conv2d_direct`."""
    x, padding, unbatched = _as_batched_padded(x, weight, stride, padding, dilation, padding_mode)
    s, p, d, (ho, wo) = check_conv_args(x, weight, bias, stride, padding, dilation, groups)
    n = x.shape[0]
    o, cg, kh, kw = weight.shape
    cols = F.unfold(x, (kh, kw), dilation=d, padding=p, stride=s)  # (N, C*kh*kw, L)
    cols = cols.view(n, groups, cg * kh * kw, ho * wo)  # (N, G, Cg*kh*kw, L)
    out = weight.view(groups, o // groups, cg * kh * kw) @ cols  # (N, G, Og, L)
    out = out.view(n, o, ho, wo)  # (N, O, Ho, Wo)
    return _unbatch(out if bias is None else out + bias.view(1, o, 1, 1), unbatched)


# -- dilation by zero insertion ---------------------------------------------------------------
def dilate_kernel(weight: torch.Tensor, dilation: IntPair) -> torch.Tensor:
    """(O, Cg, kh, kw) -> (O, Cg, dh*(kh-1)+1, dw*(kw-1)+1) with d-1 zeros between taps."""
    dh, dw = _pair(dilation, "dilation")
    o, cg, kh, kw = weight.shape
    out = weight.new_zeros(o, cg, dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    out[:, :, ::dh, ::dw] = weight
    return out


def conv2d_zero_inserted(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Dilated convolution as an undilated im2col convolution with :func:`dilate_kernel`.

    Costs ((d*(k-1)+1)/k)**2 times the FLOPs of the dilated one: 25/9 for k=3, d=2.
    Arguments and result as :func:`conv2d_direct`; gradients flow through the zero insertion.
    """
    x, padding, unbatched = _as_batched_padded(x, weight, stride, padding, dilation, padding_mode)
    check_conv_args(x, weight, bias, stride, padding, dilation, groups)
    return _unbatch(conv2d_im2col(x, dilate_kernel(weight, dilation), bias, stride, padding, 1, groups), unbatched)


def conv_grads(
    fn, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, grad_out: torch.Tensor, **kwargs
) -> tuple[torch.Tensor, ...]:
    """(grad_x, grad_w[, grad_b]) of ``(fn(x, weight, bias, **kwargs) * grad_out).sum()``.

    Works on detached copies, so the caller's tensors and their ``.grad`` stay untouched.
    """
    xs = x.detach().clone().requires_grad_(True)
    ws = weight.detach().clone().requires_grad_(True)
    bs = None if bias is None else bias.detach().clone().requires_grad_(True)
    out = fn(xs, ws, bs, **kwargs)
    leaves = [xs, ws] + ([bs] if bs is not None else [])
    return torch.autograd.grad(out, leaves, grad_out)


def grads_vs_conv2d(functions: dict, shape: ConvShape, device, dtype, seed: int) -> dict[str, tuple]:
    """For each name -> conv function: (its grads, F.conv2d's grads) of input, weight and
    bias on ``shape``'s seeded inputs under one seeded upstream gradient."""
    x, w, b, kw = shape.inputs(device, dtype, seed)
    g = torch.Generator().manual_seed(seed + 99)
    grad_out = torch.randn(shape.n, shape.cout, *shape.out_hw, generator=g, dtype=dtype).to(device)
    expected = conv_grads(F.conv2d, x, w, b, grad_out, **kw)
    return {name: (conv_grads(fn, x, w, b, grad_out, **kw), expected) for name, fn in functions.items()}


def conv_impl(name: str) -> Callable:
    """An operator task's ``@impl`` method named ``name``: ``(self, x, w, b, kw)`` (the inputs of
    :meth:`ConvShape.inputs`) -> ``lambda: self.FUNCTIONS[name](x, w, b, **kw)``. The conv
    tasks keep their functions in a ``FUNCTIONS`` table (name -> function(x, w, b, **kw)) so a
    mutant can swap one and the gradient check can differentiate each."""

    def method(self, x, w, b, kw):
        return lambda: self.FUNCTIONS[name](x, w, b, **kw)

    method.__name__ = method.__qualname__ = name
    return impl(method)
