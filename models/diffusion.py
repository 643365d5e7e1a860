"""DDPM pieces: the linear noise schedule, q(x_t | x_0), the posterior, a sampler and a small denoiser.

Ho, Jain & Abbeel, "Denoising diffusion probabilistic models", NeurIPS 2020 (arXiv:2006.11239):

* betas linear from 1e-4 to 0.02 over T = 1000 steps; alpha_t = 1 - beta_t;
  abar_t = prod_{s <= t} alpha_s (index t = 0..T-1 here, t = 1..T in the paper);
* q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)  (their Eq. 4);
* posterior q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, beta~_t I) with
  c0 = beta_t sqrt(abar_{t-1}) / (1 - abar_t), ct = (1 - abar_{t-1}) sqrt(alpha_t) / (1 - abar_t),
  beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t  (Eq. 6-7), with abar_{-1} = 1;
* training: predict eps from x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Algorithm 1,
  :func:`train_ddpm`);
* sampling: x_0 estimate from eps, then the posterior (Algorithm 2 in its equivalent form).

Strided ("respaced") sampling (Nichol & Dhariwal 2021, "Improved DDPM", Sec. 4) keeps the
abar of a subsequence of steps and recomputes beta_i = 1 - abar_{t_i} / abar_{t_{i-1}}.
Tensors: images (N, C, H, W) float; t int64 (N,) in 0..T-1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class LinearSchedule:
    """The DDPM schedule as float64 tensors (T,); ``betas`` may be given for a respaced one."""

    def __init__(self, T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02, betas: torch.Tensor | None = None):
        self.betas = torch.linspace(beta_1, beta_T, T, dtype=torch.float64) if betas is None else betas.double()
        self.T = self.betas.numel()
        self.alphas = 1 - self.betas
        self.abar = torch.cumprod(self.alphas, 0)
        self.abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.abar[:-1]])

    def _at(self, v: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return v.to(like.device)[t].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))  # (N, 1, 1, 1)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, a draw of q(x_t | x_0)."""
        return self._at(self.abar.sqrt(), t, x0) * x0 + self._at((1 - self.abar).sqrt(), t, x0) * noise

    def posterior(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(c0, ct, beta~) of q(x_{t-1} | x_t, x_0), each (T,) float64."""
        c0 = self.betas * self.abar_prev.sqrt() / (1 - self.abar)
        ct = (1 - self.abar_prev) * self.alphas.sqrt() / (1 - self.abar)
        return c0, ct, (1 - self.abar_prev) / (1 - self.abar) * self.betas

    def respaced(self, steps: int) -> tuple[LinearSchedule, torch.Tensor]:
        """A schedule over ``steps`` evenly spaced timesteps of this one, and those timesteps (steps,)."""
        ts = torch.linspace(0, self.T - 1, steps).round().long()
        abar = self.abar[ts]
        prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        return LinearSchedule(betas=1 - abar / prev), ts


def train_ddpm(
    model: nn.Module, sched: LinearSchedule, images: torch.Tensor, *, steps: int, batch: int, lr: float,
    generator: torch.Generator,
) -> tuple[Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor], torch.Tensor]:  # fmt: skip
    """Algorithm 1 for ``steps`` Adam steps: (the step function, the losses (steps,) float32 on CPU).

    Each step draws ``batch`` images of ``images`` (N, C, H, W) with replacement, one t in
    0..T-1 and a standard normal eps per image (all from ``generator``, in that order), and
    regresses ``model(x_t, t)`` on eps (MSE). The step function ``step(x0, t, noise)`` does one
    more such step on given tensors (what the bench times); it returns the detached loss.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    device = images.device

    def step(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(sched.q_sample(x0, t, noise), t), noise)  # predict the noise that was added
        loss.backward()
        opt.step()
        return loss.detach()

    losses = []
    for _ in range(steps):
        x0 = images[torch.randint(0, images.shape[0], (batch,), generator=generator).to(device)]
        t = torch.randint(0, sched.T, (batch,), generator=generator).to(device)
        losses.append(step(x0, t, torch.randn(x0.shape, generator=generator).to(device)))
    return step, torch.stack(losses).cpu() if losses else torch.zeros(0)


@torch.no_grad()
def sample(model: nn.Module, sched: LinearSchedule, shape: tuple[int, ...], *, steps: int | None = None,
           generator: torch.Generator | None = None, device: str | torch.device = "cpu") -> torch.Tensor:  # fmt: skip
    """Ancestral sampling with the posterior; ``steps`` < T samples on a respaced schedule.

    The model is called with the *original* timestep index, as it was trained.
    Returns x_0 estimates (shape) clamped to [-1, 1].
    """
    s, ts = sched.respaced(steps) if steps and steps < sched.T else (sched, torch.arange(sched.T))
    c0, ct, var = s.posterior()
    x = torch.randn(shape, generator=generator).to(device)
    for i in reversed(range(s.T)):
        t = torch.full((shape[0],), int(ts[i]), dtype=torch.long, device=device)
        eps = model(x, t)
        ab = float(s.abar[i])
        x0 = ((x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)).clamp(-1, 1)  # Eq. 4 solved for x_0
        x = float(c0[i]) * x0 + float(ct[i]) * x
        if i > 0:
            x = x + math.sqrt(float(var[i])) * torch.randn(shape, generator=generator).to(device)
    return x


class TinyDenoiser(nn.Module):
    """eps_theta(x_t (N, 1, S, S), t (N,)) -> (N, 1, S, S): an MLP with a sinusoidal time embedding."""

    def __init__(self, size: int = 8, width: int = 256, t_dim: int = 64, T: int = 1000):
        super().__init__()
        self.size, self.t_dim, self.T = size, t_dim, T
        d = size * size
        self.net = nn.Sequential(
            nn.Linear(d + t_dim, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
            nn.Linear(width, width), nn.SiLU(), nn.Linear(width, d),
        )  # fmt: skip

    def embed(self, t: torch.Tensor) -> torch.Tensor:
        half = self.t_dim // 2  # Transformer-style frequencies, as Ho et al. use for t
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
        a = t.float()[:, None] * freqs[None]  # (N, half)
        return torch.cat([a.sin(), a.cos()], dim=1)  # (N, t_dim)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x.flatten(1), self.embed(t)], dim=1)  # (N, S*S + t_dim)
        return self.net(h).view_as(x)
