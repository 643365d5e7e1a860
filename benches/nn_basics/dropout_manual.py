"""3.03 Dropout by hand.

Compared: ``kernels.layers.dropout.dropout`` (inverted dropout: keep with probability 1 - p, scale
the kept values by 1/(1 - p), identity in eval) against ``F.dropout`` (the baseline), with
two mask rules: ``manual`` draws ``torch.rand(shape) >= p``; ``manual_bernoulli`` draws
``empty_like(x).bernoulli_(1 - p)``, which is what ``F.dropout`` does on CPU.

Check (tiny: 256 x 1024 = 262,144 elements, p = 0.1, 0.5, 0.9, float32):

* keep rate: the kept count K ~ Binomial(n, 1 - p); two-sided z-test,
  z = (K - n q) / sqrt(n q (1 - q)) with q = 1 - p, fails when |z| > 4.89 (alpha = 1e-6);
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

False-failure rate: 9 z-tests per check at alpha = 1e-6 each (normal approximation, with
n q (1 - q) >= 2.3e4), so at most about 1e-5 per run by the union bound, under any
``--seed``; with the default seed the check is deterministic.

Bench: time of one training-mode forward, 1024 x 4096 float32 (16.8 MB), p = 0.1 and 0.5;
GB/s counts one read of x and one write of the output.

Lesson (``OMP_NUM_THREADS=1 drills bench --task nn_basics.dropout_manual --no-save``, twice,
on the shared 2-core VM under a load average of ~7; medians varied 2-3x between runs, so
these are the fastest samples, 1024 x 4096 float32): ``torch.rand`` alone takes 26-32 ms
(~7 ns per element), the hand ``rand`` rule 28 ms at p = 0.1 and 40 ms at p = 0.5,
``F.dropout`` 51 and 81 ms, the ``bernoulli`` rule 50 and 174 ms. Against a 16.8 MB
read plus write that the machine's 32.6 GB/s copy rate would finish in ~1 ms, every
version runs at 0.1-0.6 GB/s: on a CPU dropout is bound by its random numbers, not by
memory. MKL's Bernoulli stream (what ``F.dropout`` uses here) is slower than
``torch.rand`` plus a compare and gets slower as p nears 0.5. On a GPU the fused
``native_dropout`` kernel draws Philox numbers in registers and the op is memory-bound;
that is what the counter-based rule in ``kernels.rng.philox`` reproduces.
"""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist

import torch
import torch.nn.functional as F

from harness import Operator, impl, task
from kernels.layers.dropout import Dropout, dropout

ALPHA = 1e-6
"""two-sided significance of each z-test: the false-failure rate of one test"""
Z_CRIT = NormalDist().inv_cdf(1 - ALPHA / 2)  # 4.8916


@dataclasses.dataclass(frozen=True)
class DropoutConfig:
    """One dropout call on a (rows, cols) float tensor."""

    rows: int
    """leading dimension of x"""
    cols: int
    """trailing dimension of x (adjacent pairs are taken along it)"""
    p: float
    """drop probability in [0, 1)"""


def z_binomial(k: int, n: int, q: float) -> float:
    """z-score of k successes out of n Bernoulli(q) trials (normal approximation)."""
    return (k - n * q) / math.sqrt(n * q * (1 - q))


@task("nn_basics.dropout_manual", seed="3.03", title="dropout by hand")
class DropoutManual(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [DropoutConfig(256, 1024, p) for p in (0.1, 0.5, 0.9)],
        "cpu": [DropoutConfig(1024, 4096, p) for p in (0.1, 0.5)],
        "gpu": [DropoutConfig(8192, 8192, p) for p in (0.1, 0.5)],
    }

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
        super().bench(ctx)
        # the random draw alone: shows what bounds dropout on a CPU
        for cfg in ctx.configs:
            x, _ = self.inputs(cfg, ctx.device, ctx.dtype, ctx.rng_seed)
            ctx.measure("rng_only (torch.rand)", lambda: torch.rand(x.shape, device=x.device), config=cfg)

    # -- check ---------------------------------------------------------------------------
    def z_test(self, ctx, name: str, z: float, where: str) -> None:
        ctx.expect(
            abs(z) <= Z_CRIT,
            f"{name} [{where}]: |z| = {abs(z):.2f} > {Z_CRIT:.2f} (two-sided test at alpha = {ALPHA:g})",
            name=name,
        )

    def check(self, ctx) -> None:
        dev = ctx.device
        for i, cfg in enumerate(ctx.configs):
            seed, p, q = ctx.rng_seed + i, cfg.p, 1 - cfg.p
            where = f"{cfg.rows}x{cfg.cols}, p={p}, seed {seed}"
            x, _ = self.inputs(cfg, dev, ctx.dtype, seed)
            n = x.numel()
            out = self.drop(x, p, generator=torch.Generator(device=dev).manual_seed(seed))
            kept = out != 0  # (rows, cols) bool
            self.z_test(ctx, "keep rate (binomial z-test)", z_binomial(int(kept.sum()), n, q), where)
            pairs = kept[:, 0::2] & kept[:, 1::2]  # (rows, cols/2) disjoint adjacent pairs
            self.z_test(
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
            k_ref = int((F.dropout(x, p) != 0).sum())
            pooled = (int(kept.sum()) + k_ref) / (2 * n)
            self.z_test(
                ctx,
                "keep rate equals F.dropout's (two-proportion z-test)",
                (int(kept.sum()) - k_ref) / math.sqrt(2 * n * pooled * (1 - pooled)),
                where,
            )
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
