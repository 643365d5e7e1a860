"""m1 A gradient hook that logs and modifies gradients.

``kernels.autograd.hooks.GradLogger`` registers one hook per tensor: ``register_hook`` on parameters
or activations (modify, then log what is passed on) or
``register_post_accumulate_grad_hook`` on parameters (log ``.grad`` after accumulation).

Check (tiny MLP, seeded random batches, float32, 3 seeds):

* logging: after one backward the logged gradient of every parameter equals ``.grad``
  bit for bit, and logged norms equal ``vector_norm(.grad)``;
* scaling a parameter's gradient by 0.37 gives exactly 0.37 x the unhooked ``.grad``
  (same multiply on the same values), and the log still equals ``.grad``;
* scaling an *activation's* gradient by 2**-3 scales every upstream parameter gradient by
  exactly 2**-3, bit for bit (a power of two only moves the exponent), while downstream
  parameters are untouched; with 0.3 the upstream gradients agree only to rounding (the
  share that is bit-equal is recorded);
* accumulation over two backward passes: a tensor hook sees each pass (the two logs sum
  to ``.grad``), a post-accumulate hook sees ``.grad`` itself;
* ``remove()`` stops logging; a scale in post-accumulate mode, or a tensor that does not
  require grad, raises ValueError.

Bench: one forward + backward with no hooks (baseline), logging norms, logging clones,
and scaling + logging clones, on a narrow deep MLP (hook calls dominate) and a wide one
(the matmuls dominate).

Lesson: a Python hook costs a few microseconds per tensor (one call from the autograd
engine into the interpreter) plus whatever it computes, so on a narrow network with many
small tensors it adds a visible share of the step, and on a wide one it disappears in the
matmuls (the claims put numbers on both). Hooks are the cheap way to watch or rescale
gradients (``torch.Tensor.register_hook`` and ``register_post_accumulate_grad_hook`` in the
PyTorch docs); the traps are order (log after modifying, or the log lies) and accumulation
(a tensor hook sees one backward pass, not ``.grad``).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from harness import Comparison, Prepared, task
from harness.claims import time_ratio
from harness.mutants import Mutant
from kernels.autograd.hooks import GradLogger
from models.mlp import MLP, MLPConfig


@dataclasses.dataclass(frozen=True)
class HookConfig:
    """An MLP over 64 input features and its batch."""

    hidden: tuple[int, ...]
    """MLP hidden widths (Linear -> ReLU each); one weight and one bias tensor per layer"""
    batch: int
    """samples per forward/backward"""

    def label(self) -> str:
        return f"hidden={len(self.hidden)}x{self.hidden[0]},B={self.batch}"


def _setup(config: HookConfig, device, dtype, seed: int):
    """Model and a seeded random batch x (B, 64) ~ N(0, 1), labels (B,) in 0..9 (the values
    do not matter here, only that every gradient is non-trivial)."""
    torch.manual_seed(seed)
    model = MLP(MLPConfig(in_features=64, hidden=config.hidden, out_features=10)).to(device, dtype)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(config.batch, 64, generator=g, dtype=dtype)
    y = torch.randint(0, 10, (config.batch,), generator=g)
    return model, x.to(device), y.to(device)


def _backward(model: nn.Module, x, y, *, zero: bool = True) -> None:
    if zero:
        model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()


def _grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


EXACT = {"rtol": 0.0, "atol": 0.0}
_WIDE = "logging gradient norms costs <= 10% of a step on the wide 4-layer MLP (matmuls dominate)"
_NARROW = "logging gradient norms costs <= 2x a step on the narrow 16-layer MLP (34 hooked tensors)"


# -- wrong loggers (the mutants) -----------------------------------------------------------------
class LogsBeforeScaling(GradLogger):
    """WRONG: logs the incoming gradient, then scales: the log disagrees with .grad by the scale."""

    def _tensor_hook(self, name):
        def hook(grad):
            self._record(name, grad)
            return grad * self.scale if self.scale is not None else None

        return hook


class LogsPerPassAfterAccumulate(GradLogger):
    """WRONG: post_accumulate mode logs the per-pass gradient instead of .grad."""

    def attach(self, name, tensor):
        if self.mode == "post_accumulate":
            self._handles.append(tensor.register_hook(lambda g, name=name: self._record(name, g)))
            return self
        return super().attach(name, tensor)


@task("m1.grad_hooks", seed="m1", title="a gradient hook that logs and modifies gradients")
class GradHooks(Comparison):
    __doc__ = __doc__
    variants = ("no_hooks", "log_norms", "log_values", "scale_and_log")
    sizes = {
        "tiny": HookConfig(hidden=(32, 32, 32), batch=48),
        "cpu": [HookConfig(hidden=(32,) * 16, batch=64), HookConfig(hidden=(512,) * 4, batch=256)],
        "gpu": [HookConfig(hidden=(32,) * 16, batch=64), HookConfig(hidden=(4096,) * 4, batch=4096)],
    }
    claims = (
        time_ratio("log_norms", to="no_hooks", at_most=1.1, config="hidden=4x", text=_WIDE),
        time_ratio("log_norms", to="no_hooks", at_most=2.0, config="hidden=16x", text=_NARROW),
    )
    #: the logger under test (the mutants swap in wrong ones)
    logger_cls = GradLogger
    mutants = (
        Mutant(
            "logs_before_scaling",
            "the hook logs the gradient before scaling it",
            {"logger_cls": LogsBeforeScaling},
            match="scaled: logged value equals .grad",
        ),
        Mutant(
            "post_accumulate_logs_per_pass",
            "post-accumulate mode logs each pass's gradient, not .grad",
            {"logger_cls": LogsPerPassAfterAccumulate},
            match="post-accumulate hook logs .grad",
        ),
    )

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        for trial in range(3):
            seed = ctx.rng_seed + trial
            model, x, y = _setup(cfg, ctx.device, ctx.dtype, seed)
            _backward(model, x, y)
            ref = _grads(model)
            # logging only
            with (
                self.logger_cls(keep="value").attach_params(model) as log,
                self.logger_cls(keep="norm").attach_params(model) as norms,
            ):
                _backward(model, x, y)
            for n, p in model.named_parameters():
                ctx.assert_close(log.log[n][-1], p.grad, name="logged value equals .grad", where=n, **EXACT)
                ctx.assert_close(
                    norms.log[n][-1],
                    torch.linalg.vector_norm(p.grad.double()),
                    name="logged norm equals norm of .grad",
                    where=n,
                )
                ctx.assert_close(p.grad, ref[n], name="logging changes nothing", where=n, **EXACT)
            # scaling parameter gradients
            with self.logger_cls(keep="value", scale=0.37).attach_params(model) as log:
                _backward(model, x, y)
            for n, p in model.named_parameters():
                ctx.assert_close(p.grad, ref[n] * 0.37, name="parameter hook scales exactly", where=n, **EXACT)
                ctx.assert_close(log.log[n][-1], p.grad, name="scaled: logged value equals .grad", where=n, **EXACT)
            self._check_activation_hook(ctx, model, x, y, ref, seed)
            self._check_accumulation(ctx, model, x, y)
        model, x, y = _setup(cfg, ctx.device, ctx.dtype, ctx.rng_seed)
        log = self.logger_cls(keep="norm").attach_params(model)
        log.remove()
        _backward(model, x, y)
        ctx.expect(not log.log, f"removed hooks still logged {sorted(log.log)}", name="remove() stops logging")
        ctx.expect_raises(
            ValueError,
            lambda: self.logger_cls(scale=2.0, mode="post_accumulate"),
            match="scale",
            name="scale in post_accumulate mode rejected",
        )
        ctx.expect_raises(
            ValueError,
            lambda: self.logger_cls().attach("x", torch.ones(3)),
            match="require",
            name="tensor without requires_grad rejected",
        )

    def _check_activation_hook(self, ctx, model, x, y, ref, seed) -> None:
        """Scale the gradient reaching the 2nd hidden activation: layers before it see the
        scale, layers after it do not."""
        act = model.net[3]  # Linear, ReLU, Linear, ReLU(<- here), ...
        upstream = {"net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"}
        bitwise = []
        for scale in (2.0**-3, 0.3):
            with self.logger_cls(keep="value", scale=scale).attach_output(act, "act") as log:
                _backward(model, x, y)
            once = len(log.log.get("act", [])) == 1
            ctx.expect(once, "activation hook did not run exactly once", name="activation hook runs once per backward")
            for n, p in model.named_parameters():
                want, where = (ref[n] * scale if n in upstream else ref[n]), f"{n}, seed {seed}"
                if scale == 2.0**-3 or n not in upstream:
                    ctx.assert_close(
                        p.grad, want, name="activation hook: power-of-two scale exact upstream", where=where, **EXACT
                    )
                else:
                    ctx.assert_close(p.grad, want, name="activation hook: scale 0.3 to rounding upstream", where=where)
                    bitwise.append(torch.equal(p.grad, want))
        ctx.metric("scale_0.3_upstream_bitwise_equal_fraction", sum(bitwise) / len(bitwise))

    def _check_accumulation(self, ctx, model, x, y) -> None:
        with (
            self.logger_cls(keep="value").attach_params(model) as per_pass,
            self.logger_cls(keep="value", mode="post_accumulate").attach_params(model) as acc,
        ):
            _backward(model, x, y)
            _backward(model, x[: len(x) // 2], y[: len(y) // 2], zero=False)  # accumulate a 2nd pass
        for n, p in model.named_parameters():
            ctx.assert_close(acc.log[n][-1], p.grad, name="post-accumulate hook logs .grad", where=n, **EXACT)
            two = per_pass.log[n][0] + per_pass.log[n][1]
            ctx.assert_close(two, p.grad, name="tensor-hook logs of two passes sum to .grad", where=n, **EXACT)

    # -- bench ---------------------------------------------------------------------------------
    def prepare(self, ctx, impl: str, config: HookConfig) -> Prepared:
        model, x, y = _setup(config, ctx.device, ctx.dtype, ctx.rng_seed)
        logger = {
            "no_hooks": None,
            "log_norms": self.logger_cls(keep="norm"),
            "log_values": self.logger_cls(keep="value"),
            "scale_and_log": self.logger_cls(keep="value", scale=0.5),
        }[impl]
        if logger is not None:
            logger.attach_params(model)

        def step():
            _backward(model, x, y)
            if logger is not None:
                logger.clear()  # keep memory flat across timed calls

        teardown = logger.remove if logger is not None else None
        return Prepared(fn=step, items=config.batch, item_unit="samples", teardown=teardown)
