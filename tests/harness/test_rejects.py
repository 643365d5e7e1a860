"""harness.rejects.expect_rejects: each implementation must raise the named error with the message part."""

import pytest
import torch

from harness import Operator, impl
from harness.checks import CheckFailed
from harness.context import Context
from harness.registry import Registry, task
from harness.rejects import expect_rejects


class Half(Operator):
    """y = x / 2 of a 1-D x."""

    sizes = {"tiny": 4}

    def inputs(self, config, device, dtype, seed):
        return (torch.ones(config),)

    def reference(self, x):
        return x / 2

    @impl(baseline=True)
    def torch_div(self, x):
        return lambda: x / 2

    @impl
    def own(self, x):
        if x.ndim != 1:
            raise ValueError(f"half: x must be 1-D, got shape {tuple(x.shape)}")
        return lambda: x * 0.5


def _ctx():
    cls = task("zz.half", seed="1.01", title="t", registry=Registry())(Half)
    return cls(), Context(cls, mode="check", device="cpu", size="tiny")


def test_passes_when_each_implementation_raises_and_records_the_check():
    t, ctx = _ctx()
    expect_rejects(ctx, t, [(ValueError, (torch.ones(2, 2),), "1-D", "2-D input rejected")], baseline=False)
    assert ctx.record.checks["2-D input rejected"]["passed"]


def test_fails_on_an_implementation_that_accepts_or_words_it_wrong():
    t, ctx = _ctx()
    with pytest.raises(CheckFailed, match="nothing was"):  # the baseline broadcasts happily
        expect_rejects(ctx, t, [(ValueError, (torch.ones(2, 2),), "1-D", "2-D input rejected")])
    with pytest.raises(CheckFailed, match="lacks"):
        expect_rejects(ctx, t, [(ValueError, (torch.ones(2, 2),), "scalar", "named")], baseline=False)
