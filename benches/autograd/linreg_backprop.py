"""2.02 Backprop for linear regression without nn.Module.

Model y_hat = x w + b with plain tensors w (D,) and b (), loss L = mean((y_hat - y)^2),
trained by full-batch gradient descent w <- w - lr dL/dw, b <- b - lr dL/db. Two ways to the
gradient, the two variants timed per step:

* ``autograd`` (baseline): w and b are leaves with ``requires_grad``; ``loss.backward()``
  fills ``.grad``; the update runs under ``torch.no_grad()`` and the grads are reset.
* ``manual``: the chain rule written out (``kernels.autograd.linreg.linreg_loss_and_grads``):
  r = x w + b - y, dL/dw = x^T (2 r / N), dL/db = 2 mean(r); no graph is built.

Data: SYNTHETIC (``make_regression``, labelled so in the report): x ~ N(0, 1) of shape
(N, D), known w_true ~ N(0, 1), b_true ~ N(0, 1), y = x w_true + b_true + noise_std N(0, 1).

Check (float32 and float64, 3 seeds): the hand gradients equal autograd's at random (w, b);
both variants follow the same trajectory; after ``steps`` steps w and b equal the
least-squares solution (``torch.linalg.lstsq`` on [x, 1]) to 1e-4 / 1e-9 (converged); and
they recover the known weights to ``recover_tol`` (5e-3: about 11 standard deviations of the
least-squares error noise_std / sqrt(N) = 4.4e-4; a model that learnt nothing is off by ~1).
Bad shapes raise ValueError.

Lesson: the two matrix-vector products (x w forward, x^T r backward) are the whole cost:
each streams x from memory once, and neither way of writing the gradient changes that.
Autograd's bookkeeping (graph nodes, the engine, ``.grad`` accumulation) is a fixed cost of
tens of microseconds per step (PyTorch docs, "Autograd mechanics"): it shows only when the
data is small. Both variants trace the same loss curve down to the noise floor
noise_std^2 = 1e-4.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Prepared, TrainingRun, task
from harness.claims import metric, speedup, time_ratio
from harness.mutants import Mutant
from kernels.autograd.linreg import linreg_loss_and_grads, make_regression


@dataclasses.dataclass(frozen=True)
class LinRegConfig:
    """Full-batch gradient descent on N synthetic samples of D features."""

    n: int
    """samples N"""
    d: int
    """features D"""
    steps: int = 100
    """gradient-descent steps of the check and of the recorded loss curve"""
    lr: float = 0.2
    """learning rate; the loss Hessian 2 x^T x / N has eigenvalues near 2 here, so 0.2 contracts
    the error ~0.5x per step"""
    noise_std: float = 0.01
    """standard deviation of the label noise, in units of y"""
    recover_tol: float = 5e-3
    """largest allowed |w - w_true| and |b - b_true| after training (see the module docstring)"""

    def label(self) -> str:
        return f"N={self.n},D={self.d}"


# -- wrong versions, declared as mutants below ------------------------------------------
_GRADS = "hand gradients = autograd"  # the check that sees a wrong gradient


def _missing_factor_two(self, x, y, w, b):
    """d/dr r^2 = 2r; forgetting the 2 halves the gradient (a silent lr / 2)."""
    loss, dw, db = linreg_loss_and_grads(x, y, w, b)
    return loss, dw / 2, db / 2


def _sum_not_mean(self, x, y, w, b):
    """Gradient of the summed loss: N times too large, and the descent diverges."""
    loss, dw, db = linreg_loss_and_grads(x, y, w, b)
    return loss, dw * x.shape[0], db * x.shape[0]


TINY = LinRegConfig(512, 8)


def _tiny(**change) -> dict:
    """A size table whose check preset is TINY with ``change``."""
    return {"tiny": dataclasses.replace(TINY, **change)}


@task("autograd.linreg_backprop", seed="2.02", title="backprop for linear regression without nn.Module")
class LinRegBackprop(TrainingRun):
    __doc__ = __doc__
    variants = ("autograd", "manual")
    check_dtypes = (torch.float32, torch.float64)
    sizes = {
        "tiny": TINY,
        "cpu": [LinRegConfig(4096, 64), LinRegConfig(65536, 256)],
        "gpu": [LinRegConfig(65536, 256), LinRegConfig(1 << 20, 1024)],
    }
    claims = (
        time_ratio("autograd", to="manual", at_most=1.2, text="largest size: autograd <= 1.2x the hand gradient"),
        speedup(
            "manual",
            over="autograd",
            at_least=1.2,
            config="N=4096,D=64",
            device="cpu",
            text="small data (N=4096, D=64): the hand gradient >= 1.2x autograd's steps/s",
        ),
        metric("max_weight_error_after_training", "<=", 5e-3, text="recovers the known weights to 5e-3"),
    )
    metrics = {
        "max_weight_error_after_training": "bench: max |w - w_true|, |b - b_true| after the steps, units of y",
        **{f"recovery_max_abs_err_{t}": f"check: worst of 3 seeds, {t}, units of y" for t in ("float32", "float64")},
    }
    mutants = (
        Mutant("missing_factor_two", "dL/dr = r, not 2r", {"hand_grads": _missing_factor_two}, match=_GRADS),
        Mutant("sum_not_mean", "gradient of the summed loss", {"hand_grads": _sum_not_mean}, match=_GRADS),
        Mutant("too_few_steps", "stops after 8 steps, unconverged", {"sizes": _tiny(steps=8)}, match="least squares"),
        Mutant(
            "noisy_data",
            "noise 0.5: converged weights ~0.02 off",
            {"sizes": _tiny(noise_std=0.5)},
            match="known weights not recovered",
        ),
    )

    # -- the gradient, two ways -------------------------------------------------------------------
    def hand_grads(self, x, y, w, b):
        """(L, dL/dw, dL/db) by the chain rule; the mutants swap in wrong ones."""
        return linreg_loss_and_grads(x, y, w, b)

    def autograd_grads(self, x, y, w, b):
        """(L, dL/dw, dL/db) by torch.autograd on fresh leaves."""
        w, b = w.detach().requires_grad_(), b.detach().requires_grad_()
        loss = (x @ w + b - y).pow(2).mean()
        return (loss.detach(), *torch.autograd.grad(loss, (w, b)))

    def step_fn(self, variant: str, x, y, w, b, lr: float):
        """One gradient-descent step updating w, b in place; returns the loss before the step."""
        if variant == "autograd":
            w.requires_grad_(True)
            b.requires_grad_(True)

            def step():
                loss = (x @ w + b - y).pow(2).mean()
                loss.backward()
                with torch.no_grad():
                    w.sub_(w.grad, alpha=lr)
                    b.sub_(b.grad, alpha=lr)
                w.grad = b.grad = None
                return loss.detach()
        else:

            def step():
                loss, dw, db = self.hand_grads(x, y, w, b)
                w.sub_(dw, alpha=lr)
                b.sub_(db, alpha=lr)
                return loss

        return step

    def train(self, variant: str, config: LinRegConfig, x, y):
        """(w, b, losses, trajectory of (w, b) per step) from w = 0, b = 0."""
        w = torch.zeros(config.d, dtype=x.dtype, device=x.device)
        b = torch.zeros((), dtype=x.dtype, device=x.device)
        step = self.step_fn(variant, x, y, w, b, config.lr)
        losses, traj = [], []
        for _ in range(config.steps):
            losses.append(step())
            traj.append((w.detach().clone(), b.detach().clone()))
        return w.detach(), b.detach(), torch.stack(losses), traj

    # -- check --------------------------------------------------------------------------------------
    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        ctx.note(f"data: synthetic (make_regression, N={cfg.n}, D={cfg.d}, noise_std={cfg.noise_std}), not a real set")
        tight = ctx.dtype == torch.float64
        worst = 0.0
        for trial in range(3):
            seed = ctx.rng_seed + trial
            x, y, w_true, b_true = make_regression(
                cfg.n, cfg.d, noise_std=cfg.noise_std, seed=seed, dtype=ctx.dtype, device=ctx.device
            )
            gen = torch.Generator().manual_seed(seed)
            w0 = torch.randn(cfg.d, generator=gen, dtype=ctx.dtype).to(ctx.device)
            b0 = torch.randn((), generator=gen, dtype=ctx.dtype).to(ctx.device)
            ctx.assert_close(
                self.hand_grads(x, y, w0, b0),
                self.autograd_grads(x, y, w0, b0),
                name="hand gradients = autograd",
                where=f"seed {seed}",
            )
            runs = {v: self.train(v, cfg, x, y) for v in self.variants}
            for i, (wb_m, wb_a) in enumerate(zip(runs["manual"][3], runs["autograd"][3])):
                ctx.assert_close(
                    wb_m, wb_a, name="manual trajectory = autograd trajectory", where=f"step {i + 1}, seed {seed}"
                )
            w, b, losses, _ = runs["manual"]
            ctx.expect(
                bool(losses[-1] < losses[0]),
                f"loss did not fall: {losses[0]:.4g} -> {losses[-1]:.4g}",
                name="loss falls",
            )
            design = torch.cat([x, torch.ones(cfg.n, 1, dtype=x.dtype, device=x.device)], 1)  # (N, D + 1)
            sol = torch.linalg.lstsq(design.cpu(), y.cpu().unsqueeze(1)).solution.squeeze(1).to(x.device)  # (D + 1,)
            tol = 1e-9 if tight else 1e-4
            ctx.assert_close(
                (w, b),
                (sol[:-1], sol[-1]),
                rtol=0.0,
                atol=tol,
                name="converged to least squares",
                where=f"after {cfg.steps} steps, seed {seed}",
            )
            err = max((w - w_true).abs().max().item(), (b - b_true).abs().item())
            ctx.expect(
                err <= cfg.recover_tol,
                f"known weights not recovered (seed {seed}): max error {err:.3g} > {cfg.recover_tol} "
                f"after {cfg.steps} steps at lr {cfg.lr}",
                name="recovers the known weights",
            )
            worst = max(worst, err)
        ctx.metric(f"recovery_max_abs_err_{str(ctx.dtype).replace('torch.', '')}", worst)
        ctx.expect_raises(
            ValueError, lambda: linreg_loss_and_grads(x, y[:-1], w, b), match="y (", name="bad shapes rejected"
        )

    # -- bench ----------------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: LinRegConfig) -> Prepared:
        x, y, _, _ = make_regression(
            config.n, config.d, noise_std=config.noise_std, seed=ctx.rng_seed, dtype=ctx.dtype, device=ctx.device
        )
        w = torch.zeros(config.d, dtype=ctx.dtype, device=ctx.device)
        b = torch.zeros((), dtype=ctx.dtype, device=ctx.device)
        step = self.step_fn(impl, x, y, w, b, config.lr)
        return Prepared(fn=step, items=1, item_unit="steps", flops=4 * config.n * config.d)  # x w, x^T r: 2 N D each

    def bench(self, ctx) -> None:
        super().bench(ctx)
        ctx.note("data: synthetic (make_regression), not a real set")
        cfg = ctx.configs[0]
        x, y, w_true, b_true = make_regression(
            cfg.n, cfg.d, noise_std=cfg.noise_std, seed=ctx.rng_seed, dtype=ctx.dtype, device=ctx.device
        )
        for v in self.variants:
            w, b, losses, _ = self.train(v, cfg, x, y)
            steps = list(range(1, cfg.steps + 1))
            ctx.curve("training loss (synthetic data)", steps, losses.tolist(), y_label="MSE", series=v, log_y=True)
        ctx.metric("max_weight_error_after_training", max((w - w_true).abs().max().item(), (b - b_true).abs().item()))
