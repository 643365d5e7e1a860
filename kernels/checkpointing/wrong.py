"""Wrong checkpoint functions: the mutants of m5.activation_checkpointing, each a plausible
mistake in wrapping a block with ``torch.utils.checkpoint`` (the right one:
:func:`kernels.autograd.block_checkpoint.torch_checkpoint`). Same call as the right one:
``ckpt(fn, x, **kwargs)`` returns ``fn(x)`` (x: (B, T, E) hidden states).
"""

from __future__ import annotations

from kernels.autograd.block_checkpoint import torch_checkpoint


def detaching_checkpoint(fn, x, **kw):
    """WRONG: checkpoints a detached copy of the input: nothing before the block gets a gradient."""
    return torch_checkpoint(fn, x.detach(), **kw)


def checkpoint_without_rng(fn, x, **kw):
    """WRONG: recomputes without restoring the RNG state: dropout draws new masks in backward."""
    return torch_checkpoint(fn, x, preserve_rng_state=False, **kw)


def no_checkpoint(fn, x, context_fn=None, **kw):
    """WRONG: calls the block plainly: everything is kept, nothing is saved."""
    return fn(x)
