"""2.09 Weight decay by hand: L2 and decoupled.

Two different things share the name (Loshchilov & Hutter 2019, "Decoupled Weight Decay
Regularization"):

* L2 regularisation adds (wd / 2) ||p||^2 to the loss, i.e. wd p to the gradient, *before*
  the optimizer sees it (``kernels.optim.weight_decay.l2_decay_``, or ``l2_penalty`` in the loss).
  For SGD this is ``torch.optim.SGD(weight_decay=wd)``.
* Decoupled decay shrinks the weights directly, p <- p (1 - lr wd), outside the gradient
  (``decoupled_decay_``), then takes the optimizer step without decay. With Adam this is
  ``torch.optim.AdamW``. For plain SGD the two coincide; for Adam they do not: L2's wd p
  enters the moments and gets divided by sqrt(v), so heavily-updated weights are decayed less.

Check (float64 to rtol = atol = 1e-12, float32 to the dtype table; 50 mini-batch steps of an
MLP 64-32-16-10 on sklearn's real 8x8 digits, parameters compared after every step):
L2 by hand (loop and foreach) + ``kernels.optim.optimizers.SGD`` without decay, and L2 written into the
loss, equal ``torch.optim.SGD(momentum=0.9, weight_decay=0.05)``; decoupled decay by hand
(loop and foreach) + ``kernels.optim.optimizers.Adam`` without decay equals ``torch.optim.AdamW(
weight_decay=0.1)``; and Adam with L2 (``torch.optim.Adam(weight_decay=0.1)``) must *differ*
from AdamW (by more than 1e-3 in some weight): the two decays are different algorithms.

Bench: one optimizer step on 10,091,040 parameters in 104 tensors (52 Linear(440, 440),
gradients fixed), for SGD with momentum and for AdamW: ``torch`` (baseline: torch.optim with
weight_decay, foreach=True), ``hand_loop`` / ``hand_foreach`` (the decay by hand, then the
hand optimizer of the same kind), ``no_decay`` (torch foreach without weight decay: what the
decay itself costs). Metrics ``time_ratio_<variant>_over_torch_config<i>``.

Lesson (2-core shared CPU VM, OMP_NUM_THREADS=1, float32, ``drills bench --task
autograd.weight_decay --no-save``; load average ~8 from other jobs, so each figure is the best
median of three runs, IQR 5-40%): SGD+momentum, 10M params / 104 tensors: torch (foreach,
weight_decay) 41.5 ms, hand_loop 36.9, hand_foreach 37.2, no_decay 25.5 (time ratios to torch
0.89 / 0.90 / 0.61; hand_loop was below torch in all three runs, 0.74-0.89); AdamW: 84.8 /
61.0 / 76.0 / 52.3 ms, but the AdamW rows reordered from run to run (no_decay even came out
slowest once), so read only "decay costs a pass" into them. Weight decay is one more full
pass over the parameters and on a memory-bound step that pass is a large share (no_decay
0.6x of SGD's time). torch's foreach SGD adds the decay out of place (``_foreach_add``
allocates a new 40 MB gradient list every step; see 2.04 for what that costs on CPU), where
the hand version adds into ``.grad`` in place. The check shows the other lesson: Adam with
L2 ends up to 0.75 away from AdamW in some weight after 50 steps (wd 0.1, lr 1e-2), while the
hand decays match torch bit for bit (L2 written into the loss: within 1.5e-16 in float64 and
6e-8 in float32, from autograd summing the two gradient terms).
"""

from __future__ import annotations

import dataclasses
import functools

import torch

import kernels.optim.optimizers as hand_optim
from harness import Comparison, Prepared, Tolerance, task
from harness.checks import tolerance_for
from harness.task import config_label
from kernels.optim.trajectory import bench_parameters, first_deviation, optimizer_trajectory, time_ratios
from kernels.optim.weight_decay import decoupled_decay_, l2_decay_, l2_penalty
from models.mlp import MLP, MLPConfig

