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

Check (float64 to 1e-12, float32 to the dtype table; 50 mini-batch steps of an MLP
64-32-16-10 on sklearn's 8x8 digits, parameters compared after every step): L2 by hand (loop
and foreach) + the hand SGD, and L2 written into the loss, equal
``torch.optim.SGD(momentum=0.9, weight_decay=0.05)``; decoupled decay by hand + the hand Adam
equals ``torch.optim.AdamW(weight_decay=0.1)``; and ``torch.optim.Adam(weight_decay=0.1)``
must *differ* from AdamW (by more than 1e-3 in some weight).

Bench: one optimizer step on 10M parameters in 104 tensors (52 Linear(440, 440), gradients
fixed), for SGD with momentum and for AdamW: ``torch`` (baseline: torch.optim with
weight_decay, foreach=True), ``hand_loop`` / ``hand_foreach`` (the decay by hand, then the
hand optimizer of the same kind), ``no_decay`` (torch foreach without weight decay: what the
decay itself costs); and the largest weight gap between Adam+L2 and AdamW after 50 steps.

Lesson: weight decay is one more full pass over the parameters, and on a memory-bound step
that pass is a large share. torch's foreach SGD adds the decay out of place (``_foreach_add``
allocates a new gradient list every step; see 2.04), where the hand version adds into
``.grad`` in place. The check shows the other lesson: Adam with L2 parts from AdamW by far
more than rounding, while the hand decays match torch to rounding (L2 written into the loss
differs only by autograd summing the two gradient terms).
"""

from __future__ import annotations

import dataclasses

import torch

import kernels.optim.optimizers as hand_optim
from harness import Comparison, Prepared, Tolerance, task
from harness.checks import tolerance_for
from harness.claims import metric, speedup, time_ratio
from harness.data.digits import digits_features
from harness.mutants import Mutant
from kernels.optim.trajectory import bench_parameters, first_deviation, optimizer_trajectory
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


# -- wrong decays (``hand_decay``), declared as mutants below -----------------------------
def _decoupled_as_l2(self, kind, params, *, lr, weight_decay, foreach):
    """'Decoupled' decay that adds wd * p to the gradient: that is Adam with L2, not AdamW."""
    l2_decay_(params, weight_decay, foreach=foreach)


def _decay_without_lr(self, kind, params, *, lr, weight_decay, foreach):
    """Decoupled decay p <- p (1 - wd), forgetting the learning rate factor."""
    WeightDecay.hand_decay(
        self, kind, params, lr=1.0 if kind == "decoupled" else lr, weight_decay=weight_decay, foreach=foreach
    )


def _l2_twice(self, kind, params, *, lr, weight_decay, foreach):
    """L2 counted twice (decay added on top of an optimizer that already decays)."""
    wd = 2 * weight_decay if kind == "l2" else weight_decay
    WeightDecay.hand_decay(self, kind, params, lr=lr, weight_decay=wd, foreach=foreach)


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
    claims = (
        metric(
            "adam_l2_vs_adamw_max_abs_gap_float32",
            ">",
            1e-3,
            text="Adam with L2 is not AdamW: some weight > 1e-3 apart after 50 steps",
        ),
        speedup(
            "no_decay",
            over="torch",
            at_least=1.1,
            config="sgd",
            text="SGD+momentum, 10M params: the decay pass costs >= 10 % of the step",
        ),
        time_ratio(
            "hand_loop",
            to="torch",
            at_most=1.1,
            config="sgd",
            text="in-place L2 by hand + SGD within 1.1x of torch's foreach SGD(weight_decay)",
        ),
    )
    metrics = {
        f"adam_l2_vs_adamw_max_abs_gap_{t}": f"max |Adam+L2 - AdamW| over 50 steps, {t}, weight units"
        for t in ("float32", "float64")
    }
    mutants = (
        Mutant(
            "decoupled_as_l2",
            "decoupled decay added to the gradient",
            {"hand_decay": _decoupled_as_l2},
            match="decoupled by hand (loop) + Adam = torch AdamW",
        ),
        Mutant("decay_without_lr", "p <- p (1 - wd), no lr", {"hand_decay": _decay_without_lr}, match="torch AdamW"),
        Mutant("l2_twice", "wd counted twice", {"hand_decay": _l2_twice}, match="L2 by hand (loop) + SGD"),
    )

    # -- the decays by hand; the mutants swap in wrong ones ---------------------------------------
    def hand_decay(self, kind: str, params, *, lr: float, weight_decay: float, foreach: bool) -> None:
        """Apply ``kind`` ("l2" or "decoupled") decay to params (with gradients) in place."""
        if kind == "l2":
            l2_decay_(params, weight_decay, foreach=foreach)
        else:
            decoupled_decay_(params, lr, weight_decay, foreach=foreach)

    # -- check ----------------------------------------------------------------------------------------
    def _run(self, ctx, make_opt, *, before_step=None, loss_extra=None) -> torch.Tensor:
        """(STEPS, P) trajectory of the digits MLP under ``make_opt(params)``."""
        x, y = digits_features(torch.float64)
        torch.manual_seed(ctx.rng_seed)
        model = MLP(MLPConfig(in_features=64, hidden=(32, 16), out_features=10, activation="tanh"))
        model = model.to(ctx.device, ctx.dtype)
        params = list(model.parameters())
        opt = make_opt(params)
        loss_fn = None
        if loss_extra is not None:
            loss_fn = lambda m, xb, yb: torch.nn.functional.cross_entropy(m(xb), yb) + loss_extra(params)
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
        adamw_ref = self._run(ctx, lambda p: torch.optim.AdamW(p, weight_decay=ADAM_WD, **ADAM_HP))
        for kind, cls, hp, wd, ref, name, ref_name in (
            ("l2", hand_optim.SGD, SGD_HP, SGD_WD, sgd_ref, "L2 by hand ({}) + SGD", "torch SGD(weight_decay)"),
            ("decoupled", hand_optim.Adam, ADAM_HP, ADAM_WD, adamw_ref, "decoupled by hand ({}) + Adam", "torch AdamW"),
        ):
            for fe in (False, True):
                opt = lambda p, fe=fe, cls=cls, hp=hp: cls(p, foreach=fe, **hp)  # bound per case
                decay = lambda p, fe=fe, k=kind, hp=hp, wd=wd: self.hand_decay(
                    k, p, lr=hp["lr"], weight_decay=wd, foreach=fe
                )
                traj = self._run(ctx, opt, before_step=decay)
                compare(name.format("foreach" if fe else "loop"), traj, ref, ref_name)
            if kind == "l2":
                traj = self._run(ctx, lambda p: hand_optim.SGD(p, **SGD_HP), loss_extra=lambda p: l2_penalty(p, SGD_WD))
                compare("L2 in the loss + SGD", traj, sgd_ref, "torch SGD(weight_decay)")
        ctx.table(f"largest parameter deviation over {STEPS} steps ({dt})", rows)

        gap = self._adam_gap(ctx, adamw_ref)
        ctx.expect(
            gap > 1e-3,
            f"Adam with L2 decay should part from AdamW (decoupled), but the largest gap over "
            f"{STEPS} steps is {gap:.2e} ({dt})",
            name="Adam+L2 differs from AdamW",
        )

    def _adam_gap(self, ctx, adamw_ref=None) -> float:
        """Largest |Adam+L2 - AdamW| over the trajectory, recorded as a metric."""
        if adamw_ref is None:
            adamw_ref = self._run(ctx, lambda p: torch.optim.AdamW(p, weight_decay=ADAM_WD, **ADAM_HP))
        adam_l2 = self._run(ctx, lambda p: torch.optim.Adam(p, weight_decay=ADAM_WD, **ADAM_HP))
        gap = float((adam_l2 - adamw_ref).abs().max())
        ctx.metric(f"adam_l2_vs_adamw_max_abs_gap_{str(ctx.dtype).replace('torch.', '')}", gap)
        return gap

    # -- bench ----------------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: DecayBenchConfig) -> Prepared:
        params = bench_parameters(config.n_layers, config.width, device=ctx.device, dtype=ctx.dtype, seed=ctx.rng_seed)
        wd, lr = config.weight_decay, config.lr
        sgd = config.optimizer == "sgd"
        extra = dict(momentum=0.9) if sgd else {}
        if impl in ("torch", "no_decay"):
            cls = torch.optim.SGD if sgd else torch.optim.AdamW
            fn = cls(params, lr=lr, weight_decay=wd if impl == "torch" else 0.0, foreach=True, **extra).step
        else:
            foreach = impl == "hand_foreach"
            opt = (hand_optim.SGD if sgd else hand_optim.Adam)(params, lr=lr, foreach=foreach, **extra)
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
        self._adam_gap(ctx)  # the lesson's other half, on the digits MLP (seconds)
