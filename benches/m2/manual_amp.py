"""m2 Automatic mixed precision by hand, with autocast's rules.

``kernels/amp/policy.py`` writes autocast's rules out as an explicit ``CastPolicy`` (which ops run
in the low-precision dtype, which in float32, which at the widest input type; tables read
off aten/src/ATen/autocast_mode.cpp of this torch version) and applies it with
``ManualAutocast``, a ``TorchFunctionMode`` that casts each call's arguments by hand while
torch's autocast is off.

Check:

* op by op: every probe of ``kernels.amp.probe`` (54 ops: matmuls, convolutions, losses,
  reductions, softmax, norms, cat/stack, ...) in four input variants (float32,
  bfloat16, mixed, float64), once under ``torch.autocast("cpu", bfloat16)`` and once under
  ``ManualAutocast(CPU_BF16_POLICY)``: same output dtype (or the same exception type),
  bit-identical values;
* on a model: a small attention block (Linear, GELU, LayerNorm, softmax attention,
  cross-entropy) runs forward and backward under both while a ``TorchDispatchMode``
  records every aten op and its output dtypes: the two sequences must be identical op
  for op (casts included), and the loss and all gradients bit-identical;
* float16 policy for CUDA: without a GPU its dtypes are checked op by op on fake CUDA
  tensors (``FakeTensorMode`` routes them through the real AutocastCUDA kernels); on a
  machine with CUDA (``ctx.require("cuda")``) the probes and the model trace run on real
  tensors, values included.

Bench: one training step (forward, backward, SGD step) of the block at a benchmark size:
float32 (baseline), ``torch.autocast`` bfloat16 (float16 on CUDA) and ``ManualAutocast``
with the same policy.

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
import torch.nn.functional as F

from harness import Comparison, Prepared, task
from harness.claims import speedup, time_ratio
from harness.mutants import Mutant
from kernels.amp.policy import CPU_BF16_POLICY, CUDA_FP16_POLICY, CastPolicy, ManualAutocast
from kernels.amp.probe import PROBES, compare_policy
from kernels.amp.trace import OpRecorder
from models.attention_block import AttentionBlock

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


# -- wrong policies (the mutants) ---------------------------------------------------------------
_SOFTMAX_LOW = dataclasses.replace(CPU_BF16_POLICY, lower_precision_fp=CPU_BF16_POLICY.lower_precision_fp | {"softmax"})
_LINEAR_FP32 = dataclasses.replace(CPU_BF16_POLICY, lower_precision_fp=CPU_BF16_POLICY.lower_precision_fp - {"linear"})
_CUDA_LN_LOW = dataclasses.replace(
    CUDA_FP16_POLICY,
    fp32=CUDA_FP16_POLICY.fp32 - {"layer_norm"},
    lower_precision_fp=CUDA_FP16_POLICY.lower_precision_fp | {"layer_norm"},
)


def _setup(config: BlockConfig, device, seed: int):
    torch.manual_seed(seed)
    model = AttentionBlock(config.dim, config.classes).to(device)  # float32 master weights, as AMP keeps them
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(config.batch, config.seq, config.dim, generator=g).to(device)
    y = torch.randint(0, config.classes, (config.batch, config.seq), generator=g).to(device)
    return model, x, y


def _loss(model, x, y):
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())  # (B*T, classes), (B*T,)


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
        Mutant(
            "softmax_in_bfloat16",
            "softmax cast to bfloat16 on CPU",
            {"policies": {"cpu": _SOFTMAX_LOW, "cuda": CUDA_FP16_POLICY}},
            match="softmax",
        ),
        Mutant(
            "linear_left_in_float32",
            "linear not cast down on CPU",
            {"policies": {"cpu": _LINEAR_FP32, "cuda": CUDA_FP16_POLICY}},
            match="linear",
        ),
        Mutant(
            "cuda_layer_norm_in_float16",
            "layer_norm in float16 on CUDA",
            {"policies": {"cpu": CPU_BF16_POLICY, "cuda": _CUDA_LN_LOW}},
            match="cuda float16",
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

    # -- check ---------------------------------------------------------------------------------
    def check(self, ctx) -> None:
        self.check_probes(ctx, "cpu")
        self.check_model(ctx, torch.device("cpu"))
        if ctx.require("cuda", part="float16 policy on real CUDA tensors (values and model trace)"):
            self.check_probes(ctx, "cuda")
            self.check_model(ctx, torch.device("cuda"))
        else:
            # no GPU: fake CUDA tensors still go through the AutocastCUDA kernels (dtypes only)
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
            one = (torch.ones(1, device=device_type),)
            runs_in = {
                p.name: str(policy.compute_dtype(p.name, one) or "(unchanged)").replace("torch.", "") for p in PROBES
            }
            rows = [
                {"op": p.name, "category": policy.category(p.name), "float32 input runs in": runs_in[p.name]}
                for p in PROBES
            ]
            ctx.table(f"cast policy ({device_type}, {low})", rows)

    def check_model(self, ctx, device: torch.device) -> None:
        cfg = ctx.configs[0]
        traces, results = {}, {}
        for v in ("torch_autocast", "manual_autocast"):
            model, x, y = _setup(cfg, device, ctx.rng_seed)
            rec = OpRecorder()
            with rec:
                with self.autocast(v, device.type):
                    loss = _loss(model, x, y)
                loss.backward()
            traces[v] = rec.ops
            results[v] = (loss.detach(), [p.grad for p in model.parameters()])
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

    # -- bench ---------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: BlockConfig) -> Prepared:
        model, x, y = _setup(config, ctx.device, ctx.rng_seed)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            with self.autocast(impl, ctx.device.type):
                loss = _loss(model, x, y)
            loss.backward()
            opt.step()

        return Prepared(fn=step, items=config.batch * config.seq, item_unit="tokens")
