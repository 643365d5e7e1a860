"""Wrong optimizers: the mutants of the optimizer tasks (each one a plausible mistake).

autograd.sgd_momentum swaps these in for :class:`kernels.optim.optimizers.SGD`; its check
(trajectories equal torch.optim.SGD's step by step) must catch each one
(``tests/tasks/test_mutants.py``). Constructor arguments as ``SGD``'s; ``foreach`` is ignored.
"""

from __future__ import annotations

import torch

from kernels.optim.optimizers import SGD


class ZeroInitBufferSGD(SGD):
    """WRONG: momentum buffer started at zero and updated by b <- m b + (1 - dampening) g, so the
    first buffer is (1 - dampening) g instead of g. Identical to torch unless dampening != 0."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(g, alpha=1 - group["dampening"])
                g = g.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf
                p.add_(g, alpha=-group["lr"])


class NesterovStaleBufferSGD(SGD):
    """WRONG: the Nesterov look-ahead goes along the buffer *before* this step's update."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                st = self.state[p]
                g = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                old = st.get("momentum_buffer")
                new = g.clone() if old is None else old * group["momentum"] + (1 - group["dampening"]) * g
                st["momentum_buffer"] = new
                ahead = old if (group["nesterov"] and old is not None) else new
                p.add_(g.add(ahead, alpha=group["momentum"]) if group["nesterov"] else new, alpha=-group["lr"])
