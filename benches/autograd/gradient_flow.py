"""2.08 Visualize gradient flow in a network.

Per-layer gradient norms ||dL/dW_l||_2 of a deep MLP, recorded during ``backward`` by tensor
hooks (``kernels.autograd.grad_flow.GradFlowRecorder``: ``W.register_hook`` on each Linear
weight, the norm kept as a 0-d tensor, no host sync inside backward), plotted per layer
against the training step and against depth, for sigmoid and ReLU networks of the same depth.
Backprop multiplies the gradient by W^T and by the activation's derivative at every layer.
A sigmoid's derivative is at most 1/4, so with weights of norm ~1 each layer shrinks the
gradient ~4x and the first layers learn far slower than the last (the vanishing gradient of
Hochreiter 1991, Glorot & Bengio 2010). ReLU's derivative is 0 or 1, but it halves the signal
variance, so it keeps the norms level only with weights of variance 2 / fan_in (He et al.
2015); nn.Linear's default init (Kaiming-uniform with a = sqrt(5), variance 1 / (3 fan_in))
is smaller, and a deep ReLU stack under it vanishes too, more slowly. The curves show all
three: ``sigmoid`` and ``relu`` with the default init, ``relu_he`` with
``kaiming_normal_(nonlinearity="relu")`` weights and zero biases.

Check (float32, 3 seeds, an MLP 64-16-16-16-16-10 on sklearn's real 8x8 digits, 5 SGD
steps): the recorded names are the Linear weights in order; every recorded norm equals the
norm read from that layer's ``.grad`` after backward (a hook filing layer i's norm under
layer j fails because the layers' norms differ, which the check also asserts); after
``remove()`` the hooks record nothing.

Bench: one training step (forward, backward, SGD step) of the sigmoid MLP, timed as
``no_hooks`` (baseline), ``hooks`` (the recorder) and ``hooks_sync`` (a naive recorder
calling ``.item()`` inside each hook: a device sync per layer on a GPU). Curves: grad norm
per layer against the step (one chart per network, one line per layer) and mean grad norm
against layer index (one line per network); metric ``first_over_last_<net>`` is the mean
norm of the first layer over the last.

Lesson (2-core shared CPU VM, OMP_NUM_THREADS=1, float32, ``drills bench --task
autograd.gradient_flow --no-save``; load average ~8 from other jobs, IQR 15-35%): depth 16,
width 128, batch 256, sigmoid, two runs: no_hooks 31.2 / 29.5 ms per step, hooks 31.9 / 32.0,
hooks_sync 32.6 / 24.6: 17 norms of 128x128 gradients cost a few percent of a step at most,
under the noise, and on a CPU an ``.item()`` costs no more than the norm (on a GPU it is a
sync per layer inside backward). First-layer over last-layer mean grad norm over 30
steps: sigmoid 2.8e-14 (each layer ~7x smaller than the next: the first layers do not
train at all), ReLU with the default init 1.6e-5, ReLU with He init 0.63 (level). The plot
makes the point the numbers do: the activation and the init decide whether depth works.
"""

from __future__ import annotations

import dataclasses
import functools

import torch
import torch.nn.functional as F

from harness import Comparison, Prepared, task
from kernels.autograd.grad_flow import GradFlowRecorder
from models.mlp import MLP, MLPConfig


@dataclasses.dataclass(frozen=True)
class FlowConfig:
    """A deep MLP on 8x8 digits (64 features, 10 classes)."""

    depth: int
    """hidden layers (depth + 1 Linear layers in all)"""
    width: int
    """units per hidden layer"""
    batch: int
    """samples per step"""
    activation: str = "sigmoid"
    """activation of the timed network: sigmoid or relu"""
    curve_steps: int = 30
    """SGD steps of the recorded gradient-norm curves"""
    lr: float = 0.1
    """SGD learning rate (momentum 0.9)"""

    def label(self) -> str:
        return f"{self.activation},depth={self.depth},width={self.width},B={self.batch}"


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from harness.data.tabular import load_digits_images

    images, labels = load_digits_images()
    return images.reshape(-1, 64).float() / 16.0, labels  # (1797, 64) in [0, 1], (1797,)


def _model(config: FlowConfig, activation: str, device, dtype, seed: int) -> MLP:
    torch.manual_seed(seed)
    cfg = MLPConfig(in_features=64, hidden=(config.width,) * config.depth, out_features=10, activation=activation)
    return MLP(cfg).to(device, dtype)


def _weights(model: MLP) -> list[tuple[str, torch.Tensor]]:
    """The Linear weights in forward order: one entry per layer."""
    return [(n, p) for n, p in model.named_parameters() if n.endswith("weight")]


class SyncingRecorder(GradFlowRecorder):
    """The naive recorder: ``.item()`` in the hook (a host-device sync per layer on a GPU)."""

    def _record(self, name, grad):
        self._pending[name] = torch.tensor(torch.linalg.vector_norm(grad).item())


