"""The equivalence check of a hand-written recurrent module against torch's (5.02, 5.07).

:class:`RecurrentEquivalence` is an operator-task base (not registered itself): given
``cell`` ("lstm"/"gru") and ``manual_cls`` (a ``models.recurrent`` module with
``from_torch``), it compares one forward and one backward of a fixed random projection of
every output (``models.recurrent.forward_backward``) through torch's module and the
hand-written one holding the same weights: outputs, final states and every gradient, over
``models.recurrent.RecurrentCase`` configs; bad input must raise ValueError. The task files
``benches/rnn/lstm_manual.py`` and ``gru_manual.py`` add sizes, the lesson, claims and mutants.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

import torch

from harness.checks import guard_not_constant, guard_not_mutated, snapshot
from harness.task import Operator, impl
from models.recurrent import RecurrentCase, forward_backward


@contextlib.contextmanager
def exact_float32(device: torch.device):
    """On CUDA, no TF32 while checking: cuDNN's RNN kernels may use it by default
    (``torch.backends.cudnn.allow_tf32``), which would make the reference ~1e-3 off."""
    if device.type != "cuda":
        yield
        return
    prev = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = prev


def _group(key: str) -> str:
    if not key.startswith("grad"):
        return "outputs and final states"
    return "weight gradients" if ("weight" in key or "bias" in key) else "input and state gradients"


class RecurrentEquivalence(Operator):
    """torch's module (baseline, also the reference) against ``manual_cls`` (see the module docstring)."""

    cell: ClassVar[str] = "lstm"
    #: the hand-written module under test
    manual_cls: ClassVar[Any] = None
    check_dtypes = (torch.float32, torch.float64)

    def inputs(self, config, device, dtype, seed):
        return config.inputs(self.cell, device, dtype, seed)

    def reference(self, x, lengths, enforce_sorted, hx, module):
        return forward_backward(module, x, lengths=lengths, enforce_sorted=enforce_sorted, hx=hx)

    def items(self, config):
        return config.seq_len * config.batch, "tokens"

    @impl(baseline=True)
    def torch_module(self, x, lengths, enforce_sorted, hx, module):
        return lambda: forward_backward(module, x, lengths=lengths, enforce_sorted=enforce_sorted, hx=hx)

    @impl
    def manual(self, x, lengths, enforce_sorted, hx, module):
        mine = self.manual_cls.from_torch(module)
        return lambda: forward_backward(mine, x, lengths=lengths, enforce_sorted=enforce_sorted, hx=hx)

    def check(self, ctx) -> None:
        with exact_float32(ctx.device):
            self._check(ctx)

    def _check(self, ctx) -> None:
        for config in ctx.configs:
            for seed in range(ctx.rng_seed, ctx.rng_seed + self.trials):
                inputs = self.inputs(config, ctx.device, ctx.dtype, seed)
                expected = self.reference(*inputs)
                before = snapshot(inputs)
                out = self.manual(*inputs)()  # torch's module is the reference itself
                label = f"manual [{config.label()}, {ctx.dtype}, seed {seed}]"
                guard_not_mutated(inputs, before, name=label)
                guard_not_constant(out, expected, name=label)
                same = out.keys() == expected.keys()
                msg = f"{label}: returned {sorted(out)}, expected {sorted(expected)}"
                ctx.expect(same, msg, name="manual: same outputs and gradients")
                for key, want in expected.items():
                    ctx.assert_close(out[key], want, name=f"manual: {_group(key)}", where=f"{key} {label}")
        self.extra_checks(ctx)

    def extra_checks(self, ctx) -> None:
        x, _, _, _, module = RecurrentCase(4, 2, 5, 6, 2).inputs(self.cell, ctx.device, ctx.dtype, ctx.rng_seed)
        mine = self.manual_cls.from_torch(module)
        ctx.expect_raises(ValueError, lambda: mine(x[..., :3]), match="features", name="rejects a wrong input size")
        bad = torch.zeros(1, 2, 6, dtype=ctx.dtype, device=ctx.device)  # (1, B, H): one layer short
        ctx.expect_raises(
            ValueError,
            lambda: mine(x, (bad, bad) if self.cell == "lstm" else bad),
            match="initial state",
            name="rejects a wrong h_0 shape",
        )
