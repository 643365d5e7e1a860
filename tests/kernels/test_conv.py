"""kernels/layers/conv.py: every hand-written convolution equals F.conv2d, forward and backward."""

import pytest
import torch
import torch.nn.functional as F

from kernels.layers.conv import (
    conv2d_direct,
    conv2d_flops,
    conv2d_im2col,
    conv2d_unfold,
    conv2d_zero_inserted,
    conv_grads,
    conv_impl,
    conv_output_size,
    dilate_kernel,
    im2col,
)

FUNCS = [conv2d_direct, conv2d_im2col, conv2d_unfold, conv2d_zero_inserted]
CASES = [  # (N, C, H, W, O, kh, kw, stride, padding, dilation, groups)
    (2, 3, 7, 9, 4, 3, 3, 1, 0, 1, 1),
    (2, 4, 9, 8, 6, 3, 3, 2, (2, 1), 1, 1),
    (1, 4, 11, 10, 4, 3, 2, 1, (2, 0), (2, 3), 1),
    (2, 6, 8, 8, 4, 3, 3, (1, 2), 1, 1, 2),
    (2, 4, 6, 7, 4, 3, 3, 1, 1, 2, 4),  # depthwise, dilated
    (3, 5, 5, 5, 3, 1, 1, 1, 0, 1, 1),
    (1, 2, 4, 4, 2, 5, 5, 3, 3, 1, 1),  # kernel larger than the input, saved by padding
]


def _make(case, dtype=torch.float64, seed=0):
    n, c, h, w, o, kh, kw, s, p, d, g = case
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=gen, dtype=dtype)
    wt = torch.randn(o, c // g, kh, kw, generator=gen, dtype=dtype)
    b = torch.randn(o, generator=gen, dtype=dtype)
    return x, wt, b, dict(stride=s, padding=p, dilation=d, groups=g)


@pytest.mark.parametrize("fn", FUNCS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("case", CASES)
def test_forward_and_grads_equal_conv2d(fn, case):
    x, w, b, kw = _make(case)
    ref = F.conv2d(x, w, b, **kw)
    torch.testing.assert_close(fn(x, w, b, **kw), ref)
    torch.testing.assert_close(fn(x, w, None, **kw), F.conv2d(x, w, None, **kw))
    go = torch.randn_like(ref)
    torch.testing.assert_close(conv_grads(fn, x, w, b, go, **kw), conv_grads(F.conv2d, x, w, b, go, **kw))


def test_im2col_backward_passes_gradcheck():
    x, w, b, kw = _make((1, 2, 4, 5, 2, 3, 2, (2, 1), (1, 2), (1, 2), 2))
    assert torch.autograd.gradcheck(
        lambda *a: conv2d_im2col(*a, **kw), (x.requires_grad_(), w.requires_grad_(), b.requires_grad_())
    )


@pytest.mark.parametrize("case", CASES)
def test_im2col_matches_unfold_layout(case):
    x, w, _, kw = _make(case, torch.float32)
    ks = tuple(w.shape[2:])
    assert torch.equal(
        im2col(x, ks, kw["stride"], kw["padding"], kw["dilation"]),
        F.unfold(x, ks, kw["dilation"], kw["padding"], kw["stride"]),
    )


def test_im2col_output_is_contiguous_and_does_not_alias():
    x, w, b, kw = _make(CASES[1], torch.float32)
    out = conv2d_im2col(x, w, b, **kw)
    assert out.is_contiguous()
    assert out.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()


def test_dilate_kernel_places_taps_with_zeros_between():
    w = torch.arange(1.0, 7.0).view(1, 1, 2, 3)
    dk = dilate_kernel(w, (2, 3))
    assert dk.shape == (1, 1, 3, 7)
    assert torch.equal(dk[0, 0, ::2, ::3], w[0, 0])
    assert dk.count_nonzero() == 6


def test_output_size_and_flops():
    assert conv_output_size(32, 3, 1, 1) == 32
    assert conv_output_size(32, 3, 2, 1) == 16
    assert conv_output_size(10, 3, 1, 0, 2) == 6
    assert conv2d_flops(32, 64, 64, 32, 32, 3, 3) == 2 * 32 * 64 * 32 * 32 * 64 * 9
    assert conv2d_flops(1, 64, 64, 1, 1, 3, 3, groups=64) == 2 * 64 * 9


@pytest.mark.parametrize("fn", FUNCS, ids=lambda f: f.__name__)
def test_bad_arguments_raise_clear_errors(fn):
    x = torch.randn(1, 6, 5, 5)
    with pytest.raises(ValueError, match="divisible by groups"):
        fn(x, torch.randn(4, 3, 3, 3), None, groups=4)
    with pytest.raises(ValueError, match="expects 4 input channels"):
        fn(x, torch.randn(4, 4, 3, 3), None)
    with pytest.raises(ValueError, match="output would be"):
        fn(x, torch.randn(4, 6, 7, 7), None)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        fn(torch.randn(6, 5), torch.randn(4, 6, 3, 3), None)
    with pytest.raises(ValueError, match="bias"):
        fn(x, torch.randn(4, 6, 3, 3), torch.randn(3))
    with pytest.raises(ValueError, match="'valid' and 'same'"):
        fn(x, torch.randn(4, 6, 3, 3), None, padding="full")
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        fn(x, torch.randn(4, 6, 3, 3), None, stride=2, padding="same")
    with pytest.raises(TypeError, match="dtype"):
        fn(x, torch.randn(4, 6, 3, 3, dtype=torch.float64), None)


def test_conv_impl_is_an_implementation_calling_the_table():
    from harness.contract import ImplSpec

    method = conv_impl("direct")
    assert isinstance(method._drills_impl, ImplSpec)
    assert (method.__name__, method._drills_impl.name, method._drills_impl.method) == ("direct", "direct", "direct")

    class Task:
        FUNCTIONS = {"direct": lambda x, w, b, **kw: (x, w, b, kw)}

    assert method(Task(), 1, 2, None, {"stride": 2})() == (1, 2, None, {"stride": 2})
