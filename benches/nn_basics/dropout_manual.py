"""3.03 Dropout by hand.

Compared: ``kernels.layers.dropout.dropout`` (inverted dropout: keep with probability 1 - p, scale
the kept values by 1/(1 - p), identity in eval) against ``F.dropout`` (the baseline), with
two mask rules: ``manual`` draws ``torch.rand(shape) >= p``; ``manual_bernoulli`` draws
``empty_like(x).bernoulli_(1 - p)``, which is what ``F.dropout`` does on CPU.

Check (tiny: 256 x 1024 = 262,144 elements, p = 0.1, 0.5, 0.9, float32):

* keep rate: the kept count K ~ Binomial(n, 1 - p); two-sided z-test,
  z = (K - n q) / sqrt(n q (1 - q)) with q = 1 - p, fails when ``|z| > 4.89`` (alpha = 1e-6);
* independence: of n/2 disjoint adjacent pairs, the count with both kept ~ Binomial(n/2, q^2),
  same z-test (catches masks that drop whole rows or repeat);
* scale: every non-zero output equals x / (1 - p) (x drawn in [0.5, 1.5], so a zero output
  means dropped); gradient = upstream * keep / (1 - p);
* same mask rule as the seed: with a generator seeded s, the mask equals
  ``torch.rand(shape, generator=Generator().manual_seed(s)) >= p`` bit for bit, also
  through the global generator after ``torch.manual_seed(s)``; a second call draws a
  fresh mask; and on CPU the ``bernoulli`` rule reproduces ``F.dropout``'s mask bit for bit
  under the same seed (on CUDA ``F.dropout`` is the fused Philox kernel: that part is skipped);
* against ``F.dropout`` in distribution: a two-proportion z-test on the kept counts
  (alpha = 1e-6) - the ``rand`` rule and MKL's Bernoulli stream draw different masks from
  the same seed, so only their distributions can agree;
* eval mode and p = 0 return x itself; p = 1 gives zeros; p outside [0, 1] raises ValueError.

False-failure rate (``harness.ztest``): 9 z-tests per check at alpha = 1e-6, so at most
about 1e-5 per run under any ``--seed``; with the default seed the check is deterministic.

Bench: time of one training-mode forward, 1024 x 4096 float32 (16.8 MB), p = 0.1 and 0.5;
GB/s counts one read of x and one write of the output.

Lesson: on a CPU dropout is bound by its random numbers, not by memory: every version moves
its 2 x 16.8 MB far below the machine's copy rate, and the bare ``torch.rand`` draw takes
most of the hand version's time (the claims measure both). MKL's Bernoulli stream (what
``F.dropout`` uses on CPU) is slower than ``torch.rand`` plus a compare. On a GPU the fused
``native_dropout`` kernel draws Philox numbers in registers (Salmon et al., "Parallel
Random Numbers: As Easy as 1, 2, 3", SC 2011) and the op is memory-bound; that is what
the counter-based rule in ``kernels.rng.philox`` reproduces.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Operator, impl, task
from harness.claims import metric, speedup
from harness.mutants import Mutant
from harness.ztest import expect_z, z_binomial, z_two_proportion
from kernels.layers.dropout import Dropout, dropout


@dataclasses.dataclass(frozen=True)
class DropoutConfig:
    """One dropout call on a (rows, cols) float tensor."""

    rows: int
    """leading dimension of x"""
    cols: int
    """trailing dimension of x (adjacent pairs are taken along it)"""
    p: float
    """drop probability in [0, 1)"""


# -- wrong versions (mutants): drop(self, x, p, training, generator, rule) -----------------


def _no_scale(self, x, p, training=True, generator=None, rule="rand"):
    if not training or p == 0.0:
        return x
    return x * (torch.rand(x.shape, generator=generator, device=x.device) >= p)  # forgets 1/(1-p)


def _keeps_with_p(self, x, p, training=True, generator=None, rule="rand"):
    if not training or p in (0.0, 1.0):
        return dropout(x, p, training, generator=generator, rule=rule)
    return x * (torch.rand(x.shape, generator=generator, device=x.device) < p) / (1 - p)  # keeps with p


def _whole_rows(self, x, p, training=True, generator=None, rule="rand"):
    if not training or p in (0.0, 1.0):
        return dropout(x, p, training, generator=generator, rule=rule)
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    return x * keep[:, :1] / (1 - p)  # one draw per row


def _other_rule(self, x, p, training=True, generator=None, rule="rand"):
    if not training or p in (0.0, 1.0) or rule != "rand":
        return dropout(x, p, training, generator=generator, rule=rule)
    return x * (torch.rand(x.shape, generator=generator, device=x.device) < 1 - p) / (1 - p)  # not the seed's mask


def _same_mask(self, x, p, training=True, generator=None, rule="rand"):
    if generator is None and training and rule == "rand":
        generator = torch.Generator().manual_seed(0)  # a private generator re-seeded every call
    return dropout(x, p, training, generator=generator, rule=rule)


def _drops_in_eval(self, x, p, training=True, generator=None, rule="rand"):
    return dropout(x, p, True, generator=generator, rule=rule)  # ignores the training flag


@task("nn_basics.dropout_manual", seed="3.03", title="dropout by hand")
class DropoutManual(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [DropoutConfig(256, 1024, p) for p in (0.1, 0.5, 0.9)],
        "cpu": [DropoutConfig(1024, 4096, p) for p in (0.1, 0.5)],
        "gpu": [DropoutConfig(8192, 8192, p) for p in (0.1, 0.5)],
    }
    metrics = {"rng_share": "median time of torch.rand alone / of the hand dropout, largest p of the sweep"}
    claims = (
        speedup(
            "manual",
            over="torch_dropout",
            at_least=1.0,
            device="cpu",
            text="on a CPU the hand rand-rule dropout is at least as fast as F.dropout (MKL Bernoulli)",
        ),
        metric("rng_share", ">=", 0.5, device="cpu", text="on a CPU torch.rand alone takes >= half the dropout time"),
    )
    mutants = tuple(
        Mutant(name, what, {"drop": fn}, match=match)
        for name, what, fn, match in (
            ("no_scale", "dropped but kept values not scaled by 1/(1-p)", _no_scale, "scaled by 1/(1-p)"),
            ("keeps_with_p", "keeps with probability p instead of 1 - p", _keeps_with_p, "keep rate"),
            ("whole_rows", "one draw per row: elements not independent", _whole_rows, "keep rate"),
            ("other_rule", "keeps where rand < 1 - p: not the seed's mask", _other_rule, "torch.rand"),
            ("same_mask_every_call", "a private generator re-seeded per call", _same_mask, "same mask"),
            ("drops_in_eval", "ignores the training flag", _drops_in_eval, "eval"),
        )
    )

    def drop(self, x, p, training=True, generator=None, rule="rand"):
        """The implementation under test (tests replace it with planted bugs)."""
        return dropout(x, p, training, generator=generator, rule=rule)

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(config.rows, config.cols, generator=g, dtype=dtype) + 0.5  # in [0.5, 1.5): never 0
        return x.to(device), config.p

    def reference(self, x, p):
        return F.dropout(x, p, training=True)

    def bytes(self, config, dtype):
        return 2 * config.rows * config.cols * torch.empty((), dtype=dtype).element_size()

    @impl(baseline=True)
    def torch_dropout(self, x, p):
        return lambda: F.dropout(x, p, training=True)

    @impl
    def manual(self, x, p):
        return lambda: self.drop(x, p)

    @impl
    def manual_bernoulli(self, x, p):
        return lambda: self.drop(x, p, rule="bernoulli")

    def bench(self, ctx) -> None:
        for cfg in ctx.configs:
            ms = {
                s.name: ctx.measure(s.name, self.prepare(ctx, s.name, cfg), config=cfg) for s in self.implementations()
            }
            # the random draw alone: shows what bounds dropout on a CPU
            x, _ = self.inputs(cfg, ctx.device, ctx.dtype, ctx.rng_seed)
            rng = ctx.measure("rng_only (torch.rand)", lambda: torch.rand(x.shape, device=x.device), config=cfg)
        ctx.metric("rng_share", rng.median_ms / ms["manual"].median_ms)

    # -- check ---------------------------------------------------------------------------
    def check(self, ctx) -> None:
        dev = ctx.device
        for i, cfg in enumerate(ctx.configs):
            seed, p, q = ctx.rng_seed + i, cfg.p, 1 - cfg.p
            where = f"{cfg.rows}x{cfg.cols}, p={p}, seed {seed}"
            x, _ = self.inputs(cfg, dev, ctx.dtype, seed)
            n = x.numel()
            out = self.drop(x, p, generator=torch.Generator(device=dev).manual_seed(seed))
            kept = out != 0  # (rows, cols) bool
            expect_z(ctx, "keep rate (binomial z-test)", z_binomial(int(kept.sum()), n, q), where)
            pairs = kept[:, 0::2] & kept[:, 1::2]  # (rows, cols/2) disjoint adjacent pairs
            expect_z(
                ctx,
                "adjacent pairs kept independently (z-test)",
                z_binomial(int(pairs.sum()), pairs.numel(), q * q),
                where,
            )
            ctx.assert_close(out[kept], x[kept] / q, name="kept values scaled by 1/(1-p)", where=where)
            ctx.metric(f"mean_out_over_x_p{p}", (out / x).mean().item())
            # the rule: same seed -> torch.rand(...) >= p, bit for bit
            rule = torch.rand(x.shape, generator=torch.Generator(device=dev).manual_seed(seed), device=dev) >= p
            ctx.expect(
                torch.equal(kept, rule),
                f"[{where}] mask differs from torch.rand(seed {seed}) >= p",
                name="mask = torch.rand(generator seeded s) >= p",
            )
            torch.manual_seed(seed)
            again = self.drop(x, p) != 0
            fresh = self.drop(x, p) != 0
            ctx.expect(
                torch.equal(again, rule),
                f"[{where}] after torch.manual_seed({seed}) the mask differs from the seeded generator's",
                name="global seed gives the same mask",
            )
            ctx.expect(
                not torch.equal(again, fresh),
                f"[{where}] two calls drew the same mask",
                name="each call draws a fresh mask",
            )
            # gradient: upstream * keep / (1 - p)
            xg = x.clone().requires_grad_(True)
            gy = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed)).to(dev, ctx.dtype)
            self.drop(xg, p, generator=torch.Generator(device=dev).manual_seed(seed)).backward(gy)
            ctx.assert_close(xg.grad, gy * rule / q, name="gradient = upstream * keep/(1-p)", where=where)
            # against F.dropout: bitwise with the bernoulli rule on CPU, in distribution always
            if dev.type == "cpu":
                torch.manual_seed(seed)
                ours = self.drop(x, p, rule="bernoulli")
                torch.manual_seed(seed)
                ctx.assert_close(ours, F.dropout(x, p), name="bernoulli rule = F.dropout (same seed, CPU)", where=where)
            else:
                ctx.skip_part(
                    "bit-exact mask vs F.dropout",
                    "on CUDA F.dropout is the fused native_dropout kernel (Philox draw order), not bernoulli_",
                )
            z = z_two_proportion(int(kept.sum()), int((F.dropout(x, p) != 0).sum()), n)
            expect_z(ctx, "keep rate equals F.dropout's (two-proportion z-test)", z, where)
            # eval and the edges
            ctx.expect(
                torch.equal(self.drop(x, p, training=False), x),
                f"[{where}] eval mode changed x",
                name="identity in eval mode",
            )
            ctx.expect(
                torch.equal(Dropout(p).eval()(x), x),
                "Dropout module in eval mode changed x",
                name="identity in eval mode",
            )
        x, _ = self.inputs(ctx.configs[0], dev, ctx.dtype, ctx.rng_seed)
        ctx.expect(torch.equal(self.drop(x, 0.0), x), "p = 0 changed x", name="p = 0 is the identity")
        ctx.expect(
            torch.equal(self.drop(x, 1.0), F.dropout(x, 1.0)), "p = 1 does not give zeros", name="p = 1 gives zeros"
        )
        ctx.expect_raises(ValueError, lambda: self.drop(x, 1.5), match="between 0 and 1", name="p > 1 rejected")
