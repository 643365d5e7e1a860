"""8.01 Mixed precision with torch.amp: autocast's op lists and the GradScaler.

Compared: one training step of a small MLP in float32 and under ``torch.autocast``
(bfloat16 on a CPU, float16 with a ``torch.amp.GradScaler`` on a GPU): the library path,
beside the hand-written policy of ``m2.manual_amp``.

Check:

* op by op, float32 inputs under ``torch.autocast``: the ops on the documented
  lower-precision list (``matmul``, ``linear``, ``bmm``, ``conv2d``) return the low dtype;
  ``softmax``, ``log_softmax`` and ``layer_norm`` stay float32 (on a CPU because they are on
  neither list, so a float32 input stays float32); losses on the float32 list
  (``mse_loss``, ``cross_entropy``, ``nll_loss``) return float32 even from low-precision
  inputs. On CUDA (``ctx.require("cuda")``) float16 inputs of softmax, log_softmax and
  layer_norm come back float32 (they are on the CUDA float32 list, not the CPU one);
* the scaler: a step whose gradients hold inf is skipped (parameters unchanged) and halves
  the scale; ``growth_interval`` clean steps in a row double it;
* ``unscale_`` happens before clipping: after the step, the update equals the float32
  update with the *true* gradient clipped to ``max_norm``.

Bench: the step in float32 and under autocast; ``torch.backends.cpu.get_cpu_capability()``
is recorded as a note.

Lesson: autocast is a list, not a switch. Matmul-like ops run in the low dtype, where the
hardware has fast dot products; reductions, normalisations and losses stay in float32 (the
lists: PyTorch docs, "Automatic Mixed Precision package - torch.amp", "Autocast Op
Reference", per device). The speed comes only from native low-precision units: NVIDIA's
DeepLearningExamples ResNet-50 on one A100 trains at 938 img/s in TF32 and 2,470 img/s with
AMP. On a CPU with AVX2 only (no AVX512-BF16, no AMX) bfloat16 matmuls are emulated and far
slower than float32: a lesson about the hardware, not a failure of the step. float16 needs
the scaler (its range ends at 65,504, small gradients underflow); the scaler must unscale
before clipping, or the clip threshold applies to gradients multiplied by the scale.
"""

from __future__ import annotations

import contextlib
import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from harness import Comparison, Prepared, task
from harness.claims import speedup
from harness.mutants import Mutant
from kernels.amp.documented import LOW, documented_probes, run_op


@dataclasses.dataclass(frozen=True)
class AmpConfig:
    """An MLP of ``layers`` Linear(dim, dim) + GELU blocks, classifying into 10."""

    batch: int
    """B: samples per step"""
    dim: int
    """D: width of every layer"""
    layers: int = 2
    """hidden Linear layers"""

    def label(self) -> str:
        return f"B={self.batch},D={self.dim},L={self.layers}"


def _mlp(cfg: AmpConfig, device, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    blocks = [m for _ in range(cfg.layers) for m in (nn.Linear(cfg.dim, cfg.dim), nn.GELU())]
    return nn.Sequential(*blocks, nn.LayerNorm(cfg.dim), nn.Linear(cfg.dim, 10)).to(device)


# -- wrong versions (the check must reject each) -------------------------------------------
def _clip_before_unscale(model, opt, scaler, loss, max_norm):
    scaler.scale(loss).backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)  # clips scaled gradients
    scaler.unscale_(opt)
    scaler.step(opt)
    scaler.update()


def _step_on_inf(model, opt, scaler, loss, max_norm):
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    opt.step()  # ignores the scaler's inf check
    scaler.update()


