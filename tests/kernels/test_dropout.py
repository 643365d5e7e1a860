"""kernels.layers.dropout: rules, edges, module, errors (statistics are in the 3.03 task check)."""

import pytest
import torch
import torch.nn.functional as F

from kernels.layers.dropout import Dropout, dropout, dropout_mask


def test_rand_rule_is_reproducible_from_the_seed():
    x = torch.ones(64, 33)
    out = dropout(x, 0.3, generator=torch.Generator().manual_seed(7))
    rule = torch.rand(x.shape, generator=torch.Generator().manual_seed(7)) >= 0.3
    assert torch.equal(out != 0, rule)
    assert torch.equal(out[rule], torch.full((int(rule.sum()),), 1 / 0.7))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_bernoulli_rule_equals_f_dropout_on_cpu(dtype):
    x = torch.randn(40, 50, dtype=dtype)
    torch.manual_seed(3)
    ours = dropout(x, 0.25, rule="bernoulli")
    torch.manual_seed(3)
    ref = F.dropout(x, 0.25)
    assert ours.dtype == dtype
    torch.testing.assert_close(ours, ref)


def test_eval_and_p0_return_the_input_and_p1_zeros():
    x = torch.randn(5, 6)
    assert dropout(x, 0.5, training=False) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    m = Dropout(0.5)
    m.eval()
    assert m(x) is x


def test_gradient_is_mask_over_keep_probability():
    x = torch.randn(30, 20, dtype=torch.float64, requires_grad=True)
    g = torch.Generator().manual_seed(1)
    dropout(x, 0.4, generator=g).sum().backward()
    keep = dropout_mask(x, 0.4, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(x.grad, keep.double() / 0.6)


def test_module_uses_its_generator():
    x = torch.ones(100)
    a = Dropout(0.5, generator=torch.Generator().manual_seed(5))(x)
    b = Dropout(0.5, generator=torch.Generator().manual_seed(5))(x)
    assert torch.equal(a, b)


@pytest.mark.parametrize("p", [-0.1, 1.01])
def test_bad_probability_raises(p):
    with pytest.raises(ValueError, match="between 0 and 1"):
        dropout(torch.ones(3), p)
    with pytest.raises(ValueError, match="between 0 and 1"):
        Dropout(p)


def test_unknown_rule_raises():
    with pytest.raises(ValueError, match="unknown dropout mask rule"):
        dropout(torch.ones(3), 0.5, rule="philox")
