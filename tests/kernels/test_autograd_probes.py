"""kernels.autograd.probes (saved-for-backward counts, second derivatives) and the wrong Swish
Functions of kernels.autograd.swish_wrong that m1.custom_activation's check must reject."""

from __future__ import annotations

import torch

from kernels.autograd.functions import SwishFunction, swish_reference
from kernels.autograd.probes import saved_for_backward, second_derivative
from kernels.autograd.swish_wrong import SiLUDerivativeForAnyBeta, WrongSecondDerivative


def test_saved_for_backward_counts_distinct_storages():
    x = torch.randn(100)
    assert saved_for_backward(lambda t: t * 2.0, x) == (0, 0)  # a scalar factor saves nothing
    n, b = saved_for_backward(lambda t: t * torch.sigmoid(t), x)
    assert n == 2 and b == 2 * 400  # x and sigmoid(x), float32
    assert saved_for_backward(lambda t: SwishFunction.apply(t, 1.0), x) == (1, 400)


def test_second_derivative_of_a_cubic():
    x = torch.linspace(-2, 2, 7, dtype=torch.float64)
    v = torch.linspace(-1, 1, 7, dtype=torch.float64)
    torch.testing.assert_close(second_derivative(lambda t: t**3, x), 6 * x * v)


def test_the_wrong_functions_are_wrong_where_the_check_looks():
    x = torch.randn(50, dtype=torch.float64)
    ref2 = second_derivative(lambda t: swish_reference(t, 1.7), x)
    assert not torch.allclose(second_derivative(lambda t: WrongSecondDerivative.apply(t, 1.7), x), ref2)
    g = torch.ones_like(x)
    leaf = x.clone().requires_grad_()
    (d_wrong,) = torch.autograd.grad(SiLUDerivativeForAnyBeta.apply(leaf, 1.7), leaf, g)
    (d_right,) = torch.autograd.grad(swish_reference(leaf, 1.7), leaf, g)
    assert not torch.allclose(d_wrong, d_right)
    (d_beta1,) = torch.autograd.grad(SiLUDerivativeForAnyBeta.apply(leaf, 1.0), leaf, g)
    torch.testing.assert_close(d_beta1, torch.autograd.grad(swish_reference(leaf, 1.0), leaf, g)[0])
