"""The adversarial training loop of the GAN drills, in pieces each task composes.

A GAN does not fit :mod:`harness.trained`'s one-recipe shape: two players, each with its own
optimizer, take turns on every batch, and what a task checks is mostly particular to its
losses. The pieces here are the parts the ``gans`` drills share; a task keeps its losses,
its networks and its checks.

* :func:`adam`, :func:`descend`: one optimizer over several nets; one step on a scalar loss.
* :func:`digits_pair`: a seeded generator and discriminator for 8x8 digits with their optimizers.
* :func:`bce_d_loss`, :func:`bce_g_loss`: the losses of Goodfellow et al. 2014 ("Generative
  adversarial nets", NeurIPS) on logits, the generator's in the non-saturating form
  ``-log D(G(z))`` (their Sec. 3).
* :func:`d_step`, :func:`g_step`, :func:`gan_step`: the alternating update, D on detached
  fakes first, then G through D.
* :func:`snapshot`, :func:`unchanged`: did a step move a net's weights (each player steps only its own)?
* :func:`minibatches`, :func:`sample`, :func:`sampling`: seeded random rows of the data; samples
  from seeded noise; the timed sampling call.
* :func:`steps_curve`, :func:`grid`, :func:`noise_fd`, :func:`record_fd`: what the drills record
  (losses per step, image grids in [-1, 1], the digits-feature FD of samples against that of
  uniform noise, the floor a generator must beat).
* :func:`expect_in_range`, :func:`expect_fd_below`, :func:`expect_70x70_patchgan`, :func:`have`:
  the checks they share, and the skip of a part whose optional package is missing.

Images are float (N, C, S, S) in [-1, 1]; noise z is (N, z_dim); logits are (N,) or patch
maps (N, 1, S', S'); labels y, when a model is conditional, int64 (N,).
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.contract import Prepared
from harness.gan_metric import digits_fd

Loss = Callable[..., torch.Tensor]


def adam(lr: float, *nets: nn.Module, betas: tuple[float, float] = (0.5, 0.999)) -> torch.optim.Adam:
    """One Adam over the parameters of ``nets`` (betas (0.5, 0.999): Radford et al. 2015, Sec. 4)."""
    return torch.optim.Adam(itertools.chain(*(n.parameters() for n in nets)), lr=lr, betas=betas)


def digits_pair(
    seed: int,
    cfg: Any,
    device: Any,
    G_cls: type[nn.Module] | None = None,
    D_cls: type[nn.Module] | None = None,
    classes: int = 0,
    betas: tuple[float, float] = (0.5, 0.999),
) -> tuple[nn.Module, nn.Module, torch.optim.Adam, torch.optim.Adam]:
    """A generator and a discriminator for 8x8 digits, seeded by ``seed``, with one Adam each:
    (G, D, opt_g, opt_d). ``cfg`` gives ``z_dim``, ``width`` and ``lr``; the classes default to
    ``models.gan``'s MLP pair (``classes`` > 0: conditional on that many labels)."""
    from models.gan import GanConfig, MLPDiscriminator, MLPGenerator

    torch.manual_seed(seed)
    gc = GanConfig(size=8, z_dim=cfg.z_dim, width=cfg.width, classes=classes)
    G, D = (G_cls or MLPGenerator)(gc).to(device), (D_cls or MLPDiscriminator)(gc).to(device)
    return G, D, adam(cfg.lr, G, betas=betas), adam(cfg.lr, D, betas=betas)


