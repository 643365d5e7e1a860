"""2.08 Visualize gradient flow in a network.

Per-layer gradient norms ||dL/dW_l||_2 of a deep MLP, recorded during ``backward`` by tensor
hooks (:class:`kernels.autograd.grad_flow.GradFlowRecorder`: ``W.register_hook`` on each
Linear weight, the norm kept as a 0-d tensor, no host sync inside backward), shown as a
heatmap (layer x training step) per network and a curve of the mean norm against depth.
Backprop multiplies the gradient by W^T and by the activation's derivative at every layer.
A sigmoid's derivative is at most 1/4, so the first layers of a deep sigmoid stack hardly
learn (the vanishing gradient: Hochreiter 1991, Glorot & Bengio 2010). ReLU keeps the norms
level only with weights of variance 2 / fan_in (He et al. 2015); nn.Linear's default init
(variance 1 / (3 fan_in)) is smaller, and a deep ReLU stack under it vanishes too, more
slowly. The three networks: ``sigmoid`` and ``relu`` with the default init, ``relu_he`` with
``kaiming_normal_(nonlinearity="relu")`` weights and zero biases.

Check (float32, 3 seeds, an MLP 64-16-16-16-16-10 on sklearn's 8x8 digits, 5 SGD steps):
the recorded names are the Linear weights in order; every recorded norm equals the norm of
that layer's ``.grad`` after backward (the layers' norms differ, so a hook filing layer i's
norm under layer j fails); after ``remove()`` the hooks record nothing.

Bench: a sigmoid-MLP step as ``no_hooks`` (baseline), ``hooks`` and ``hooks_sync`` (``.item()``
in each hook: a sync per layer on a GPU). Lesson: the activation and the init decide whether
depth works (sigmoid: the first layers do not train; ReLU with He init: level norms), and
watching the gradients costs little when the hook keeps them on the device.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from harness import Comparison, Prepared, task
from harness.claims import metric, time_ratio
from harness.data.digits import digits_features
from harness.mutants import Mutant
from kernels.autograd.grad_flow import GradFlowRecorder, SyncingRecorder
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


NETS = ("sigmoid", "relu", "relu_he")  # the networks of the curves: activation, "_he" for He init


def _model(config: FlowConfig, activation: str, device, dtype, seed: int) -> MLP:
    torch.manual_seed(seed)
    cfg = MLPConfig(in_features=64, hidden=(config.width,) * config.depth, out_features=10, activation=activation)
    return MLP(cfg).to(device, dtype)


def _weights(model: MLP) -> list[tuple[str, torch.Tensor]]:
    """The Linear weights in forward order: one entry per layer."""
    return [(n, p) for n, p in model.named_parameters() if n.endswith("weight")]


# -- wrong recorders, declared as mutants below ------------------------------------------
def _late_binding(self, model):
    """The closure bug: a lambda in the loop sees the loop's last name: every norm lands under the last layer."""
    rec = GradFlowRecorder([])
    for name, p in _weights(model):
        rec.names.append(name)  # the bug: the lambda reads `name` when it runs, after the loop
        rec._handles.append(p.register_hook(lambda g: rec._pending.__setitem__(name, g.norm())))
    return rec


def _shifted(self, model):
    """Hooks on the right tensors, filed one layer off (enumerate off by one)."""
    named = _weights(model)
    rec = GradFlowRecorder([])
    rec.names = [n for n, _ in named]
    rec._handles = [p.register_hook(rec._hook_for(rec.names[(i + 1) % len(named)])) for i, (_, p) in enumerate(named)]
    return rec


def _bias_recorder(self, model):
    """Hooks on the biases, filed under the weights' names."""
    named = [(n, p) for n, p in model.named_parameters() if n.endswith("bias")]
    rec = GradFlowRecorder([])
    rec.names = [n.replace("bias", "weight") for n, _ in named]
    rec._handles = [p.register_hook(rec._hook_for(w)) for (_, p), w in zip(named, rec.names)]
    return rec


@task("autograd.gradient_flow", seed="2.08", title="visualize gradient flow in a network")
class GradientFlow(Comparison):
    __doc__ = __doc__
    variants = ("no_hooks", "hooks", "hooks_sync")
    sizes = {
        "tiny": FlowConfig(depth=4, width=16, batch=32, curve_steps=5),
        "cpu": FlowConfig(depth=16, width=128, batch=256),
        "gpu": FlowConfig(depth=32, width=2048, batch=4096, curve_steps=100),
    }
    claims = (
        metric("first_over_last_sigmoid", "<", 1e-3, text="sigmoid: first layer's grad norm < 1e-3 x the last's"),
        metric("first_over_last_relu_he", ">", 0.1, text="ReLU with He init: first layer's norm > 0.1 x the last's"),
        time_ratio("hooks", to="no_hooks", at_most=1.1, text="recording every layer's norm costs <= 10 % of a step"),
    )
    metrics = {f"first_over_last_{a}": f"{a}: first layer's mean grad norm / the last's, x" for a in NETS}
    mutants = tuple(
        Mutant(name, what, {"make_recorder": wrong}, match=match)
        for name, what, wrong, match in (
            ("late_binding_hooks", "every norm filed under the last layer", _late_binding, "recorded layers"),
            ("shifted_layers", "norms filed one layer off", _shifted, "hook norms = norms of .grad"),
            ("bias_norms", "hooks on the biases, not the weights", _bias_recorder, "hook norms = norms of .grad"),
        )
    )

    def make_recorder(self, model: MLP) -> GradFlowRecorder:
        """Hooks on each Linear weight; the mutants swap in wrong recorders."""
        return GradFlowRecorder(_weights(model))

    def _batch(self, config: FlowConfig, step: int, device, dtype, seed: int):
        x, y = digits_features()
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
        teardown = rec.remove if rec is not None else None
        return Prepared(fn=step, items=config.batch, item_unit="samples", teardown=teardown)

    def bench(self, ctx) -> None:
        super().bench(ctx)
        cfg = ctx.configs[0]
        for act in NETS:
            model = _model(cfg, act.removesuffix("_he"), ctx.device, ctx.dtype, ctx.rng_seed)
            if act == "relu_he":  # He et al. 2015: weights N(0, 2 / fan_in), zero biases
                for name, p in model.named_parameters():
                    with torch.no_grad():
                        torch.nn.init.kaiming_normal_(p, nonlinearity="relu") if name.endswith("weight") else p.zero_()
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
            z = [[math.log10(v) if v > 0 else float("nan") for v in norms] for norms in hist.values()]
            ctx.heatmap(
                f"gradient flow ({act})",
                z,
                x=list(range(1, cfg.curve_steps + 1)),
                y=list(hist),
                x_label="step",
                y_label="layer (input first)",
                caption=f"log10 ||dL/dW||_2 per layer and step, {act} MLP of depth {cfg.depth}",
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
