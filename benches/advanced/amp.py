"""8.01 Mixed precision with torch.amp: autocast's op lists and the GradScaler.

Compared: one training step of a small MLP in float32 and under ``torch.autocast``
(bfloat16 on a CPU, float16 with a ``torch.amp.GradScaler`` on a GPU): the library path,
beside the hand-written policy of ``m2.manual_amp``.

Check: output dtypes under ``torch.autocast`` against the documented lists, op by op (on CUDA
too, behind ``ctx.require``); the scaler skips a step with inf gradients and halves the scale,
doubles it after ``growth_interval`` clean steps and unscales before clipping (the update is
float32's with the *true* gradient clipped).

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

from harness import Comparison, Prepared, task
from harness.claims import speedup
from harness.mutants import Mutant
from kernels.amp import steps
from kernels.amp.documented import LOW, probe_dtypes

_GPU = "the float16 autocast step >= 1.5x the float32 step on a GPU with tensor cores"


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
    claims = (speedup("autocast", over="float32", at_least=1.5, device="cuda", text=_GPU),)

    @staticmethod
    def autocast(dev: str, on: bool = True):
        return torch.autocast(dev, dtype=LOW[dev]) if on else contextlib.nullcontext()

    scaled_step = staticmethod(steps.scaled_step)

    mutants = (
        Mutant(
            "clip_before_unscale",
            "gradients clipped while still multiplied by the scale",
            {"scaled_step": staticmethod(steps.clip_before_unscale)},
            match="unscale",
        ),
        Mutant(
            "step_on_inf",
            "optimizer stepped on inf gradients",
            {"scaled_step": staticmethod(steps.step_on_inf)},
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
        cuda = ctx.require("cuda", part="float16 op lists and GradScaler on CUDA")
        for dev in ("cpu", "cuda") if cuda else ("cpu",):
            rows, bad = probe_dtypes(dev, self.autocast, ctx.generator())  # bad: ops off the documented dtype
            ctx.table(f"autocast op dtypes ({dev})", rows)
            ctx.expect(not bad, f"{dev}: op dtype differs from the list: {'; '.join(bad)}", name=f"op dtypes ({dev})")
            self._check_scaler(ctx, dev)

    def _check_scaler(self, ctx, dev):
        cfg, max_norm, interval = ctx.configs[0], 0.05, 3
        model = steps.mlp(cfg.dim, cfg.layers, seed=ctx.rng_seed).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        scaler = torch.amp.GradScaler(dev, init_scale=2.0**10, growth_interval=interval)
        g = ctx.generator(1)
        x = torch.randn(cfg.batch, cfg.dim, generator=g).to(dev)
        y = torch.randint(0, 10, (cfg.batch,), generator=g).to(dev)
        ref = steps.mlp(cfg.dim, cfg.layers, seed=ctx.rng_seed).to(
            dev
        )  # the reference: the true gradient clipped to max_norm, SGD lr 1
        ref_opt, on = torch.optim.SGD(ref.parameters(), lr=1.0), lambda: self.autocast(dev)
        steps.autocast_step(ref, ref_opt, None, x, y, on, steps.clipped_step, max_norm)
        want = [p.detach() for p in ref.parameters()]
        x_inf = x.clone()
        x_inf[0, 0] = float("inf")  # the loss, hence every gradient, is non-finite
        bad_steps, scales = [False, True, False, False, False], []
        for k, bad in enumerate(bad_steps):
            before = [p.detach().clone() for p in model.parameters()]
            steps.autocast_step(model, opt, scaler, x_inf if bad else x, y, on, self.scaled_step, max_norm)
            same = all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
            if bad:  # skipped: the weights untouched, hence finite
                skipped = same and all(bool(torch.isfinite(p).all()) for p in model.parameters())
                ctx.expect(skipped, f"{dev}: step {k} had inf gradients but was not skipped", name="inf step skipped")
            elif k == 0:
                got = [p.detach() for p in model.parameters()]
                ctx.assert_close(got, want, name=f"unscale before clipping ({dev})", rtol=1e-3, atol=1e-4)
            else:
                ctx.expect(not same, f"{dev}: clean step {k} changed nothing", name="clean steps taken")
            scales.append(scaler.get_scale())
        expected = steps.expected_scales(bad_steps, 2.0**10, interval)
        ctx.expect(
            scales == expected,
            f"{dev}: scale after each step {scales}, expected {expected} (halve on inf, double after {interval})",
            name="scale: backoff and growth",
        )

    def prepare(self, ctx, impl, config):
        dev = ctx.device.type
        model = steps.mlp(config.dim, config.layers, seed=ctx.rng_seed).to(ctx.device)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        on = impl == "autocast"
        scaler = torch.amp.GradScaler(dev, enabled=on and LOW[dev] == torch.float16)  # bf16 needs no scaling
        x = torch.randn(config.batch, config.dim, generator=ctx.generator()).to(ctx.device)
        y = torch.randint(0, 10, (config.batch,), generator=ctx.generator(1)).to(ctx.device)
        if (note := steps.cpu_capability_note()) not in ctx.record.notes:
            ctx.note(note)
        step = lambda: steps.autocast_step(model, opt, scaler, x, y, lambda: self.autocast(dev, on), self.scaled_step)
        flops = 6 * config.batch * config.dim * (config.dim * config.layers + 10)  # fwd + bwd matmuls
        return Prepared(fn=step, flops=flops, items=config.batch, item_unit="samples")