def descend(opt: torch.optim.Optimizer, loss: torch.Tensor) -> torch.Tensor:
    """Zero ``opt``'s gradients, backpropagate the scalar ``loss``, step; returns the loss detached.

    Only ``opt``'s parameters move, but the backward pass fills ``.grad`` of every tensor the
    loss reaches: a loss that reaches the other player leaves gradients there.
    """
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def bce_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-[log D(x) + log(1 - D(G(z)))], each term a batch mean; logits of any equal shape -> scalar."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    return real + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def bce_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss -log D(G(z)), batch mean; logits -> scalar."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def d_step(
    G: nn.Module,
    D: nn.Module,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
    *y: torch.Tensor,
    loss: Loss = bce_d_loss,
    detach: bool = True,
    fake: torch.Tensor | None = None,
) -> torch.Tensor:
    """One step of D on ``loss(D(real, *y), D(G(z, *y), *y))``; returns the loss detached.

    ``fake``: G(z, *y) already computed (as :func:`gan_step` does, to run G once per step).
    ``detach=False`` is the classic mistake (kept for the drills' mutants): D's loss then
    reaches G, filling G's ``.grad`` and costing a backward pass through G.
    """
    fake = G(z, *y) if fake is None else fake
    return descend(opt_d, loss(D(real, *y), D(fake.detach() if detach else fake, *y)))


def g_step(
    G: nn.Module,
    D: nn.Module,
    opt_g: torch.optim.Optimizer,
    z: torch.Tensor,
    *y: torch.Tensor,
    loss: Loss = bce_g_loss,
    fake: torch.Tensor | None = None,
) -> torch.Tensor:
    """One step of G on ``loss(D(G(z, *y), *y))`` (D's weights do not move); returns the loss detached.

    ``fake``: G(z, *y) already computed, still attached to G's graph (a D step that detached it
    leaves that graph intact)."""
    return descend(opt_g, loss(D(G(z, *y) if fake is None else fake, *y)))


def gan_step(
    G: nn.Module,
    D: nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    z: torch.Tensor,
    *y: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A D step then a G step on the same fakes G(z, *y), BCE losses: (D loss, G loss).

    G runs forward once per step: D learns on the fakes detached, then G backpropagates through
    the same fakes scored by the updated D, as in pytorch/examples' DCGAN (dcgan/main.py)."""
    fake = G(z, *y)
    return d_step(G, D, opt_d, real, z, *y, fake=fake), g_step(G, D, opt_g, z, *y, fake=fake)


def snapshot(net: nn.Module) -> list[torch.Tensor]:
    """Detached copies of ``net``'s parameters, to compare with :func:`unchanged` after a step."""
    return [p.detach().clone() for p in net.parameters()]


def unchanged(before: list[torch.Tensor], net: nn.Module) -> bool:
    """True if every parameter of ``net`` equals (bit for bit) its copy in ``before`` (:func:`snapshot`)."""
    return all(torch.equal(a, p) for a, p in zip(before, net.parameters(), strict=True))


def minibatches(g: torch.Generator, steps: int, batch: int, x: torch.Tensor, *more: torch.Tensor) -> Iterator[Any]:
    """``steps`` minibatches of ``batch`` rows drawn with replacement by the CPU generator ``g``.

    With one tensor yields its rows (batch, ...); with several, a tuple of the *same* rows of
    each (images with their labels, inputs with their targets). Rows are drawn lazily, one
    draw per step, so zipping two of these on one generator alternates their draws.
    """
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=g).to(x.device)
        yield x[idx] if not more else (x[idx], *(t[idx] for t in more))


@torch.no_grad()
def sample(G: nn.Module, n: int, z_dim: int, g: torch.Generator, *y: torch.Tensor) -> torch.Tensor:
    """G on ``n`` noise vectors drawn by the CPU generator ``g`` (moved to G's device), no grad."""
    device = next(G.parameters()).device
    return G(torch.randn(n, z_dim, generator=g).to(device), *y)


def sampling(G: nn.Module, *inputs: torch.Tensor) -> Prepared:
    """The timed call ``G(*inputs)`` without autograd, counted in samples (rows of ``inputs[0]``)."""
    return Prepared(fn=torch.no_grad()(lambda: G(*inputs)), items=inputs[0].shape[0], item_unit="samples")


