"""8.08 Knowledge distillation.

Compared: a small student MLP (64 -> 32 -> 10) trained on 100 labelled digits (sklearn's 8x8)
with plain cross-entropy, and the same student (same seed, data, steps) trained with the
distillation loss of Hinton, Vinyals & Dean ("Distilling the Knowledge in a Neural Network",
arXiv:1503.02531, 2015) from a teacher (64 -> 256 -> 10) trained on the whole training split:

    L = alpha T^2 KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) CE(z_s, y),

T = 4, alpha = 0.9 (``kernels.distill.loss``). Timed: one student step with the teacher run live
on each batch against one reading cached teacher logits, which removes the teacher's forward pass
from every student step (valid when the inputs are not augmented, as here).

Lesson: soft targets carry the teacher's similarity structure ("a 2 that looks like a 3"), far
more information per example than a one-hot label, so a student with little data generalises
better; the T^2 factor is what lets one keep alpha fixed while tuning T. Hinton et al. 2015 (MNIST):
a large net made 67 test errors, a small net trained alone 146, the same small net distilled 74.
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Comparison, Prepared, task
from harness.claims import metric, speedup
from harness.data.digits import digits_split
from harness.mutants import Mutant
from kernels.compress.digits import accuracy
from kernels.distill.loss import kd_loss, kd_loss_by_hand, kd_loss_one, soft_grad_ratio, train_student
from kernels.distill.wrong import hard_teacher, mean_reduction, no_t_squared, reversed_kl
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
        speedup(
            "cached_teacher",
            over="live_teacher",
            at_least=1.2,
            text="cached teacher logits >= 1.2x faster student steps than a live teacher",
        ),
    )
    loss = staticmethod(kd_loss)
    mutants = (
        Mutant("no_t_squared", "the soft term without the T^2 factor", {"loss": staticmethod(no_t_squared)}, "T^2"),
        Mutant("reversed_kl", "KL(student || teacher)", {"loss": staticmethod(reversed_kl)}, match="hand"),
        Mutant(
            "kl_div_mean_reduction",
            "F.kl_div with reduction='mean' (divides by the classes too)",
            {"loss": staticmethod(mean_reduction)},
            "hand",
        ),
        Mutant(
            "teacher_not_softened", "softmax(z_t) instead of softmax(z_t / T)", {"loss": staticmethod(hard_teacher)}
        ),  # caught by the T^2 scale check and the hand computation
    )

    def check(self, ctx):
        g = ctx.generator()
        zs, zt = torch.randn(8, 10, generator=g, dtype=torch.float64), torch.randn(8, 10, generator=g).double() * 3
        ys = torch.randint(0, 10, (8,), generator=g)
        ratio = soft_grad_ratio(self.loss, zs, zt, ys, 4.0, 16.0)  # soft-term gradient norm, T = 16 over T = 4
        ctx.expect(
            0.8 <= ratio <= 1.25,
            f"soft-term gradient norm at T=16 / T=4 = {ratio:.3f}: T^2 should keep it near 1 (without: about 1/16)",
            name="T^2 keeps the soft gradient's scale",
        )
        s, t, y, T, a = [1.0, 2.0, 0.5], [0.0, 3.0, 1.0], 1, 2.0, 0.7
        got = self.loss(torch.tensor([s]).double(), torch.tensor([t]).double(), torch.tensor([y]), T, a)
        want = torch.tensor(kd_loss_one(s, t, y, T, a), dtype=torch.float64)
        ctx.assert_close(got, want, name="loss = hand computation", where="1 sample, 3 classes, T 2, alpha 0.7")
        for temp in (1.0, 2.0, 4.0):
            got, want = self.loss(zs, zt, ys, temp, 0.9), kd_loss_by_hand(zs, zt, ys, temp, 0.9)
            ctx.assert_close(got, want, name="loss = the formula written out (hand)", where=f"T={temp}")
        plain, kd, _ = self._study(ctx, ctx.configs[0])
        ctx.expect(
            sum(kd) > sum(plain),
            f"distilled students {kd} do not beat plain ones {plain} on average",
            name="distilled student beats the plain one (mean of seeds)",
        )

    def _mlp(self, ctx, hidden):
        return MLP(MLPConfig(in_features=64, hidden=(hidden,))).to(ctx.device)  # 64 -> hidden -> 10

    def _study(self, ctx, cfg):
        """(plain students' accuracies, distilled students' accuracies, the teacher's): a pair per seed."""
        xtr, ytr, xte, yte = (t.to(ctx.device) for t in digits_split(seed=0))
        torch.manual_seed(ctx.rng_seed)
        teacher = train_student(self._mlp(ctx, 256), xtr, ytr, steps=cfg.teacher_steps, lr=3e-3, seed=ctx.rng_seed)
        teacher.eval()
        plain, kd = [], []
        for s in range(cfg.seeds):
            sub = torch.randperm(xtr.shape[0], generator=ctx.generator(100 + s))[: cfg.n_labelled].to(ctx.device)
            logits = teacher(xtr[sub]).detach()  # (n, 10), cached once
            for arm, out in ((None, plain), (logits, kd)):  # no teacher: plain cross-entropy
                torch.manual_seed(ctx.rng_seed + s)
                st = self._mlp(ctx, 32)
                kw = dict(loss_fn=self.loss, teacher_logits=arm, T=cfg.T, alpha=cfg.alpha)
                train_student(st, xtr[sub], ytr[sub], steps=cfg.student_steps, lr=3e-3, seed=s, **kw)
                out.append(round(accuracy(st, xte, yte), 4))
        return plain, kd, accuracy(teacher, xte, yte)

    def bench(self, ctx):
        plain, kd, teacher_acc = self._study(ctx, ctx.configs[0])
        ctx.metric("teacher_acc", teacher_acc)
        ctx.metric("student_acc_plain", sum(plain) / len(plain))
        ctx.metric("student_acc_kd", sum(kd) / len(kd))
        ctx.metric("kd_gain_pts", 100 * (sum(kd) - sum(plain)) / len(kd))
        rows = [{"seed": i, "plain": p, "distilled": k} for i, (p, k) in enumerate(zip(plain, kd, strict=True))]
        ctx.table("held-out accuracy per seed", rows)
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        xtr, ytr, _, _ = (t.to(ctx.device) for t in digits_split(seed=0))
        torch.manual_seed(ctx.rng_seed)
        teacher, student = self._mlp(ctx, 256).eval(), self._mlp(ctx, 32)
        kw = {"teacher": teacher} if impl == "live_teacher" else {"teacher_logits": teacher(xtr).detach()}
        step = lambda: train_student(student, xtr, ytr, steps=1, lr=3e-3, seed=0, T=config.T, alpha=config.alpha, **kw)
        return Prepared(fn=step, items=64, item_unit="samples")