STEPS = 50
SGD_HP = dict(lr=0.1, momentum=0.9)
SGD_WD = 0.05
ADAM_HP = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8)
ADAM_WD = 0.1


@dataclasses.dataclass(frozen=True)
class DecayBenchConfig:
    """One optimizer step with weight decay over ``n_layers`` Linear(width, width) layers."""

    optimizer: str
    """sgd (momentum 0.9, L2 decay) or adamw (decoupled decay)"""
    n_layers: int
    """Linear layers: 2 * n_layers parameter tensors"""
    width: int
    """features in and out of each layer"""
    weight_decay: float = 1e-2
    """decay coefficient wd"""
    lr: float = 1e-3
    """learning rate"""

    def label(self) -> str:
        n = self.n_layers * self.width * (self.width + 1)
        return f"{self.optimizer},{n / 1e6:.2g}M params in {2 * self.n_layers} tensors"


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from harness.data.tabular import load_digits_images

    images, labels = load_digits_images()
    return images.reshape(-1, 64).double() / 16.0, labels  # (1797, 64) in [0, 1], (1797,)


@task("autograd.weight_decay", seed="2.09", title="weight decay by hand (L2 and decoupled)")
class WeightDecay(Comparison):
    __doc__ = __doc__
    variants = ("torch", "hand_loop", "hand_foreach", "no_decay")
    check_dtypes = (torch.float64, torch.float32)
    # float64: the same ops in the same order; 1e-12 leaves room for a reordered sum
    tolerances = {torch.float64: Tolerance(rtol=1e-12, atol=1e-12)}
    sizes = {
        "tiny": [DecayBenchConfig("sgd", 4, 32), DecayBenchConfig("adamw", 4, 32)],
        "cpu": [DecayBenchConfig("sgd", 52, 440), DecayBenchConfig("adamw", 52, 440)],
        "gpu": [DecayBenchConfig("sgd", 52, 1024), DecayBenchConfig("adamw", 52, 1024)],
    }

    # -- the decays by hand; a test swaps in a wrong one ------------------------------------------
    def hand_decay(self, kind: str, params, *, lr: float, weight_decay: float, foreach: bool) -> None:
        """Apply ``kind`` ("l2" or "decoupled") decay to params (with gradients) in place."""
        if kind == "l2":
            l2_decay_(params, weight_decay, foreach=foreach)
        else:
            decoupled_decay_(params, lr, weight_decay, foreach=foreach)

    # -- check ----------------------------------------------------------------------------------------
    def _run(self, ctx, make_opt, *, before_step=None, loss_extra=None) -> torch.Tensor:
        """(STEPS, P) trajectory of the digits MLP under ``make_opt(params)``."""
        x, y = _digits()
        torch.manual_seed(ctx.rng_seed)
        model = MLP(MLPConfig(in_features=64, hidden=(32, 16), out_features=10, activation="tanh"))
        model = model.to(ctx.device, ctx.dtype)
        params = list(model.parameters())
        opt = make_opt(params)
        loss_fn = None
        if loss_extra is not None:
            loss_fn = lambda m, xb, yb: torch.nn.functional.cross_entropy(m(xb), yb) + loss_extra(params)  # noqa: E731
        return optimizer_trajectory(
            model,
            opt,
            x.to(ctx.device, ctx.dtype),
            y.to(ctx.device),
            steps=STEPS,
            batch=32,
            seed=ctx.rng_seed,
            loss_fn=loss_fn,
            before_step=(lambda: before_step(params)) if before_step else None,
        )

    def check(self, ctx) -> None:
        tl = self.tolerances.get(ctx.dtype) or tolerance_for(ctx.dtype)
        tol = dict(rtol=tl.rtol, atol=tl.atol)
        dt = str(ctx.dtype).replace("torch.", "")
        rows = []

        def compare(name, traj, ref, ref_name):
            ctx.assert_close(traj, ref, name=f"{name} = {ref_name}", where=f"{dt}, {first_deviation(traj, ref, **tol)}")
            rows.append(
                {"variant": name, "reference": ref_name, "dtype": dt, "max_abs_dev": float((traj - ref).abs().max())}
            )

        sgd_ref = self._run(ctx, lambda p: torch.optim.SGD(p, weight_decay=SGD_WD, **SGD_HP))
        for foreach in (False, True):
            traj = self._run(
                ctx,
                lambda p, fe=foreach: hand_optim.SGD(p, foreach=fe, **SGD_HP),
                before_step=lambda p, fe=foreach: self.hand_decay(
                    "l2", p, lr=SGD_HP["lr"], weight_decay=SGD_WD, foreach=fe
                ),
            )
            compare(f"L2 by hand ({'foreach' if foreach else 'loop'}) + SGD", traj, sgd_ref, "torch SGD(weight_decay)")
        traj = self._run(ctx, lambda p: hand_optim.SGD(p, **SGD_HP), loss_extra=lambda p: l2_penalty(p, SGD_WD))
        compare("L2 in the loss + SGD", traj, sgd_ref, "torch SGD(weight_decay)")

        adamw_ref = self._run(ctx, lambda p: torch.optim.AdamW(p, weight_decay=ADAM_WD, **ADAM_HP))
        for foreach in (False, True):
            traj = self._run(
                ctx,
                lambda p, fe=foreach: hand_optim.Adam(p, foreach=fe, **ADAM_HP),
                before_step=lambda p, fe=foreach: self.hand_decay(
                    "decoupled", p, lr=ADAM_HP["lr"], weight_decay=ADAM_WD, foreach=fe
                ),
            )
            compare(f"decoupled by hand ({'foreach' if foreach else 'loop'}) + Adam", traj, adamw_ref, "torch AdamW")
        ctx.table(f"largest parameter deviation over {STEPS} steps ({dt})", rows)

        adam_l2 = self._run(ctx, lambda p: torch.optim.Adam(p, weight_decay=ADAM_WD, **ADAM_HP))
        gap = float((adam_l2 - adamw_ref).abs().max())
        ctx.metric(f"adam_l2_vs_adamw_max_abs_gap_{dt}", gap)
        ctx.expect(
            gap > 1e-3,
            f"Adam with L2 decay should part from AdamW (decoupled), but the largest gap over "
            f"{STEPS} steps is {gap:.2e} ({dt})",
            name="Adam+L2 differs from AdamW",
        )

    # -- bench ----------------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: DecayBenchConfig) -> Prepared:
        params = bench_parameters(config.n_layers, config.width, device=ctx.device, dtype=ctx.dtype, seed=ctx.rng_seed)
        wd, lr = config.weight_decay, config.lr
        sgd = config.optimizer == "sgd"
        if impl in ("torch", "no_decay"):
            decay = wd if impl == "torch" else 0.0
            opt = (
                torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=decay, foreach=True)
                if sgd
                else torch.optim.AdamW(params, lr=lr, weight_decay=decay, foreach=True)
            )
            fn = opt.step
        else:
            foreach = impl == "hand_foreach"
            opt = (
                hand_optim.SGD(params, lr=lr, momentum=0.9, foreach=foreach)
                if sgd
                else hand_optim.Adam(params, lr=lr, foreach=foreach)
            )
            kind = "l2" if sgd else "decoupled"

            def fn():
                # L2 adds into .grad in place, so the fixed gradients drift by wd * p per call: the
                # values change, the work per step does not
                self.hand_decay(kind, params, lr=lr, weight_decay=wd, foreach=foreach)
                opt.step()

        fn()  # optimizer state exists from here on: time the steady state
        return Prepared(fn=fn)

    def bench(self, ctx) -> None:
        super().bench(ctx)
        for name, value in time_ratios(
            ctx.record.measurements, [config_label(c) for c in ctx.configs], "torch"
        ).items():
            ctx.metric(name, value)