@task("autograd.gradient_flow", seed="2.08", title="visualize gradient flow in a network")
class GradientFlow(Comparison):
    __doc__ = __doc__
    variants = ("no_hooks", "hooks", "hooks_sync")
    sizes = {
        "tiny": FlowConfig(depth=4, width=16, batch=32, curve_steps=5),
        "cpu": FlowConfig(depth=16, width=128, batch=256),
        "gpu": FlowConfig(depth=32, width=2048, batch=4096, curve_steps=100),
    }

    def make_recorder(self, model: MLP) -> GradFlowRecorder:
        """Hooks on each Linear weight; a test swaps in a wrong recorder."""
        return GradFlowRecorder(_weights(model))

    def _batch(self, config: FlowConfig, step: int, device, dtype, seed: int):
        x, y = _digits()
        idx = torch.randint(0, x.shape[0], (config.batch,), generator=torch.Generator().manual_seed(seed * 1009 + step))
        return x[idx].to(device, dtype), y[idx].to(device)  # (B, 64), (B,)

    # -- check -----------------------------------------------------------------------------------------
    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        for trial in range(3):
            seed = ctx.rng_seed + trial
            model = _model(cfg, cfg.activation, ctx.device, ctx.dtype, seed)
            opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
            rec = self.make_recorder(model)
            names = [n for n, _ in _weights(model)]
            ctx.expect(
                rec.names == names,
                f"recorder layers {rec.names} != the model's weights {names}",
                name="recorded layers are the weights in order",
            )
            for step in range(5):
                x, y = self._batch(cfg, step, ctx.device, ctx.dtype, seed)
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                rec.end_step()
                got = rec.last()
                from_grad = {n: torch.linalg.vector_norm(p.grad) for n, p in _weights(model)}
                ctx.expect(
                    set(got) == set(from_grad),
                    f"step {step}: recorded layers {sorted(got)} != {sorted(from_grad)}",
                    name="every layer recorded once per step",
                )
                ctx.assert_close(
                    [got[n] for n in names],
                    [from_grad[n] for n in names],
                    name="hook norms = norms of .grad",
                    where=f"seed {seed}, step {step}, layers {names}",
                )
                opt.step()
            vals = torch.stack([from_grad[n] for n in names])
            ctx.expect(
                bool((vals[1:] - vals[:-1]).abs().min() > 1e-6 * vals.max()),
                f"two layers have the same gradient norm {vals.tolist()}: a mixed-up layer could not be seen",
                name="layers' norms are distinct",
            )
            rec.remove()
            n_before = len(rec.history()[names[0]])
            x, y = self._batch(cfg, 99, ctx.device, ctx.dtype, seed)
            F.cross_entropy(model(x), y).backward()
            rec.end_step()
            ctx.expect(
                all(v != v for v in (h[n_before] for h in rec.history().values())),
                "hooks still recorded after remove()",
                name="remove() unhooks",
            )

    # -- bench -----------------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: FlowConfig) -> Prepared:
        model = _model(config, config.activation, ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
        x, y = self._batch(config, 0, ctx.device, ctx.dtype, ctx.rng_seed)
        rec = None
        if impl == "hooks":
            rec = self.make_recorder(model)
        elif impl == "hooks_sync":
            rec = SyncingRecorder(_weights(model))

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            if rec is not None:
                rec.end_step()
                rec._steps.clear()  # keep memory flat over thousands of timed steps
            opt.step()

        step()
        return Prepared(
            fn=step, items=config.batch, item_unit="samples", teardown=rec.remove if rec is not None else None
        )

    def bench(self, ctx) -> None:
        super().bench(ctx)
        cfg = ctx.configs[0]
        for act in ("sigmoid", "relu", "relu_he"):
            model = _model(cfg, act.removesuffix("_he"), ctx.device, ctx.dtype, ctx.rng_seed)
            if act == "relu_he":
                with torch.no_grad():
                    for name, p in model.named_parameters():
                        if name.endswith("weight"):
                            torch.nn.init.kaiming_normal_(p, nonlinearity="relu")
                        else:
                            p.zero_()
            opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
            rec = self.make_recorder(model)
            for step in range(cfg.curve_steps):
                x, y = self._batch(cfg, step, ctx.device, ctx.dtype, ctx.rng_seed)
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                rec.end_step()
                opt.step()
            rec.remove()
            hist = rec.history()
            steps = list(range(1, cfg.curve_steps + 1))
            for i, (name, norms) in enumerate(hist.items()):
                ctx.curve(
                    f"grad norm per layer ({act})",
                    steps,
                    norms,
                    y_label="||dL/dW||_2",
                    series=f"layer {i} ({name})",
                    log_y=True,
                )
            means = [sum(v) / len(v) for v in hist.values()]
            ctx.curve(
                "mean grad norm by depth",
                list(range(len(means))),
                means,
                x_label="layer index",
                y_label="mean ||dL/dW||_2 over the steps",
                series=act,
                log_y=True,
            )
            ctx.metric(f"first_over_last_{act}", means[0] / means[-1])
