"""Pure-PyTorch Philox-4x32-10, bit-exact with Triton's ``tl.randint`` / ``tl.rand``.

Why this file exists: a dropout kernel that regenerates its mask from ``(seed, offset)``
(Triton tutorial 04, "Low-Memory Dropout") can only be checked against a reference that
draws *the same* random numbers.  This module is that reference, and it is the written
contract that the Triton, CUDA and CPU C++ dropout kernels of torchdrills all implement,
so all of them produce the same keep-mask for the same ``(seed, offset, p)``.

Algorithm (as implemented in ``triton/language/random.py``, Triton 3.x)
------------------------------------------------------------------------
Philox 4x32 with 10 rounds (Salmon et al., "Parallel Random Numbers: As Easy as
1, 2, 3", SC'11), all arithmetic on uint32 (mod 2**32):

* counter (c0, c1, c2, c3) = (offset mod 2**32, (offset >> 32) mod 2**32, 0, 0)
  where ``offset`` is a 64-bit signed element index (arithmetic shift; offsets are
  meant to be >= 0, and for them an int32 offset in Triton gives the same counter);
* key (k0, k1) = (seed mod 2**32, (seed >> 32) mod 2**32), ``seed`` taken mod 2**64
  (Triton converts the seed to uint64 with sign extension, which is the same thing);
* 10 times::

      hi0, lo0 = mulhilo(PHILOX_ROUND_B, c2)      # 0xCD9E8D57
      hi1, lo1 = mulhilo(PHILOX_ROUND_A, c0)      # 0xD2511F53
      c0, c1, c2, c3 = hi0 ^ c1 ^ k0, lo0, hi1 ^ c3 ^ k1, lo1
      k0 += PHILOX_KEY_A                          # 0x9E3779B9
      k1 += PHILOX_KEY_B                          # 0xBB67AE85

  where ``mulhilo(a, b)`` is the 64-bit product split into its high and low 32 bits;
* ``randint(seed, offset)`` is the final ``c0`` (uint32);
* ``rand(seed, offset)``: reinterpret ``c0`` as int32 ``s``; if ``s < 0`` take ``~s``
  (so ``v = c0`` if ``c0 < 2**31`` else ``2**32 - 1 - c0``, in [0, 2**31 - 1]); then
  ``u = float32(v) * float32(4.6566127342e-10)``, both steps rounded to nearest even
  in IEEE float32.  The scale is the largest float with ``(2**31 - 1) * scale < 1``,
  so ``u`` is in [0, 1).
* dropout keep-mask (tutorial 04): ``keep = u > float32(p)``; by torchdrills
  convention ``p == 0`` keeps everything without drawing (the kernels skip the RNG), and
  ``p == 1`` drops everything.  The offset of an element is its row-major index in the
  logical tensor (independent of its memory strides).

uint32 arithmetic is emulated in int64 tensors: every value is kept in [0, 2**32) by
masking, and the 32x32-bit product is split into 16-bit halves so that no intermediate
exceeds 2**49 (int64 overflow would be undefined in C++).

Shapes and dtypes: ``offsets`` is any-shaped integer tensor on any device; results have
its shape and device.  Cost: about 10 * 12 int64 elementwise ops per element, meant for
checks, not speed.
"""

from __future__ import annotations

import torch

__all__ = [
    "MASK32",
    "N_ROUNDS",
    "PHILOX_KEY_A",
    "PHILOX_KEY_B",
    "PHILOX_ROUND_A",
    "PHILOX_ROUND_B",
    "UNIFORM_SCALE",
    "dropout_mask",
    "philox4x32",
    "philox_randint",
    "philox_uniform",
]

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF
#: Weyl-sequence key increments (golden ratio and sqrt(3) - 1, times 2**32).
PHILOX_KEY_A = 0x9E3779B9
PHILOX_KEY_B = 0xBB67AE85
#: Round multipliers of Philox-4x32 (Salmon et al. 2011, table 2).
PHILOX_ROUND_A = 0xD2511F53
PHILOX_ROUND_B = 0xCD9E8D57
#: Triton's default number of rounds (``triton.language.random.N_ROUNDS_DEFAULT``).
N_ROUNDS = 10
#: ``uint_to_uniform_float`` scale for 32-bit draws; used as a float32.
UNIFORM_SCALE = 4.6566127342e-10


