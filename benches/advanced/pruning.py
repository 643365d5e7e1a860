"""8.04 Pruning a CNN.

Compared: ``torch.nn.utils.prune`` on digits models: global magnitude pruning of an MLP
(64 -> 256 -> 256 -> 10; one |w| threshold for all layers, ``prune.global_unstructured``) with
fine-tuning, and structured pruning of a small CNN's filters (``prune.ln_structured``, L2 norm
over each output channel) followed by slicing the pruned channels out (``kernels.compress.prune``).
Timed: y = x W^T with W (F, F) at a sweep of sparsities, as a dense matrix, as the same matrix
with pruned entries zeroed (what ``prune`` leaves), as CSR (``torch.sparse.mm``) and, on a GPU,
2:4 semi-structured (``torch.sparse.to_sparse_semi_structured``, float16); and the CNN's forward
with half its filters masked against the same CNN with them sliced out.

Lesson: Han, Pool, Tran & Dally, "Learning both Weights and Connections for Efficient Neural
Networks" (NeurIPS 2015, Table 1): prune-and-retrain removes 9x of AlexNet's and 13x of VGG-16's
parameters without loss of ImageNet accuracy (12x for LeNet-300-100). Fewer parameters are not less
time: a masked dense weight multiplies its zeros like any other value, and a sparse format pays for
its indices and irregular access, so CSR wins only at high sparsity (Deep Compression, Han, Mao &
Dally, ICLR 2016, reports 3-4x layer speedups for pruned fully connected layers only as sparse
matrix-vector products at batch 1). Speed comes from structure: filters sliced out (smaller dense
shapes) or the 2:4 pattern that NVIDIA Ampere's sparse tensor cores run at up to 2x the dense math
throughput (Mishra et al., "Accelerating Sparse Deep Neural Networks", arXiv:2104.08378, 2021).
"""

from __future__ import annotations

import copy
import dataclasses

import torch
import torch.nn.functional as F

from harness import Comparison, Prepared, task
from harness.claims import metric, speedup, time_ratio
from harness.crossover import crossover
from harness.data.digits import digits_split
from harness.mutants import replace_functions
from harness.task import measure_or_skip
from kernels.compress import prune as P
from kernels.compress import wrong as W
from kernels.compress.digits import accuracy, cnn, fit, mlp


@dataclasses.dataclass(frozen=True)
class PruneConfig:
    """One point of the sweep (sparsity of the timed matrix) and the models' budgets."""

    sparsity: float = 0.9
    """share of the timed matrix's entries pruned (smallest |w|)"""
    features: int = 512
    """timed W is (features, features)"""
    batch: int = 64
    """rows of x in the timed product"""
    hidden: int = 256
    """width of the MLP's two hidden layers (at 128 the 90 %-pruned MLP loses ~2 points: too few weights left)"""
    steps: int = 300
    """Adam steps of the dense MLP (lr 3e-3, batch 64)"""
    tune_steps: int = 150
    """AdamW steps after pruning (lr 1e-3, weight decay 1e-2: decay would pull unmasked zeros off zero)"""


SWEEP = (0.5, 0.8, 0.9, 0.95, 0.99)


