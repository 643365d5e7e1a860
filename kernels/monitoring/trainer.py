"""The training step the monitoring task watches: an MLP and AdamW on one fixed batch."""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class Trainer:
    """An MLP (features -> hidden -> 10) and AdamW on ``device``; ``step()`` trains one batch.

    Args:
        cfg: anything with int fields ``batch``, ``features`` and ``hidden``.
        device: where the model, the (B, F) float32 batch and its (B,) labels live.
        seed: seeds the batch and the weights.
    """

    def __init__(self, cfg: Any, device: torch.device, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(cfg.batch, cfg.features, generator=g).to(device)  # (B, F)
        self.y = torch.randint(0, 10, (cfg.batch,), generator=g).to(device)  # (B,)
        torch.manual_seed(seed)
        self.model = nn.Sequential(nn.Linear(cfg.features, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 10)).to(device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        self.device = device

    def step(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        F.cross_entropy(self.model(self.x), self.y).backward()
        self.opt.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def run_for(self, seconds: float) -> int:
        """Train steps until ``seconds`` of wall time have passed; returns the steps run."""
        t0, steps = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            self.step()
            steps += 1
        return steps

    def footprint_bytes(self) -> int:
        """Bytes of weights, gradients and optimizer state (what the fake device 'holds')."""
        ts = [p for p in self.model.parameters()] + [p.grad for p in self.model.parameters() if p.grad is not None]
        ts += [v for s in self.opt.state.values() for v in s.values() if torch.is_tensor(v)]
        return sum(t.numel() * t.element_size() for t in ts)