def _check_seed(seed: int) -> int:
    """Return ``seed mod 2**64``; raise TypeError/ValueError for non-int or out-of-range."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be a Python int, got {type(seed).__name__}")
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"seed must lie in [-2**63, 2**64), got {seed}")
    return seed & MASK64


def _check_offsets(offsets: torch.Tensor) -> torch.Tensor:
    if not isinstance(offsets, torch.Tensor):
        raise TypeError(f"offsets must be a torch.Tensor, got {type(offsets).__name__}")
    if offsets.dtype.is_floating_point or offsets.dtype.is_complex or offsets.dtype == torch.bool:
        raise TypeError(f"offsets must be an integer tensor (int64 preferred), got {offsets.dtype}")
    return offsets.to(torch.int64)


def _mulhilo(const: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """High and low 32 bits of ``const * x`` for a uint32 constant and uint32 values in int64."""
    x_hi = x >> 16  # < 2**16
    x_lo = x & 0xFFFF
    p_hi = x_hi * const  # < 2**48: weight 2**16
    p_lo = x_lo * const  # < 2**48: weight 1
    # full = p_hi * 2**16 + p_lo; floor(full / 2**32) = floor((p_hi + floor(p_lo / 2**16)) / 2**16)
    hi = (p_hi + (p_lo >> 16)) >> 16
    lo = (((p_hi & 0xFFFF) << 16) + p_lo) & MASK32
    return hi, lo


def philox4x32(
    c0: torch.Tensor,
    c1: torch.Tensor,
    c2: torch.Tensor,
    c3: torch.Tensor,
    k0: int,
    k1: int,
    n_rounds: int = N_ROUNDS,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Philox-4x32 block function (``philox_impl`` in Triton, ``philox4x32_R`` in
    Random123): ``n_rounds`` rounds on counter (c0..c3) under key (k0, k1).

    Args:
        c0..c3: int64 tensors (broadcastable) holding uint32 values in [0, 2**32).
        k0, k1: Python ints in [0, 2**32).
    Returns:
        The four output words, int64 tensors of uint32 values.  With 10 rounds this
        reproduces Random123's known-answer vectors (tests/kernels/test_philox.py).
    """
    if not (0 <= k0 <= MASK32 and 0 <= k1 <= MASK32):
        raise ValueError(f"key words must lie in [0, 2**32), got {k0}, {k1}")
    for _ in range(n_rounds):
        hi_b, lo_b = _mulhilo(PHILOX_ROUND_B, c2)
        hi_a, lo_a = _mulhilo(PHILOX_ROUND_A, c0)
        c0, c1, c2, c3 = hi_b ^ c1 ^ k0, lo_b, hi_a ^ c3 ^ k1, lo_a
        k0 = (k0 + PHILOX_KEY_A) & MASK32
        k1 = (k1 + PHILOX_KEY_B) & MASK32
    return c0, c1, c2, c3


def philox_randint(seed: int, offsets: torch.Tensor, n_rounds: int = N_ROUNDS) -> torch.Tensor:
    """Triton's ``tl.randint(seed, offsets)``: one uint32 draw per offset.

    Args:
        seed: Python int in [-2**63, 2**64) (taken mod 2**64, as Triton does).
        offsets: integer tensor of any shape (converted to int64); non-negative element
            indices in practice.
        n_rounds: Philox rounds (Triton's default 10).
    Returns:
        int64 tensor of ``offsets``' shape and device holding uint32 values in [0, 2**32).
    Raises:
        TypeError: seed not an int, or offsets not an integer tensor.
        ValueError: seed out of range.
    """
    seed = _check_seed(seed)
    off = _check_offsets(offsets)
    zero = torch.zeros_like(off)
    c0, _, _, _ = philox4x32(off & MASK32, (off >> 32) & MASK32, zero, zero, seed & MASK32, seed >> 32, n_rounds)
    return c0


def philox_uniform(seed: int, offsets: torch.Tensor, n_rounds: int = N_ROUNDS) -> torch.Tensor:
    """Triton's ``tl.rand(seed, offsets)``: float32 uniform draws in [0, 1), bit-exact.

    Args/raises: as :func:`philox_randint`.
    Returns:
        float32 tensor of ``offsets``' shape and device.
    """
    x = philox_randint(seed, offsets, n_rounds)
    # bitcast to int32 and fold negatives with ~s: v in [0, 2**31 - 1]
    v = torch.where(x >= 2**31, MASK32 - x, x)
    scale = torch.tensor(UNIFORM_SCALE, dtype=torch.float32, device=v.device)
    return v.to(torch.float32) * scale


def dropout_mask(
    seed: int,
    numel_or_offsets: int | torch.Tensor,
    p: float,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Keep-mask of dropout with probability ``p``: ``philox_uniform(seed, offsets) > float32(p)``.

    Args:
        seed: as :func:`philox_randint`.
        numel_or_offsets: an int ``n`` (offsets ``0 .. n-1``, shape ``(n,)``) or an integer
            tensor of offsets (the row-major element indices of the dropped tensor).
        p: drop probability in [0, 1]. ``p == 0`` keeps all (no draw), ``p == 1`` drops all.
        device: where to build ``arange(n)`` when an int is given (default CPU).
    Returns:
        bool tensor, True where the element is kept (then scaled by ``1 / (1 - p)``).
    Raises:
        ValueError: p outside [0, 1] or negative n. TypeError: as :func:`philox_randint`.
    """
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability p must be in [0, 1], got {p}")
    if isinstance(numel_or_offsets, torch.Tensor):
        offsets = _check_offsets(numel_or_offsets)
    else:
        n = int(numel_or_offsets)
        if n < 0:
            raise ValueError(f"numel must be >= 0, got {n}")
        offsets = torch.arange(n, dtype=torch.int64, device=device)
    if p == 0.0:
        _check_seed(seed)
        return torch.ones(offsets.shape, dtype=torch.bool, device=offsets.device)
    u = philox_uniform(seed, offsets)
    return u > torch.tensor(p, dtype=torch.float32, device=u.device)