def steps_curve(ctx: Any, name: str, values: Sequence[Any], **kw: Any) -> None:
    """``ctx.curve(name, 1..n, values)``: one value (float or 0-d tensor) per step; ``kw`` as ctx.curve."""
    ctx.curve(name, list(range(1, len(values) + 1)), [float(v) for v in values], **kw)


def grid(ctx: Any, name: str, images: torch.Tensor | Sequence[torch.Tensor], caption: str, nrow: int = 8) -> None:
    """Record images (N, C, S, S) in [-1, 1] as one picture, ``nrow`` per row; given a list of
    such tensors, the first ``nrow`` images of each make one row (input, output, target, ...)."""
    if not isinstance(images, torch.Tensor):
        images = torch.cat([row[:nrow] for row in images])  # (rows * nrow, C, S, S)
    ctx.image(name, images, nrow=nrow, vmin=-1, vmax=1, caption=caption)


def noise_fd(g: torch.Generator, n: int = 512, side: int = 8) -> float:
    """Digits-feature FD of ``n`` uniform-noise images (n, 1, side, side) in [-1, 1]: the floor to beat."""
    return digits_fd(torch.rand(n, 1, side, side, generator=g) * 2 - 1)


def expect_in_range(ctx: Any, samples: torch.Tensor, who: str = "samples") -> None:
    """Check 'samples in range': every value finite and inside the tanh range [-1, 1]."""
    finite = bool(torch.isfinite(samples).all())
    lo, hi = (float(samples.min()), float(samples.max())) if finite else (float("nan"),) * 2
    ctx.expect(
        finite and -1 <= lo and hi <= 1,
        f"{who} not finite or outside the tanh range [-1, 1] (span [{lo:.2f}, {hi:.2f}])",
        name="samples in range",
    )


def have(ctx: Any, module: str, part: str, pip: str | None = None) -> bool:
    """True if ``module`` imports here; else records ``part`` as skipped, naming the ``pip`` package."""
    if importlib.util.find_spec(module) is not None:
        return True
    ctx.skip_part(part, f"needs {pip or module} (pip install {pip or module})")
    return False


def expect_70x70_patchgan(ctx: Any, channels: int) -> None:
    """Check '70x70 PatchGAN': the published PatchGAN (width 64, ``models.image_gan``) maps a
    256x256 image of ``channels`` to 30x30 patch logits, each seeing 70x70 input pixels
    (Isola et al. 2017, appendix 6.1.2)."""
    from models.image_gan import PatchGAN, receptive_field

    big = PatchGAN(channels, 64)
    with torch.no_grad():
        side, field = big(torch.zeros(1, channels, 256, 256)).shape[-1], receptive_field(big)
    ctx.expect(side == 30 and field == 70, f"PatchGAN: {side}x{side} map, field {field}", name="70x70 PatchGAN")


def expect_fd_below(
    ctx: Any, samples: torch.Tensor, noise: float, ratio: float, *, name: str, who: str = "sample"
) -> float:
    """Check ``name``: the digits-feature FD of ``samples`` is below ``ratio`` x the FD of noise
    (:func:`noise_fd`); returns the samples' FD."""
    fd = digits_fd(samples)
    ctx.expect(fd < ratio * noise, f"{who} FD {fd:.1f} is not below {ratio}x noise FD {noise:.1f}", name=name)
    return fd


def record_fd(
    ctx: Any, samples: torch.Tensor, noise: float, name: str = "digits_fd", ratio: str = "fd_vs_noise"
) -> float:
    """Record the digits-feature FD of ``samples`` as metric ``name`` and its ratio to the FD of
    noise (:func:`noise_fd`) as metric ``ratio`` (below 1: closer to digits than noise is); returns the FD."""
    fd = digits_fd(samples)
    ctx.metric(name, fd)
    ctx.metric(ratio, fd / noise)
    return fd
