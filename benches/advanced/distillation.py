"""8.08 Knowledge distillation.

Compared: a small student MLP (64 -> 32 -> 10) trained on 100 labelled digits (sklearn's 8x8
digits, ``harness.data.digits``) with plain cross-entropy, and the same student (same seed,
data, steps) trained with the distillation loss of Hinton, Vinyals & Dean ("Distilling the
Knowledge in a Neural Network", arXiv:1503.02531, 2015) from a teacher (64 -> 256 -> 10) trained
on the whole training split:

    L = alpha T^2 KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) CE(z_s, y),

T = 4, alpha = 0.9 (``kernels.distill.loss``). Timed: one student step with the teacher run live
on each batch against one reading cached teacher logits.

Check (tiny): the loss equals a hand computation on a worked example (1 sample, 3 classes) and
the formula written out equals the ``F.kl_div`` form (``batchmean``, ``log_target``) on random
logits at T = 1, 2, 4; the T^2 factor keeps the soft term's gradient scale independent of T (the
gradient norm at T = 16 is within 25 % of that at T = 4; without the factor it falls about 16x);
the distilled student's held-out accuracy, mean of 3 seeds, beats the plain student's.

Bench: the two students' accuracies over seeds, the teacher's, and the time per training step
with a live and with a cached teacher.

Lesson: soft targets carry the teacher's similarity structure ("a 2 that looks like a 3"), far
more information per example than a one-hot label, so a student with little data generalises
better; the T^2 factor is what lets one keep alpha fixed while tuning T. Hinton et al. 2015
(MNIST): a large net made 67 test errors, a small net trained alone 146, the same small net
distilled 74. Caching the teacher's logits removes its forward pass from every student step
(valid when the inputs are not augmented, as here).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from harness import Comparison, Prepared, task
from harness.claims import metric, speedup
from harness.data.digits import digits_split
from harness.mutants import Mutant
from kernels.distill.loss import kd_loss, kd_loss_by_hand, train_student
from models.mlp import MLP, MLPConfig


@dataclasses.dataclass(frozen=True)
class KDConfig:
    """Teacher, student, data and budgets."""

    n_labelled: int = 100
    """training digits the student sees (the teacher sees the whole training split)"""
    seeds: int = 3
    """student runs per arm (subset, init and batch order change with the seed)"""
    teacher_steps: int = 600
    """Adam steps of the teacher (batch 64)"""
    student_steps: int = 300
    """Adam steps of each student (batch 64)"""
    T: float = 4.0
    """temperature"""
    alpha: float = 0.9
    """weight of the soft term"""


# -- the wrong versions (mutants) ------------------------------------------------------------
def _no_t_squared(s, t, y, T, alpha):
    return kd_loss(s, t, y, T, alpha) - alpha * (T * T - 1) * kd_loss(s, t, y, T, 1.0) / (T * T)


def _reversed_kl(s, t, y, T, alpha):
    soft = F.kl_div(F.log_softmax(t / T, -1), F.log_softmax(s / T, -1), reduction="batchmean", log_target=True)
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)


def _mean_reduction(s, t, y, T, alpha):
    soft = F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), reduction="mean", log_target=True)
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, y)  # divides by B * C, not B


def _hard_teacher(s, t, y, T, alpha):
    return kd_loss(s, t * T, y, T, alpha)  # the teacher's softmax is never softened


@task("advanced.distillation", seed="8.08", title="knowledge distillation")
class Distillation(Comparison):
    __doc__ = __doc__
    variants = ("live_teacher", "cached_teacher")
    sizes = {"tiny": KDConfig(), "cpu": KDConfig(seeds=5)}
    metrics = {
        "teacher_acc": "teacher's held-out accuracy",
        "student_acc_plain": "student without distillation, mean held-out accuracy over seeds",
        "student_acc_kd": "distilled student, mean held-out accuracy over seeds",
        "kd_gain_pts": "distilled minus plain student accuracy, points",
    }
    claims = (
        metric("kd_gain_pts", ">=", 1.0, text="distillation adds >= 1 point of held-out accuracy (100 labels)"),
        speedup("cached_teacher", over="live_teacher", at_least=1.2,
                text="cached teacher logits >= 1.2x faster student steps than a live teacher"),
    )  # fmt: skip
    loss = staticmethod(kd_loss)
    mutants = (
        Mutant("no_t_squared", "the soft term without the T^2 factor", {"loss": staticmethod(_no_t_squared)},
               match="T^2"),
        Mutant("reversed_kl", "KL(student || teacher)", {"loss": staticmethod(_reversed_kl)}, match="hand"),
        Mutant("kl_div_mean_reduction", "F.kl_div with reduction='mean' (divides by the classes too)",
               {"loss": staticmethod(_mean_reduction)}, match="hand"),
        Mutant("teacher_not_softened", "softmax(z_t) instead of softmax(z_t / T)",
               {"loss": staticmethod(_hard_teacher)}),  # caught by the T^2 scale check and the hand computation
    )  # fmt: skip

    def check(self, ctx):
        g = ctx.generator()
        zs, zt = torch.randn(8, 10, generator=g, dtype=torch.float64), torch.randn(8, 10, generator=g).double() * 3
        ys = torch.randint(0, 10, (8,), generator=g)
        norms = {}
        for temp in (4.0, 16.0):
            z = zs.clone().requires_grad_()
            (grad,) = torch.autograd.grad(self.loss(z, zt, ys, temp, 1.0), z)
            norms[temp] = float(grad.norm())
        ratio = norms[16.0] / norms[4.0]
        ctx.expect(0.8 <= ratio <= 1.25, f"soft-term gradient norm at T=16 / T=4 = {ratio:.3f}: the T^2 factor "
                   "should keep it near 1 (without it: about 1/16)",
                   name="T^2 keeps the soft gradient's scale")  # fmt: skip
        s, t, y, T, a = [1.0, 2.0, 0.5], [0.0, 3.0, 1.0], 1, 2.0, 0.7
        soft = lambda z: [math.exp(v / T) / sum(math.exp(u / T) for u in z) for v in z]  # noqa: E731 - one line
        p, q = soft(t), soft(s)
        kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
        ce = -math.log(math.exp(s[y]) / sum(math.exp(v) for v in s))
        want = torch.tensor(a * T * T * kl + (1 - a) * ce, dtype=torch.float64)
        got = self.loss(torch.tensor([s], dtype=torch.float64), torch.tensor([t], dtype=torch.float64),
                        torch.tensor([y]), T, a)  # fmt: skip
        ctx.assert_close(got, want, name="loss = hand computation", where="1 sample, 3 classes, T 2, alpha 0.7")
        for temp in (1.0, 2.0, 4.0):
            ctx.assert_close(self.loss(zs, zt, ys, temp, 0.9), kd_loss_by_hand(zs, zt, ys, temp, 0.9),
                             name="loss = the formula written out (hand)", where=f"T={temp}")  # fmt: skip
        plain, kd, _ = self._study(ctx, ctx.configs[0])
        ctx.expect(sum(kd) > sum(plain), f"distilled students {kd} do not beat plain ones {plain} on average",
                   name="distilled student beats the plain one (mean of seeds)")  # fmt: skip

    def _teacher(self, ctx, cfg, xtr, ytr):
        torch.manual_seed(ctx.rng_seed)
        teacher = MLP(MLPConfig(in_features=64, hidden=(256,))).to(ctx.device)
        return train_student(teacher, xtr, ytr, steps=cfg.teacher_steps, lr=3e-3, seed=ctx.rng_seed).eval()

    def _study(self, ctx, cfg):
        xtr, ytr, xte, yte = (t.to(ctx.device) for t in digits_split(seed=0))
        teacher = self._teacher(ctx, cfg, xtr, ytr)
        acc = lambda m: float((m(xte).argmax(-1) == yte).float().mean())  # noqa: E731 - one line
        plain, kd = [], []
        for s in range(cfg.seeds):
            sub = torch.randperm(xtr.shape[0], generator=ctx.generator(100 + s))[: cfg.n_labelled].to(ctx.device)
            with torch.no_grad():
                logits = teacher(xtr[sub])  # (n, 10), cached once
            for arm, out in ((None, plain), (logits, kd)):
                torch.manual_seed(ctx.rng_seed + s)
                st = MLP(MLPConfig(in_features=64, hidden=(32,))).to(ctx.device)
                train_student(st, xtr[sub], ytr[sub], steps=cfg.student_steps, lr=3e-3, seed=s, loss_fn=self.loss,
                              teacher_logits=arm, T=cfg.T, alpha=cfg.alpha)  # fmt: skip
                with torch.no_grad():
                    out.append(round(acc(st), 4))
        with torch.no_grad():
            return plain, kd, acc(teacher)

    def bench(self, ctx):
        cfg = ctx.configs[0]
        plain, kd, teacher_acc = self._study(ctx, cfg)
        n = len(kd)
        for k, v in (("teacher_acc", teacher_acc), ("student_acc_plain", sum(plain) / n),
                     ("student_acc_kd", sum(kd) / n), ("kd_gain_pts", 100 * (sum(kd) - sum(plain)) / n)):  # fmt: skip
            ctx.metric(k, v)
        ctx.table("held-out accuracy per seed", [{"seed": i, "plain": p, "distilled": k} for i, (p, k) in
                                                 enumerate(zip(plain, kd, strict=True))])  # fmt: skip
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        xtr, ytr, _, _ = (t.to(ctx.device) for t in digits_split(seed=0))
        torch.manual_seed(ctx.rng_seed)
        teacher = MLP(MLPConfig(in_features=64, hidden=(256,))).to(ctx.device).eval()
        student = MLP(MLPConfig(in_features=64, hidden=(32,))).to(ctx.device)
        cached = teacher(xtr).detach() if impl == "cached_teacher" else None
        live = teacher if impl == "live_teacher" else None
        step = lambda: train_student(student, xtr, ytr, steps=1, lr=3e-3, seed=0, teacher=live,  # noqa: E731
                                     teacher_logits=cached, T=config.T, alpha=config.alpha)  # fmt: skip
        return Prepared(fn=step, items=64, item_unit="samples")