@task("advanced.pruning", seed="8.04", title="pruning a CNN")
class Pruning(Comparison):
    __doc__ = __doc__
    variants = ("dense", "masked_dense", "csr", "semi_structured_24", "cnn_masked", "cnn_sliced")
    gpu_check = True
    sizes = {
        "tiny": [PruneConfig(sparsity=s) for s in SWEEP],
        "cpu": [PruneConfig(sparsity=s, features=2048, batch=128) for s in (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)],
    }
    metrics = {
        "acc_dense": "dense MLP held-out accuracy, share",
        "acc_drop_pts_at_90": "dense minus 90 %-pruned-and-fine-tuned held-out accuracy, points",
        "csr_crossover_sparsity": "sparsity from which CSR stays faster than the dense product (1.0: never)",
    }
    claims = (
        metric(
            "acc_drop_pts_at_90",
            "<=",
            1.0,
            text="90 % of the MLP's weights pruned (10x fewer) costs <= 1 point after fine-tuning",
        ),
        time_ratio(
            "dense",
            to="masked_dense",
            at_most=1.1,
            config="sparsity=0.9,",
            text="a masked dense weight (90 % zeros) is no faster than the dense one",
        ),
        speedup(
            "csr",
            over="masked_dense",
            at_least=2.0,
            config="sparsity=0.99,",
            text="CSR is >= 2x faster than the masked dense product at 99 % sparsity",
        ),
        metric(
            "csr_crossover_sparsity",
            ">=",
            0.5,
            measured_by="csr",
            text="CSR overtakes the dense product only above 50 % sparsity",
        ),
        speedup(
            "cnn_sliced",
            over="cnn_masked",
            at_least=1.5,
            config="sparsity=0.5,",
            text="half the CNN's filters sliced out runs >= 1.5x faster than the same filters masked",
        ),
    )
    global_prune = staticmethod(P.global_magnitude)
    finalize = staticmethod(P.remove_all)
    channel_prune = staticmethod(P.prune_channels)
    mutants = (
        replace_functions(
            "zeroed_in_place", "pruned weights zeroed once, with no mask", match="masks", global_prune=W.zeroed_in_place
        ),
        replace_functions(
            "per_layer_threshold",
            "each layer pruned to the share on its own",
            match="threshold",
            global_prune=W.per_layer,
        ),
        replace_functions(
            "remove_restores_original",
            "removal puts the unpruned weights back",
            match="save/load",
            finalize=W.restore_original,
        ),
        replace_functions(
            "bias_of_pruned_channels_kept",
            "filters pruned but their bias left in place",
            match="sliced",
            channel_prune=W.bias_left,
        ),
    )

    def check(self, ctx):
        cfg, s = ctx.configs[0], 0.9
        dense, (xtr, ytr, xte, yte) = self._dense(ctx, cfg)
        model = self.global_prune(copy.deepcopy(dense), s)
        before, after = ([m.weight.detach().clone() for m, _ in P.weights(net)] for net in (dense, model))
        n, zeros = sum(w.numel() for w in after), sum(int((w == 0).sum()) for w in after)
        cut, kept = P.threshold_split(before, after)  # largest pruned |w|, smallest kept |w|
        msg = f"largest pruned |w| {cut:.4g} > smallest kept |w| {kept:.4g}: not one global threshold"
        ctx.expect(cut <= kept, msg, name="one global magnitude threshold")
        msg = f"{zeros} of {n} weights are zero; {s:.0%} asks for {round(s * n)}"
        ctx.expect(zeros == round(s * n), msg, name="stated sparsity reached")
        self._tune(model, cfg, xtr, ytr)
        tuned = [m.weight.detach() for m, _ in P.weights(model)]
        same = all(bool(((a == 0) == (t == 0)).all()) for a, t in zip(after, tuned, strict=True))
        msg = f"after {cfg.tune_steps} AdamW steps the zeros moved (sparsity now {P.sparsity(tuned):.3f})"
        ctx.expect(same, f"{msg}: pruning masks must stay in force", name="masks persist")
        drop = 100 * (accuracy(dense, xte, yte) - accuracy(model, xte, yte))
        msg = f"90 % pruned + fine-tuned loses {drop:.2f} points (> 2)"
        ctx.expect(drop <= 2.0, msg, name="90 % pruned within 2 points")
        self._check_save_load(ctx, model, xte)
        self._check_structured(ctx, cfg, xtr, ytr)
        if ctx.require("cuda", part="2:4 semi-structured product"):
            self._check_24(ctx, cfg)

    def _dense(self, ctx, cfg):
        """(the dense MLP trained on digits, the data (x_train (N, 64), y_train, x_test, y_test))."""
        data = digits_split(seed=0)
        torch.manual_seed(ctx.rng_seed)
        return fit(mlp(cfg.hidden), data[0], data[1], steps=cfg.steps, lr=3e-3, seed=ctx.rng_seed), data

    def _tune(self, model, cfg, x, y):
        """The pruned model fine-tuned in place (AdamW, masks in force) and returned."""
        return fit(model, x, y, steps=cfg.tune_steps, lr=1e-3, seed=1, weight_decay=1e-2)

    def _check_save_load(self, ctx, model, x):
        out = model(x).detach()
        fresh = P.reload(self.finalize(model), mlp(ctx.configs[0].hidden))  # strict: no weight_orig/_mask left
        ctx.assert_close(fresh(x).detach(), out, name="outputs equal after remove + save/load")
        sp = P.sparsity(m.weight for m, _ in P.weights(fresh))
        msg = f"sparsity after remove + save/load is {sp:.3f}, not 0.900"
        ctx.expect(abs(sp - 0.9) < 1e-3, msg, name="sparsity survives remove + save/load")

    def _check_structured(self, ctx, cfg, xtr, ytr):
        torch.manual_seed(ctx.rng_seed)
        net = fit(cnn(), xtr.view(-1, 1, 8, 8), ytr, steps=50, lr=3e-3, seed=ctx.rng_seed)  # (N, 64) -> (N,1,8,8)
        x = xtr[:64].view(-1, 1, 8, 8)
        net, small = P.prune_and_slice(net, self.channel_prune)  # (masks removed, sliced copy)
        with torch.no_grad():
            masked, sliced = net(x), small(x)
        n_big, n_small = (sum(p.numel() for p in m.parameters()) for m in (net, small))
        shapes = (tuple(small[0].weight.shape), tuple(small[2].weight.shape))  # half of 16 and of 32 filters kept
        ok = shapes[0][0] == 8 and shapes[1][:2] == (16, 8) and n_small < n_big
        msg = f"sliced shapes {shapes[0]}, {shapes[1]}; {n_small} vs {n_big} parameters"
        ctx.expect(ok, msg, name="structured pruning shrinks shapes")
        ctx.assert_close(
            sliced, masked, name="sliced model = masked model", where="half the filters of both convs sliced out"
        )

    def _check_24(self, ctx, cfg):
        try:
            y, y_dense = P.semi_structured_products(cfg.features, cfg.batch, ctx.generator())
        except NotImplementedError as e:  # GPUs before sm80, builds without the kernels
            ctx.skip_part("2:4 semi-structured product", str(e))
            return
        # float16 outputs of size ~16 (256 unit products): 1 ulp is 0.008, and the two kernels round apart
        ctx.assert_close(y, y_dense, name="2:4 semi-structured = masked dense", rtol=2e-2, atol=2e-2)

    def bench(self, ctx):
        cfg = ctx.configs[0]
        dense, (xtr, ytr, xte, yte) = self._dense(ctx, cfg)
        rows = [{"sparsity": 0.0, "acc": accuracy(dense, xte, yte)}]
        for s in (0.5, 0.8, 0.9, 0.95, 0.98):
            m = self._tune(self.global_prune(copy.deepcopy(dense), s), cfg, xtr, ytr)
            rows.append({"sparsity": s, "acc": round(accuracy(m, xte, yte), 4)})
        ctx.table("held-out accuracy after pruning and fine-tuning", rows)
        ctx.metric("acc_dense", rows[0]["acc"])
        ctx.metric("acc_drop_pts_at_90", 100 * (rows[0]["acc"] - next(r["acc"] for r in rows if r["sparsity"] == 0.9)))
        times: dict[str, list[float]] = {"masked_dense": [], "csr": []}
        on_gpu = ctx.require("cuda", part="timing of semi_structured_24")
        for c in ctx.configs:
            for impl in self.variants:
                if impl == "semi_structured_24" and not (on_gpu and c.sparsity == 0.5):
                    continue  # 2:4 is a fixed 50 % pattern: one point of the sweep, on a GPU
                if impl.startswith("cnn_") and c is not ctx.configs[0]:
                    continue  # the CNN does not depend on the matrix sweep
                m = measure_or_skip(self, ctx, impl, c)  # skipped: no 2:4 kernel on this GPU or build
                if m is not None and impl in times:
                    times[impl].append(m.median_ms)
        factor = [1 / (1 - c.sparsity) for c in ctx.configs]  # compression factor: increasing, log-friendly
        x = crossover(factor, times["masked_dense"], times["csr"])
        ctx.metric("csr_crossover_sparsity", 1.0 if x is None else 1 - 1 / x)

    def prepare(self, ctx, impl, config):
        if impl.startswith("cnn_"):  # half the filters pruned: masked in place, or sliced out
            torch.manual_seed(ctx.rng_seed)
            masked, sliced = P.prune_and_slice(cnn(), self.channel_prune)
            net = (sliced if impl == "cnn_sliced" else masked).to(ctx.device).eval()
            imgs = torch.rand(4 * config.batch, 1, 8, 8, generator=ctx.generator()).to(ctx.device)  # (N, 1, 8, 8)
            fn = torch.no_grad()(lambda: net(imgs))  # inference: no autograd graph
            return Prepared(fn=fn, items=4 * config.batch, item_unit="images")
        w, x = P.pruned_matrix(config.features, config.batch, config.sparsity, ctx.generator())
        if impl in ("dense", "semi_structured_24"):  # the unpruned matrix (2:4 makes its own 50 % zeros)
            w = P.pruned_matrix(config.features, config.batch, 0.0, ctx.generator())[0]
        if impl == "csr":
            csr, xt = w.to(ctx.device).to_sparse_csr(), x.t().contiguous().to(ctx.device)  # (F, F) CSR; (F, B)
            return Prepared(fn=lambda: torch.sparse.mm(csr, xt), items=config.batch, item_unit="rows")
        if impl == "semi_structured_24":  # NotImplementedError where there is no 2:4 kernel
            ws, xh = P.semi_structured_24(w, ctx.device)[1], x.to(ctx.device).half()
            return Prepared(fn=lambda: F.linear(xh, ws), items=config.batch, item_unit="rows")
        w, x = w.to(ctx.device), x.to(ctx.device)
        return Prepared(fn=lambda: F.linear(x, w), items=config.batch, item_unit="rows")
