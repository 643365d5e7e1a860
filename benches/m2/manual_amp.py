"""m2 Automatic mixed precision by hand, with autocast's rules.

``kernels/amp/policy.py`` writes autocast's rules out as an explicit ``CastPolicy`` (which ops run
in the low-precision dtype, which in float32, which at the widest input type; tables read off
aten/src/ATen/autocast_mode.cpp of this torch version) and applies it with ``ManualAutocast``, a
``TorchFunctionMode`` that casts each call's arguments by hand while torch's autocast is off.
Timed: one training step (forward, backward, SGD) of a small attention block in float32, under
``torch.autocast`` (bfloat16; float16 on CUDA) and under ``ManualAutocast``.

Check: every probe of ``kernels.amp.probe`` (54 ops: matmuls, convolutions, losses, reductions,
softmax, norms, cat/stack, ...) in four input variants (float32, bfloat16, mixed, float64) gives
the same output dtype (or exception type) and bit-identical values under ``torch.autocast("cpu",
bfloat16)`` and ``ManualAutocast(CPU_BF16_POLICY)``; the block's forward and backward record the
same aten ops in the same dtypes, loss and gradients bit-identical. The CUDA float16 policy is
checked on real tensors where there is a GPU, else on fake CUDA tensors (``FakeTensorMode``
routes them through the real AutocastCUDA kernels; dtypes only).

Lesson: with native bfloat16 dot products (AVX512-BF16 or AMX on x86, tensor cores on a
GPU) the matmuls run several times faster than in float32, and because autocast casts only
the matmul-like ops (and caches the low-precision copy of each weight within the context)
the casts cost little. The hand policy should be as fast as autocast: the work is the same
casts and kernels, and a Python ``__torch_function__`` call per op (~10 us) is small next to
these matmuls. The CPU rules differ from the CUDA ones (softmax, layer_norm, exp, sum are
not autocast ops on CPU, so a bfloat16 input stays bfloat16 there), which is why the policy
is per device and checked against this torch build rather than the docs page
("Automatic Mixed Precision package - torch.amp", op reference lists).
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch

from harness import Comparison, Prepared, task
from harness.claims import speedup, time_ratio
from harness.mutants import Mutant
from kernels.amp import wrong
from kernels.amp.policy import CPU_BF16_POLICY, CUDA_FP16_POLICY, CastPolicy, ManualAutocast
from kernels.amp.probe import PROBES, compare_policy, policy_rows
from kernels.amp.trace import block_setup, block_step, traced_backward

_LOW = "torch.autocast's low-precision step >= 1.5x the float32 step (needs native bf16/fp16 dot products)"
_HAND = "the hand policy (a TorchFunctionMode) within 1.1x of torch.autocast: the same casts and kernels"


@dataclasses.dataclass(frozen=True)
class BlockConfig:
    """A single-head attention block over (B, T, D) inputs, classifying each position."""

    batch: int
    """B: sequences per step"""
    seq: int
    """T: positions per sequence"""
    dim: int
    """D: model width (the MLP is 4 D wide)"""
    classes: int = 10
    """logits per position"""

    def label(self) -> str:
        return f"B={self.batch},T={self.seq},D={self.dim}"


@task("m2.manual_amp", seed="m2", title="AMP by hand with autocast rules")
class ManualAmp(Comparison):
    __doc__ = __doc__
    variants = ("float32", "torch_autocast", "manual_autocast")
    gpu_check = True  # the float16 part runs behind ctx.require("cuda")
    sizes = {
        "tiny": BlockConfig(batch=2, seq=8, dim=16),
        "cpu": [BlockConfig(batch=8, seq=128, dim=256), BlockConfig(batch=4, seq=256, dim=512)],
        "gpu": [BlockConfig(batch=32, seq=512, dim=1024)],
    }
    claims = (
        speedup("torch_autocast", over="float32", at_least=1.5, text=_LOW),
        time_ratio("manual_autocast", to="torch_autocast", at_most=1.1, text=_HAND),
    )
    #: the policies under test, by device type; the mutants swap in wrong ones
    policies: dict[str, CastPolicy] = {"cpu": CPU_BF16_POLICY, "cuda": CUDA_FP16_POLICY}
    mutants = (
        Mutant("softmax_in_bfloat16", "softmax cast to bfloat16 on CPU", {"policies": wrong.SOFTMAX}, "softmax"),
        Mutant("linear_left_in_float32", "linear not cast down on CPU", {"policies": wrong.LINEAR}, "linear"),
        Mutant(
            "cuda_layer_norm_in_float16",
            "layer_norm in float16 on CUDA",
            {"policies": wrong.LAYER_NORM},
            "cuda float16",
        ),
    )

    def autocast(self, variant: str, device_type: str):
        """The context manager of a variant on this device type."""
        policy = self.policies[device_type]
        if variant == "torch_autocast":
            return torch.autocast(device_type, dtype=policy.lower_dtype)
        if variant == "manual_autocast":
            return ManualAutocast(policy)
        return contextlib.nullcontext()

    def check(self, ctx) -> None:
        self.check_probes(ctx, "cpu")
        self.check_model(ctx, torch.device("cpu"))
        if ctx.require("cuda", part="float16 policy on real CUDA tensors (values and model trace)"):
            self.check_probes(ctx, "cuda")
            self.check_model(ctx, torch.device("cuda"))
        else:  # no GPU: fake CUDA tensors still go through the AutocastCUDA kernels (dtypes only)
            self.check_probes(ctx, "cuda", fake=True)

    def check_probes(self, ctx, device_type: str, fake: bool = False) -> None:
        policy = self.policies[device_type]
        low = str(policy.lower_dtype).replace("torch.", "")
        what = f"{device_type} {low}" + (" (fake tensors, dtypes)" if fake else "")
        bad = compare_policy(policy)
        ctx.metric(f"probes.{device_type}", len(PROBES))
        eg = "; ".join(f"{m.op} [{m.variant}]: autocast {m.reference}, policy {m.manual} {m.detail}" for m in bad[:4])
        msg = f"{what}: {len(bad)} probe results differ from torch.autocast, e.g. {eg}"
        ctx.expect(not bad, msg, name=f"policy = autocast op by op ({what})")
        if not fake:
            ctx.table(f"cast policy ({device_type}, {low})", policy_rows(policy))

    def check_model(self, ctx, device: torch.device) -> None:
        cfg = ctx.configs[0]
        traces, results = {}, {}
        for v in ("torch_autocast", "manual_autocast"):
            model, x, y = block_setup(cfg.batch, cfg.seq, cfg.dim, cfg.classes, device, ctx.rng_seed)
            traces[v], *results[v] = traced_backward(model, x, y, self.autocast(v, device.type))
        ref, own = traces["torch_autocast"], traces["manual_autocast"]
        first = next((i for i, (a, b) in enumerate(zip(ref, own)) if a != b), min(len(ref), len(own)))
        ctx.expect(
            ref == own,
            f"{device.type}: op {first} differs: autocast {ref[first : first + 2]}, policy "
            f"{own[first : first + 2]} ({len(ref)} vs {len(own)} ops)",
            name=f"model trace: same ops in the same dtypes ({device.type})",
        )
        low = str(self.policies[device.type].lower_dtype).replace("torch.", "")
        ctx.expect(
            any(low in dts for _, dts in ref) and any("float32" in dts for _, dts in ref),
            f"{device.type}: the autocast trace should mix {low} and float32 ops",
            name="the trace is mixed",
        )
        ctx.metric(f"model_trace_ops.{device.type}", len(ref))
        name = f"model loss and gradients bit-identical ({device.type})"
        ctx.assert_close(results["manual_autocast"], results["torch_autocast"], rtol=0.0, atol=0.0, name=name)

    def prepare(self, ctx, impl: str, config: BlockConfig) -> Prepared:
        model, x, y = block_setup(config.batch, config.seq, config.dim, config.classes, ctx.device, ctx.rng_seed)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        step = lambda: block_step(model, opt, x, y, lambda: self.autocast(impl, ctx.device.type))
        return Prepared(fn=step, items=config.batch * config.seq, item_unit="tokens")