@task("advanced.amp", seed="8.01", title="mixed precision with torch.amp (torch.cuda.amp on GPU)")
class Amp(Comparison):
    __doc__ = __doc__
    variants = ("float32", "autocast")
    gpu_check = True  # the CUDA float16 lists and scaler run behind ctx.require("cuda")
    sizes = {
        "tiny": AmpConfig(batch=8, dim=32),
        "cpu": AmpConfig(batch=64, dim=256),
        "gpu": AmpConfig(batch=512, dim=4096, layers=4),
    }
    claims = (
        speedup(
            "autocast",
            over="float32",
            at_least=1.5,
            device="cuda",
            text="the float16 autocast step >= 1.5x the float32 step on a GPU with tensor cores",
        ),
    )

    @staticmethod
    def autocast(dev: str, on: bool = True):
        return torch.autocast(dev, dtype=LOW[dev]) if on else contextlib.nullcontext()

    @staticmethod
    def scaled_step(model, opt, scaler, loss, max_norm):
        """The documented order: scale, backward, unscale_, clip, step (skipped on inf), update."""
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        scaler.step(opt)
        scaler.update()

    mutants = (
        Mutant(
            "clip_before_unscale",
            "gradients clipped while still multiplied by the scale",
            {"scaled_step": staticmethod(_clip_before_unscale)},
            match="unscale",
        ),
        Mutant(
            "step_on_inf",
            "optimizer stepped on inf gradients",
            {"scaled_step": staticmethod(_step_on_inf)},
            match="skipped",
        ),
        Mutant(
            "autocast_off",
            "the autocast region does nothing",
            {"autocast": staticmethod(lambda dev, on=True: contextlib.nullcontext())},
            match="op dtype",
        ),
    )

    def check(self, ctx):
        devices = ["cpu"]
        if ctx.require("cuda", part="float16 op lists and GradScaler on CUDA"):
            devices.append("cuda")
        for dev in devices:
            self._check_ops(ctx, dev)
            self._check_scaler(ctx, dev)

    def _check_ops(self, ctx, dev):
        g = ctx.generator()
        x32 = torch.randn(4, 8, generator=g).to(dev)
        t = torch.randint(0, 8, (4,), generator=g).to(dev)
        rows, bad = [], []
        for op, src, want in documented_probes(dev):
            x = x32 if src == "float32" else x32.to(LOW[dev])
            with self.autocast(dev):
                got = run_op(op, x, t).dtype
            rows.append({"device": dev, "op": op, "input": str(x.dtype)[6:], "output": str(got)[6:]})
            if got != want:
                bad.append(f"{op}({str(x.dtype)[6:]}) -> {str(got)[6:]}, documented {str(want)[6:]}")
        ctx.table(f"autocast op dtypes ({dev})", rows)
        ctx.expect(not bad, f"{dev}: op dtype differs from the list: {'; '.join(bad)}", name=f"op dtypes ({dev})")

    def _check_scaler(self, ctx, dev):
        cfg, max_norm, interval = ctx.configs[0], 0.05, 3
        model = _mlp(cfg, dev, ctx.rng_seed)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        scaler = torch.amp.GradScaler(dev, init_scale=2.0**10, growth_interval=interval)
        g = ctx.generator(1)
        x = torch.randn(cfg.batch, cfg.dim, generator=g).to(dev)
        y = torch.randint(0, 10, (cfg.batch,), generator=g).to(dev)
        # the reference: float32 gradient of the same autocast loss, clipped to max_norm, lr 1
        ref = _mlp(cfg, dev, ctx.rng_seed)
        with self.autocast(dev):
            F.cross_entropy(ref(x), y).backward()
        nn.utils.clip_grad_norm_(ref.parameters(), max_norm)
        want = [p.detach() - p.grad for p in ref.parameters()]
        scales, expected, scale, clean = [], [], 2.0**10, 0
        for k, bad in enumerate((False, True, False, False, False)):
            before = [p.detach().clone() for p in model.parameters()]
            opt.zero_grad(set_to_none=True)
            xb = x.clone()
            if bad:
                xb[0, 0] = float("inf")  # the loss, hence every gradient, is non-finite
            with self.autocast(dev):
                loss = F.cross_entropy(model(xb), y)
            self.scaled_step(model, opt, scaler, loss, max_norm)
            same = all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
            finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
            if bad:
                ctx.expect(
                    same and finite, f"{dev}: step {k} had inf gradients but was not skipped", name="inf step skipped"
                )
            elif k == 0:
                got = [p.detach() for p in model.parameters()]
                ctx.assert_close(got, want, name=f"unscale before clipping ({dev})", rtol=1e-3, atol=1e-4)
            else:
                ctx.expect(not same, f"{dev}: clean step {k} changed nothing", name="clean steps taken")
            clean = 0 if bad else clean + 1
            scale = scale * 0.5 if bad else (scale * 2 if clean == interval else scale)
            clean = 0 if clean == interval else clean
            scales.append(scaler.get_scale())
            expected.append(scale)
        ctx.expect(
            scales == expected,
            f"{dev}: scale after each step {scales}, expected {expected} (halve on inf, double after {interval})",
            name="scale: backoff and growth",
        )

    def prepare(self, ctx, impl, config):
        dev = ctx.device.type
        model = _mlp(config, ctx.device, ctx.rng_seed)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        on = impl == "autocast"
        scaler = torch.amp.GradScaler(dev, enabled=on and LOW[dev] == torch.float16)  # bf16 needs no scaling
        x = torch.randn(config.batch, config.dim, generator=ctx.generator()).to(ctx.device)
        y = torch.randint(0, 10, (config.batch,), generator=ctx.generator(1)).to(ctx.device)
        cap = torch.backends.cpu.get_cpu_capability()
        note = f"CPU capability: {cap}" + (
            " (no native bfloat16 dot products: slower than float32)" if cap in ("AVX2", "DEFAULT") else ""
        )
        if note not in ctx.record.notes:
            ctx.note(note)

        def step():
            opt.zero_grad(set_to_none=True)
            with self.autocast(dev, on):
                loss = F.cross_entropy(model(x), y)
            self.scaled_step(model, opt, scaler, loss, 1.0)

        flops = 6 * config.batch * config.dim * (config.dim * config.layers + 10)  # fwd + bwd matmuls
        return Prepared(fn=step, flops=flops, items=config.batch, item_unit="samples")
