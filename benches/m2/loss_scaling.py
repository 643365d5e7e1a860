"""m2 Dynamic loss scaling.

Why: float16 gradients flush to zero below ~6e-8 (subnormals end at 2^-24), so mixed
precision training multiplies the loss by a scale S before backward and divides the
gradients by S before the step (Micikevicius et al. 2018, "Mixed Precision Training").
S adapts: a step whose scaled gradients hold inf/NaN is skipped and S is multiplied by the
backoff factor; after ``growth_interval`` clean steps in a row S is multiplied by the
growth factor. ``kernels.amp.scaler.DynamicLossScaler`` does this by hand with
``torch.amp.GradScaler``'s interface.

Check: the hand scaler and ``torch.amp.GradScaler("cpu")`` drive two identical models
(Linear 6 -> 4 -> 3, SGD with momentum, so a step that is wrongly taken also corrupts the
momentum) through the same scripted sequence of 24 iterations: clean gradients, an inf or
a NaN planted in one scaled gradient entry after backward (what an fp16 overflow
produces), runs of clean steps long enough to grow, and iterations that call
``unscale_`` and clip before ``step``. The script runs twice: with growth 2, backoff 0.5,
interval 3 from S = 1024, and with growth 1.7, backoff 0.3, interval 2 from S = 3 (where
float32 rounding of S shows). After every iteration: S, the growth tracker, whether the
step was skipped and every weight are identical between the two (bit for bit), no weight
is inf/NaN, a skipped step leaves the weights untouched, S equals the value predicted
from the script (x growth after exactly ``interval`` clean steps, x backoff on every
inf/NaN). The reason for it all is shown on float16: a loss scaled down to ~1e-7
gives gradients of which more than half are 0 without scaling and almost none with
S = 2^16 (the fractions are recorded).

Bench: one training step (forward, backward, step) of an MLP without a scaler
(baseline), with ``torch.amp.GradScaler`` and with the hand scaler: the overhead of
scaling the loss, the inf/NaN check (one reduction per gradient, one host sync) and the
unscale multiply.

Lesson (2-core CPU VM shared with other jobs, OMP_NUM_THREADS=1, float32, ``drills bench
--task m2.loss_scaling``, medians of the second of two runs, IQRs 15-50%; the first run's
small-model figures were inverted by the load, so treat them as rough): 8 layers of
width 64, B = 64 (18 gradient tensors): no scaler 2.3 ms, GradScaler 3.0 ms, own 4.3 ms
per step; 4 layers of width 512, B = 256: 52 / 65 / 69 ms. The scaler's cost is per
gradient *tensor*, not per element: GradScaler checks and unscales all gradients in one
fused ``_amp_foreach_non_finite_check_and_unscale_`` call, while the hand version runs an
``isfinite().all()`` and a ``mul_`` per tensor from Python (about twice GradScaler's
overhead on the small model); both pay one host sync per step to decide whether to
skip. Exactness needs care: S lives in float32 and is updated in float64 then rounded
(S = 3 x 1.7 is float32(5.1), not float32(3) x float32(1.7)); the script run at
growth 1.7 / backoff 0.3 matches GradScaler bit for bit only because of that. Measured in
the check: a ~1e-7 float16 loss leaves 100% of the weight gradients at 0 without scaling
and 0% with S = 2^16.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from harness import Comparison, Prepared, task
from kernels.amp.scaler import DynamicLossScaler
from kernels.optim.clipping import clip_grad_norm_

#: the scripted sequence: what each iteration's scaled gradients contain, and whether it
#: unscales + clips before the step ("finite+clip")
SCRIPT = (
    "finite",
    "finite",
    "finite",
    "finite",
    "inf",
    "finite",
    "nan",
    "finite",
    "finite",
    "finite+clip",
    "finite",
    "finite",
    "finite",
    "inf",
    "inf",
    "finite",
    "finite+clip",
    "nan",
    "finite",
    "finite",
    "finite",
    "finite",
    "inf",
    "finite",
)


@dataclasses.dataclass(frozen=True)
class ScalerSettings:
    """GradScaler arguments for one run of the script."""

    init_scale: float
    """initial S"""
    growth_factor: float
    """S multiplier after growth_interval clean steps (> 1)"""
    backoff_factor: float
    """S multiplier on an inf/NaN step, in (0, 1)"""
    growth_interval: int
    """clean steps in a row before S grows"""

    def kwargs(self) -> dict:
        return dataclasses.asdict(self)


SETTINGS = (ScalerSettings(1024.0, 2.0, 0.5, 3), ScalerSettings(3.0, 1.7, 0.3, 2))


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
    layers = []
    for _ in range(config.depth):
        layers += [nn.Linear(config.width, config.width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(config.width, 10)).to(device, dtype)


def _f32(x: float) -> float:
    return float(torch.tensor(x, dtype=torch.float32))


@task("m2.loss_scaling", seed="m2", title="dynamic loss scaling")
class LossScaling(Comparison):
    __doc__ = __doc__
    variants = ("no_scaler", "torch_grad_scaler", "own_scaler")
    sizes = {
        "tiny": StepConfig(width=32, depth=2, batch=16),
        "cpu": [StepConfig(width=64, depth=8, batch=64), StepConfig(width=512, depth=4, batch=256)],
        "gpu": [StepConfig(width=64, depth=8, batch=64), StepConfig(width=4096, depth=4, batch=4096)],
    }
    #: the scaler under test (tests swap in broken ones)
    scaler_cls = DynamicLossScaler

    # -- check ---------------------------------------------------------------------------------
    def check(self, ctx) -> None:
        for settings in SETTINGS:
            self.run_script(ctx, settings)
        self.check_underflow(ctx)

    def run_script(self, ctx, st: ScalerSettings) -> None:
        g = ctx.generator()
        x = torch.randn(len(SCRIPT), 8, 6, generator=g, dtype=ctx.dtype).to(ctx.device)  # (steps, B, 6)
        y = torch.randint(0, 3, (len(SCRIPT), 8), generator=g).to(ctx.device)
        models, opts = [], []
        for _ in range(2):
            torch.manual_seed(ctx.rng_seed)
            m = nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 3)).to(ctx.device, ctx.dtype)
            models.append(m)
            opts.append(torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9))
        own = self.scaler_cls(**st.kwargs())
        ref = torch.amp.GradScaler(ctx.device.type, **st.kwargs())
        expect_scale, clean = _f32(st.init_scale), 0
        tag = (
            f"S0={st.init_scale:g}, growth {st.growth_factor}, backoff {st.backoff_factor}, "
            f"interval {st.growth_interval}"
        )
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
            expect_scale = _f32(expect_scale * st.backoff_factor) if bad else expect_scale
            clean = 0 if bad else clean + 1
            if clean == st.growth_interval:
                expect_scale, clean = _f32(expect_scale * st.growth_factor), 0
            where = f"{tag}, iteration {i} ({event})"
            ctx.expect(
                own.get_scale() == ref.get_scale(),
                f"{where}: scale {own.get_scale()!r}, GradScaler {ref.get_scale()!r}",
                name="scale equals GradScaler's",
            )
            ctx.expect(
                own.get_growth_tracker() == ref._get_growth_tracker(),
                f"{where}: growth tracker {own.get_growth_tracker()}, GradScaler {ref._get_growth_tracker()}",
                name="growth tracker equals GradScaler's",
            )
            ctx.expect(
                own.get_scale() == expect_scale,
                f"{where}: scale {own.get_scale()!r}, the script predicts {expect_scale!r} (grow after "
                f"{st.growth_interval} clean steps, back off on inf/NaN)",
                name="scale follows the rule",
            )
            ctx.expect(
                own.last_step_skipped == bad,
                f"{where}: last_step_skipped={own.last_step_skipped}",
                name="skips exactly the inf/NaN steps",
            )
            for p, q, b in zip(models[0].parameters(), models[1].parameters(), before):
                ctx.expect(
                    bool(torch.isfinite(p).all()),
                    f"{where}: a weight became inf/NaN",
                    name="no NaN/inf reaches the weights",
                )
                ctx.assert_close(p, q, name="weights equal GradScaler's run", where=where, rtol=0.0, atol=0.0)
                if bad:
                    ctx.assert_close(
                        p, b, name="skipped step leaves weights untouched", where=where, rtol=0.0, atol=0.0
                    )
        ctx.metric(f"final_scale.S0={st.init_scale:g}", own.get_scale())
        ctx.metric(f"skipped_steps.S0={st.init_scale:g}", own.skipped_steps)

    def check_underflow(self, ctx) -> None:
        """Why scale at all: a small float16 loss's gradients underflow to 0 without it."""
        torch.manual_seed(ctx.rng_seed)
        lin = nn.Linear(32, 8).to(ctx.device, torch.float16)
        x = torch.randn(64, 32, generator=ctx.generator(3)).to(ctx.device, torch.float16)
        zeros = {}
        for scale in (1.0, 2.0**16):
            lin.zero_grad(set_to_none=True)
            # a loss around 1e-7 (a mean of small squares, as late in training); float16 math
            loss = (lin(x) * 1e-4).pow(2).mean() * 1e-1
            (loss * scale).backward()
            zeros[scale] = (lin.weight.grad == 0).float().mean().item()
        ctx.metric("fp16_zero_grad_fraction.unscaled", zeros[1.0])
        ctx.metric("fp16_zero_grad_fraction.scaled_2^16", zeros[2.0**16])
        ctx.expect(
            zeros[1.0] > 0.5 and zeros[2.0**16] < 0.05,
            f"float16 gradients: {zeros[1.0]:.0%} zero without scaling, {zeros[2.0**16]:.0%} with S=2^16",
            name="scaling rescues float16 gradients from underflow",
        )

    # -- bench ---------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: StepConfig) -> Prepared:
        model = _mlp(config, ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        g = ctx.generator(1)
        x = torch.randn(config.batch, config.width, generator=g, dtype=ctx.dtype).to(ctx.device)
        y = torch.randint(0, 10, (config.batch,), generator=g).to(ctx.device)
        scaler = {
            "no_scaler": None,
            "torch_grad_scaler": torch.amp.GradScaler(ctx.device.type),
            "own_scaler": self.scaler_cls(),
        }[impl]

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
