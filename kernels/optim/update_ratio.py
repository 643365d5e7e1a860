"""Update/weight ratios ||W_{t+1} - W_t|| / ||W_t|| of every weight matrix at every step.

The ratio says how far one optimizer step moves a layer relative to its size; the CS231n
notes ("Neural Networks Part 3", section "Ratio of weights:updates") give ~1e-3 as a
healthy order of magnitude. :class:`UpdateRatioTracker` records it without a device sync
in the training loop; :class:`ItemTracker` is the naive recorder (``.item()`` per layer per
step: a sync each on CUDA), kept for the comparison.
"""

from __future__ import annotations

import torch
from torch import nn


class UpdateRatioTracker:
    """Records ||W_{t+1} - W_t|| / ||W_t|| for each weight matrix at each optimizer step.

    Call :meth:`before_step` right before ``optimizer.step()`` and :meth:`after_step` right
    after. Tracked: parameters with 2 or more dims (Linear/conv weights), by name.
    Memory: one copy of the tracked weights. Values stay on the device until
    :meth:`ratios`, which copies them once.
    """

    def __init__(self, model: nn.Module):
        named = [(n, p) for n, p in model.named_parameters() if p.dim() >= 2]
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.prev = [p.detach().clone() for p in self.params]
        self.pending: list[torch.Tensor] = []  # one (layers,) tensor per step

    @torch.no_grad()
    def before_step(self) -> None:
        torch._foreach_copy_(self.prev, [p.detach() for p in self.params])  # W_t

    @torch.no_grad()
    def after_step(self) -> None:
        delta = torch._foreach_sub([p.detach() for p in self.params], self.prev)  # W_{t+1} - W_t
        num = torch.stack(torch._foreach_norm(delta))  # (layers,)
        den = torch.stack(torch._foreach_norm(self.prev))
        self.pending.append(num / den)

    def ratios(self) -> dict[str, list[float]]:
        """Layer name -> ratio at each recorded step (one host copy for the whole run)."""
        if not self.pending:
            return {n: [] for n in self.names}
        table = torch.stack(self.pending).double().cpu()  # (steps, layers)
        return {n: table[:, i].tolist() for i, n in enumerate(self.names)}


class ItemTracker(UpdateRatioTracker):
    """The naive recorder: a Python float per layer per step (``.item()`` syncs on CUDA)."""

    @torch.no_grad()
    def after_step(self) -> None:
        self.pending.append(
            torch.tensor([(p - q).norm().item() / q.norm().item() for p, q in zip(self.params, self.prev)])
        )
