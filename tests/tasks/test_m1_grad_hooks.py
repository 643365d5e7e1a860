"""m1.grad_hooks: logged gradients equal .grad, scaling is exact; planted hook bugs are caught."""

import pytest
import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check
from kernels.autograd.hooks import GradLogger

Task = REGISTRY.get("m1.grad_hooks")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert {
        "logged value equals .grad",
        "parameter hook scales exactly",
        "activation hook: power-of-two scale exact upstream",
        "post-accumulate hook logs .grad",
    } <= set(rec.checks)


class LogsBeforeScaling(GradLogger):
    """Logs the incoming gradient, then scales: the log disagrees with .grad by the scale."""

    def _tensor_hook(self, name):
        def hook(grad):
            self._record(name, grad)
            return grad * self.scale if self.scale is not None else None

        return hook


class LogsNothingAfterAccumulate(GradLogger):
    """post_accumulate mode that logs the per-pass gradient instead of .grad."""

    def attach(self, name, tensor):
        if self.mode == "post_accumulate":
            self._handles.append(tensor.register_hook(lambda g, name=name: self._record(name, g)))
            return self
        return super().attach(name, tensor)


def test_logging_before_scaling_is_caught():
    class Wrong(Task):
        logger_cls = LogsBeforeScaling

    expect_check_fails(Wrong, match="scaled: logged value equals .grad")


def test_post_accumulate_logging_per_pass_is_caught():
    class Wrong(Task):
        logger_cls = LogsNothingAfterAccumulate

    expect_check_fails(Wrong, match="post-accumulate hook logs .grad")


def test_logger_rejects_bad_arguments():
    with pytest.raises(ValueError, match="keep"):
        GradLogger(keep="mean")
    with pytest.raises(ValueError, match="leaf"):
        GradLogger(mode="post_accumulate").attach("h", torch.ones(2, requires_grad=True) * 2)
