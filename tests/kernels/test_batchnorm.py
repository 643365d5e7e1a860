"""kernels.layers.batchnorm: hand backward (gradcheck), torch equality, state dicts, errors."""

import pytest
import torch
from torch import nn

from kernels.layers.batchnorm import BatchNorm1d, BatchNorm2d, BatchNormFunction, replace_batchnorm


@pytest.mark.parametrize("shape", [(7, 3), (5, 3, 4), (3, 3, 2, 5)])
@pytest.mark.parametrize("affine", [True, False])
def test_hand_backward_passes_gradcheck(shape, affine):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True) if affine else None
    b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True) if affine else None
    args = (x, w, b) if affine else (x,)
    fn = (
        (lambda x, w, b: BatchNormFunction.apply(x, w, b, 1e-5)[0])
        if affine
        else (lambda x: BatchNormFunction.apply(x, None, None, 1e-5)[0])
    )
    assert torch.autograd.gradcheck(fn, args)


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_float64_train_then_eval_equals_torch(momentum):
    ref = nn.BatchNorm2d(4, momentum=momentum).double()
    own = BatchNorm2d(4, momentum=momentum).double()
    for _ in range(5):
        x = torch.randn(6, 4, 3, 3, dtype=torch.float64) * 2 + 0.5
        torch.testing.assert_close(own(x), ref(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(own.running_var, ref.running_var, rtol=1e-12, atol=1e-12)
    own.eval(), ref.eval()
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(own(x), ref(x), rtol=1e-12, atol=1e-12)


def test_state_dict_loads_both_ways_and_replace_keeps_state():
    ref = nn.BatchNorm1d(5)
    ref(torch.randn(8, 5))
    own = BatchNorm1d(5)
    own.load_state_dict(ref.state_dict())
    assert set(own.state_dict()) == set(ref.state_dict())
    ref.load_state_dict(own.state_dict())
    model = nn.Sequential(nn.Linear(3, 5), ref, nn.Sequential(nn.BatchNorm2d(2, affine=False)))
    replace_batchnorm(model)
    assert isinstance(model[1], BatchNorm1d) and isinstance(model[2][0], BatchNorm2d)
    torch.testing.assert_close(model[1].running_mean, ref.running_mean)
    sub1d, sub2d = type("Sub1d", (BatchNorm1d,), {}), type("Sub2d", (BatchNorm2d,), {})
    other = replace_batchnorm(nn.Sequential(nn.BatchNorm1d(4), nn.BatchNorm2d(2)), (sub1d, sub2d))
    assert [type(m) for m in other] == [sub1d, sub2d]  # the classes asked for (a task's own or a mutant's)


def test_no_running_stats_uses_batch_statistics_in_eval():
    own = BatchNorm1d(3, track_running_stats=False).eval()
    ref = nn.BatchNorm1d(3, track_running_stats=False).eval()
    x = torch.randn(10, 3)
    torch.testing.assert_close(own(x), ref(x))
    assert own.running_mean is None


@pytest.mark.parametrize(
    "cls,shape,match",
    [
        (BatchNorm1d, (2, 4, 3, 3), "2D"),
        (BatchNorm2d, (2, 4, 3), "4D"),
        (BatchNorm1d, (2, 5), "channels"),
        (BatchNorm1d, (1, 4), "more than 1 value"),
    ],
)
def test_errors_name_the_problem(cls, shape, match):
    with pytest.raises(ValueError, match=match):
        cls(4)(torch.randn(shape))
