"""m2 Dynamic loss scaling.

Why: float16 gradients flush to zero below ~6e-8 (subnormals end at 2^-24), so mixed
precision training multiplies the loss by a scale S before backward and divides the
gradients by S before the step (Micikevicius et al. 2018, "Mixed Precision Training").
S adapts: an inf/NaN step is skipped and S backs off; after ``growth_interval`` clean steps
S grows. ``kernels.amp.scaler.DynamicLossScaler`` does this by hand (GradScaler's interface).

Check: the hand scaler and ``torch.amp.GradScaler`` drive two identical models (Linear
6 -> 4 -> 3, SGD with momentum, so a wrongly taken step also corrupts the momentum) through
one script of 24 iterations: clean gradients, an inf or a NaN planted in one scaled
gradient entry (what an fp16 overflow produces), runs of clean steps long enough to grow,
and iterations that ``unscale_`` and clip before ``step``; once with growth 2, backoff 0.5,
interval 3 from S = 1024 and once with 1.7, 0.3, 2 from S = 3 (where float32 rounding of S
shows). After every iteration S, the growth tracker, the skip decision and every weight are
bit-identical between the two, no weight is inf/NaN, a skipped step leaves the weights
untouched, and S is the value the rule predicts. On float16, a loss of ~1e-7 gives
gradients mostly 0 without scaling and almost none with S = 2^16 (fractions recorded).

Bench: one MLP step without a scaler (baseline), with GradScaler and with the hand scaler.

Lesson: the scaler's cost is per gradient *tensor*, not per element: GradScaler checks and
unscales all gradients in one fused ``_amp_foreach_non_finite_check_and_unscale_`` call,
while the hand version runs an ``isfinite().all()`` and a ``mul_`` per tensor from Python;
both pay one host sync per step to decide whether to skip, so on a wide model the overhead
disappears in the matmuls. Exactness needs care: S lives in float32 and is updated in
float64 then rounded (S = 3 x 1.7 is float32(5.1), not float32(3) x float32(1.7)); the
script at growth 1.7 / backoff 0.3 matches GradScaler bit for bit only because of that
(``torch.amp.GradScaler`` docs and torch/amp/grad_scaler.py).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from harness import Comparison, Prepared, task
from harness.claims import metric, time_ratio
from harness.mutants import Mutant
from kernels.amp.scaler import DynamicLossScaler
from kernels.amp.underflow import fp16_zero_grad_fractions
from kernels.optim.clipping import clip_grad_norm_
from models.mlp import MLP, MLPConfig

#: the scripted sequence: what each iteration's scaled gradients contain, and whether it
#: unscales + clips before the step ("finite+clip")
SCRIPT = tuple(
    "finite finite finite finite inf finite nan finite finite finite+clip finite finite finite inf inf finite "
    "finite+clip nan finite finite finite finite inf finite".split()
)


_RESCUED = "with S = 2^16, <= 5% of a ~1e-7 float16 loss's weight gradients are 0"
_LOST = "without scaling, >= 50% of that float16 loss's weight gradients underflow to 0"
_COST = "{} costs <= 30% of a step on the wide MLP (per-tensor, not per-element, overhead)"
_SAME_SCALE = "scale equals GradScaler's"
_NEVER_SKIPS = "a weight became inf/NaN"


#: GradScaler arguments of the two runs of the script
SETTINGS = (
    dict(init_scale=1024.0, growth_factor=2.0, backoff_factor=0.5, growth_interval=3),
    dict(init_scale=3.0, growth_factor=1.7, backoff_factor=0.3, growth_interval=2),
)


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """An MLP training step: batch (B, width) through ``depth`` Linear+ReLU layers."""

    width: int
    """features of the input and every hidden layer"""
    depth: int
    """hidden Linear+ReLU layers"""
    batch: int
    """samples per step"""

    def label(self) -> str:
        return f"{self.depth}x{self.width},B={self.batch}"


def _mlp(config: StepConfig, device, dtype, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return MLP(MLPConfig(config.width, (config.width,) * config.depth, out_features=10)).to(device, dtype)


def _tiny(device, dtype, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 3)).to(device, dtype)


EXACT = {"rtol": 0.0, "atol": 0.0}


def _f32(x: float) -> float:
    return float(torch.tensor(x, dtype=torch.float32))


# -- wrong scalers (the mutants) -----------------------------------------------------------------
class NeverGrows(DynamicLossScaler):
    """WRONG: backs off on overflow but never grows the scale again."""

    def update(self, new_scale=None):
        before = self._scale
        super().update(new_scale)
        self._scale = min(self._scale, before)


class NeverSkips(DynamicLossScaler):
    """WRONG: adapts the scale but takes every step, inf/NaN gradients included."""

    def step(self, optimizer, *args, **kwargs):
        st = self._state(optimizer)
        if st["stage"].name == "READY":
            self.unscale_(optimizer)
        st["stage"] = type(st["stage"])["STEPPED"]
        return optimizer.step(*args, **kwargs)


class Float64Scale(DynamicLossScaler):
    """WRONG: keeps S as a Python float (float64): drifts from GradScaler at growth 1.7."""

    def update(self, new_scale=None):
        found = any(st["found_inf"] for st in self._opt_state.values())
        self.last_step_skipped = found
        self.skipped_steps += int(found)
        grow = not found and self._growth_tracker + 1 == self.growth_interval
        self._scale *= self.backoff_factor if found else (self.growth_factor if grow else 1.0)
        self._growth_tracker = 0 if found or grow else self._growth_tracker + 1
        self._opt_state = {}


@task("m2.loss_scaling", seed="m2", title="dynamic loss scaling")
class LossScaling(Comparison):
    __doc__ = __doc__
    variants = ("no_scaler", "torch_grad_scaler", "own_scaler")
    sizes = {
        "tiny": StepConfig(width=32, depth=2, batch=16),
        "cpu": [StepConfig(width=64, depth=8, batch=64), StepConfig(width=512, depth=4, batch=256)],
        "gpu": [StepConfig(width=64, depth=8, batch=64), StepConfig(width=4096, depth=4, batch=4096)],
    }
    metrics = {
        "fp16_zero_grad_fraction.scaled_2^16": "share of float16 weight gradients that are 0 with S = 2^16",
        "fp16_zero_grad_fraction.unscaled": "share of float16 weight gradients that are 0 without scaling",
    }
    claims = (
        metric("fp16_zero_grad_fraction.scaled_2^16", "<=", 0.05, text=_RESCUED),
        metric("fp16_zero_grad_fraction.unscaled", ">=", 0.5, text=_LOST),
        time_ratio("own_scaler", to="no_scaler", at_most=1.3, text=_COST.format("the hand scaler")),
        time_ratio("torch_grad_scaler", to="no_scaler", at_most=1.3, text=_COST.format("GradScaler")),
    )
    #: the scaler under test (the mutants swap in wrong ones)
    scaler_cls = DynamicLossScaler
    mutants = (
        Mutant("never_grows", "backs off but never grows S", {"scaler_cls": NeverGrows}, match="scale"),
        Mutant("never_skips", "steps on inf/NaN gradients", {"scaler_cls": NeverSkips}, match=_NEVER_SKIPS),
        Mutant("float64_scale", "S kept in float64", {"scaler_cls": Float64Scale}, match="S0=3"),
    )

    # -- check ---------------------------------------------------------------------------------
    def check(self, ctx) -> None:
        for settings in SETTINGS:
            self.run_script(ctx, settings)
        self.check_underflow(ctx)

    def run_script(self, ctx, st: dict) -> None:
        g = ctx.generator()
        x = torch.randn(len(SCRIPT), 8, 6, generator=g, dtype=ctx.dtype).to(ctx.device)  # (steps, B, 6)
        y = torch.randint(0, 3, (len(SCRIPT), 8), generator=g).to(ctx.device)
        models = [_tiny(ctx.device, ctx.dtype, ctx.rng_seed) for _ in range(2)]
        opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in models]
        own = self.scaler_cls(**st)
        ref = torch.amp.GradScaler(ctx.device.type, **st)
        expect_scale, clean = _f32(st["init_scale"]), 0
        tag = f"S0={st['init_scale']:g}, growth {st['growth_factor']}, backoff {st['backoff_factor']}"
        tag += f", interval {st['growth_interval']}"
        for i, event in enumerate(SCRIPT):
            before = [p.detach().clone() for p in models[0].parameters()]
            for model, opt, scaler in ((models[0], opts[0], own), (models[1], opts[1], ref)):
                opt.zero_grad(set_to_none=True)
                scaler.scale(F.cross_entropy(model(x[i]), y[i])).backward()
                if event in ("inf", "nan"):  # an overflow in one scaled gradient entry
                    model[0].weight.grad[1, 2] = float(event)
                if event.endswith("+clip"):
                    scaler.unscale_(opt)
                    clip_grad_norm_(model.parameters(), max_norm=0.5)
                scaler.step(opt)
                scaler.update()
            bad = event in ("inf", "nan")
            expect_scale = _f32(expect_scale * st["backoff_factor"]) if bad else expect_scale
            clean = 0 if bad else clean + 1
            if clean == st["growth_interval"]:
                expect_scale, clean = _f32(expect_scale * st["growth_factor"]), 0
            where = f"{tag}, iteration {i} ({event})"
            s_own, s_ref = own.get_scale(), ref.get_scale()
            t_own, t_ref = own.get_growth_tracker(), ref._get_growth_tracker()
            ctx.expect(s_own == s_ref, f"{where}: scale {s_own!r}, GradScaler {s_ref!r}", name=_SAME_SCALE)
            msg = f"{where}: growth tracker {t_own}, GradScaler {t_ref}"
            ctx.expect(t_own == t_ref, msg, name="growth tracker equals GradScaler's")
            msg = f"{where}: scale {s_own!r}, the script predicts {expect_scale!r} (grow after "
            msg += f"{st['growth_interval']} clean steps, back off on inf/NaN)"
            ctx.expect(s_own == expect_scale, msg, name="scale follows the rule")
            msg = f"{where}: last_step_skipped={own.last_step_skipped}"
            ctx.expect(own.last_step_skipped == bad, msg, name="skips exactly the inf/NaN steps")
            for p, q, b in zip(models[0].parameters(), models[1].parameters(), before, strict=True):
                ctx.expect(bool(torch.isfinite(p).all()), f"{where}: {_NEVER_SKIPS}", name="no NaN/inf in the weights")
                ctx.assert_close(p, q, name="weights equal GradScaler's run", where=where, **EXACT)
                if bad:
                    ctx.assert_close(p, b, name="skipped step leaves weights untouched", where=where, **EXACT)
        ctx.metric(f"final_scale.S0={st['init_scale']:g}", own.get_scale())
        ctx.metric(f"skipped_steps.S0={st['init_scale']:g}", own.skipped_steps)

    def check_underflow(self, ctx) -> None:
        """Why scale at all: a small float16 loss's gradients underflow to 0 without it."""
        zeros = fp16_zero_grad_fractions(ctx.device, ctx.rng_seed)
        ctx.metric("fp16_zero_grad_fraction.unscaled", zeros[1.0])
        ctx.metric("fp16_zero_grad_fraction.scaled_2^16", zeros[2.0**16])
        msg = f"float16 gradients: {zeros[1.0]:.0%} zero without scaling, {zeros[2.0**16]:.0%} with S=2^16"
        ctx.expect(zeros[1.0] > 0.5 and zeros[2.0**16] < 0.05, msg, name="scaling rescues float16 gradients")

    # -- bench ---------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: StepConfig) -> Prepared:
        model = _mlp(config, ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        g = ctx.generator(1)
        x = torch.randn(config.batch, config.width, generator=g, dtype=ctx.dtype).to(ctx.device)
        y = torch.randint(0, 10, (config.batch,), generator=g).to(ctx.device)
        scaler = {"no_scaler": None, "torch_grad_scaler": torch.amp.GradScaler(ctx.device.type)}.get(impl)
        scaler = self.scaler_cls() if impl == "own_scaler" else scaler

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            if scaler is None:
                loss.backward()
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()

        step()
        return Prepared(fn=step, items=config.batch, item_unit="samples")

    def bench(self, ctx) -> None:
        super().bench(ctx)
        self.check_underflow(ctx)  # the fractions the claims read: deterministic, cheap
