"""5.02 LSTM without nn.LSTM.

Compared: ``models.recurrent.LSTM``, a multi-layer LSTM written from its equations (gates
i, f, g, o; ``c' = f*c + i*g``, ``h' = o*tanh(c')``; PyTorch's ``nn.LSTM`` docs), against
``nn.LSTM`` (the baseline) holding the same weights (``load_state_dict`` both ways: the
parameter names and shapes are torch's). Each call is one forward and one backward of a
fixed random projection of every output, so what is compared and timed is a training
step's worth of work.

Check (tiny, float32 and float64, 3 seeded trials per case): output, h_n and c_n, and the
gradients of the input, of h_0/c_0 and of every weight and bias, over cases that cover
1-3 layers, ``batch_first`` both ways, zero and given initial states, and packed
variable-length batches (``pack_padded_sequence`` with ``enforce_sorted`` True and
False; h_n must be each sequence's state after its own last step, in the caller's batch
order). Bad input (wrong feature count, wrong h_0 shape) raises ValueError naming it.
A swapped gate order, a missing bias or a forgotten packed-sequence permutation fails it
(tests/tasks/test_rnn_lstm_manual.py).

Bench: fwd+bwd time of both across sequence lengths T (cpu: B=32, C=64, H=128, L=2).

Lesson (2-core CPU shared with other jobs, load average ~8, OMP_NUM_THREADS=1, float32,
``drills bench --task rnn.lstm_manual --no-save``; fwd+bwd of B=32, C=64, H=128, L=2):
T=16: nn.LSTM 33 ms, hand-written 78 ms (2.3x slower); T=64: 101 vs 400 ms (4.0x);
T=256: 727 vs 5,005 ms (6.9x). An earlier run on the same machine gave 1.9x, 2.4x and
3.4x: the ratio is noisy here, its growth with T is not. The check's largest float32
error is 1.2e-6 (a weight gradient), far inside the default tolerance. The hand-written
stack hoists the input projection of all T steps into one matmul, yet still runs ~6
small kernels per step and layer forward and about twice that backward, each paying
dispatch and autograd-graph bookkeeping (the graph grows with T, and backward walks it
node by node), while ``nn.LSTM`` runs ATen's fused cell loop and backward.
"""

from __future__ import annotations

import contextlib

import torch

from harness import Operator, impl, task
from harness.checks import guard_not_constant, guard_not_mutated, snapshot
from models.recurrent import LSTM, RecurrentCase, forward_backward


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


@task("rnn.lstm_manual", seed="5.02", title="LSTM without nn.LSTM")
class LstmManual(Operator):
    __doc__ = __doc__
    cell = "lstm"
    #: the hand-written module under test (tests plant broken subclasses here)
    manual_cls = LSTM
    check_dtypes = (torch.float32, torch.float64)
    sizes = {
        "tiny": [
            RecurrentCase(7, 3, 5, 6, 1),
            RecurrentCase(6, 4, 5, 8, 3, batch_first=True, initial_state=True),
            RecurrentCase(9, 5, 4, 7, 2, packed="unsorted", initial_state=True),
            RecurrentCase(8, 3, 6, 5, 2, batch_first=True, packed="sorted"),
            RecurrentCase(5, 4, 3, 4, 3, batch_first=True, packed="unsorted"),
        ],
        "cpu": [RecurrentCase(t, 32, 64, 128, 2, batch_first=True) for t in (16, 64, 256)],
        "gpu": [RecurrentCase(t, 64, 256, 512, 2, batch_first=True) for t in (16, 64, 256, 1024)],
    }

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
            for trial in range(self.trials):
                seed = ctx.rng_seed + trial
                inputs = self.inputs(config, ctx.device, ctx.dtype, seed)
                expected = self.reference(*inputs)
                for spec in ctx.implementations(self):
                    if spec.baseline:  # torch's module is the reference itself
                        continue
                    before = snapshot(inputs)
                    out = getattr(self, spec.method)(*inputs)()
                    label = f"{spec.name} [{config.label()}, {ctx.dtype}, seed {seed}]"
                    guard_not_mutated(inputs, before, name=label)
                    guard_not_constant(out, expected, name=label)
                    ctx.expect(
                        out.keys() == expected.keys(),
                        f"{label}: returned {sorted(out)}, expected {sorted(expected)}",
                        name=f"{spec.name}: same outputs and gradients",
                    )
                    for key, want in expected.items():
                        ctx.assert_close(out[key], want, name=f"{spec.name}: {_group(key)}", where=f"{key} {label}")
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
