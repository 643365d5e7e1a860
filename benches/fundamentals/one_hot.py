"""1.08 One-hot encoding: labels (...,) int64 -> (..., C) int64 with a 1 at each label.

Own encoders validate first: labels must be an integer tensor (TypeError), no label may
be negative or >= num_classes (ValueError naming the offending value and the valid
range); ``num_classes=-1`` infers max + 1 as ``F.one_hot`` does, and empty labels then
raise (nothing to infer from). ``F.one_hot`` raises RuntimeError("Class values must be
non-negative.") for the same inputs; the validation costs one min/max pass and, on a
GPU, a device-to-host sync for the two numbers.

Compared, all against ``F.one_hot``:

* ``torch_one_hot`` (baseline): ``F.one_hot``.
* ``scatter``: zeros (..., C), then ``scatter_`` a 1 at each label: one full-size
  zero fill, one write per row.
* ``compare``: ``labels[..., None] == arange(C)``, a broadcast comparison, cast to
  int64: a bool (..., C) temporary, then the int64 output.
* ``eye_index``: rows of a (C, C) identity picked by the labels (``eye[labels]``);
  the identity is built once, outside the timed region.

Throughput is rows/s (one row = one label) and GB/s (labels read + output written).

Lesson: one-hot is bound by writing its output, C int64 values per label, almost all
zero; how the ones get there hardly matters (all four within 1.7x). The better move
is not to build it: cross-entropy takes class indices, and ``one_hot(y) @ W`` is
``W[y]``. Measured on this shared 2-core CPU VM, one thread (OMP_NUM_THREADS=1),
medians: 65536 labels, C=10 (5 MB out): torch_one_hot 1.7 ms (39 M rows/s), scatter
1.7 ms, compare 2.4 ms, eye_index 1.0 ms (65 M rows/s); C=100 (52 MB): 87 / 90 / 103 /
101 ms (0.6-0.76 M rows/s); 8192 labels, C=1000 (65 MB): 96 / 105 / 110 / 160 ms (51-85 k
rows/s, 0.4-0.7 GB/s: fresh large outputs page-fault on this VM).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from harness import Operator, impl, task


@dataclasses.dataclass(frozen=True)
class OneHotConfig:
    """Encode labels of ``shape`` into ``num_classes`` classes."""

    shape: tuple[int, ...]
    """shape of the label tensor (rows)"""
    num_classes: int
    """classes C; -1 infers max(labels) + 1 (labels are then drawn from 0..6)"""

    @property
    def label(self) -> str:
        return f"{'x'.join(map(str, self.shape))} C={self.num_classes}"


def validate(labels: torch.Tensor, num_classes: int) -> int:
    """Check labels and return the number of classes (inferred when ``num_classes`` is -1).

    Raises:
        TypeError: labels not of an integer dtype.
        ValueError: a negative label, a label >= num_classes, num_classes < -1 or 0
            with labels present, or -1 with empty labels.
    """
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(
            f"one_hot: labels must be an integer tensor of class indices, got {labels.dtype}; "
            "convert with labels.long()"
        )
    if num_classes < -1:
        raise ValueError(f"one_hot: num_classes must be positive, or -1 to infer it; got {num_classes}")
    if labels.numel() == 0:
        if num_classes == -1:
            raise ValueError("one_hot: cannot infer num_classes from empty labels; pass num_classes")
        return num_classes
    lo, hi = (int(v) for v in torch.aminmax(labels))  # one pass; .item() syncs on a GPU
    if lo < 0:
        raise ValueError(f"one_hot: labels must be >= 0, found {lo}")
    if num_classes == -1:
        return hi + 1
    if hi >= num_classes:
        raise ValueError(f"one_hot: label {hi} out of range for num_classes={num_classes} (valid 0..{num_classes - 1})")
    return num_classes


def one_hot_scatter(labels: torch.Tensor, num_classes: int = -1) -> torch.Tensor:
    c = validate(labels, num_classes)
    out = torch.zeros(*labels.shape, c, dtype=torch.int64, device=labels.device)  # (..., C)
    return out.scatter_(-1, labels.unsqueeze(-1).long(), 1)  # index (..., 1): one 1 per row


def one_hot_compare(labels: torch.Tensor, num_classes: int = -1) -> torch.Tensor:
    c = validate(labels, num_classes)
    classes = torch.arange(c, device=labels.device)  # (C,)
    return (labels.unsqueeze(-1) == classes).to(torch.int64)  # (..., 1) vs (C,) -> (..., C)


def one_hot_eye(labels: torch.Tensor, num_classes: int = -1, eye: torch.Tensor | None = None) -> torch.Tensor:
    c = validate(labels, num_classes)
    if eye is None or eye.shape[0] != c:
        eye = torch.eye(c, dtype=torch.int64, device=labels.device)  # (C, C)
    return eye[labels]  # (..., C): row `label` of the identity


@task("fundamentals.one_hot", seed="1.08", title="one-hot encoding")
class OneHot(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [
            OneHotConfig((10,), 4),
            OneHotConfig((2, 7), 5),
            OneHotConfig((13,), -1),
            OneHotConfig((0,), 3),
            OneHotConfig((3, 4, 2), 1),
        ],
        "cpu": [OneHotConfig((65536,), 10), OneHotConfig((65536,), 100), OneHotConfig((8192,), 1000)],
        "gpu": [OneHotConfig((1 << 20,), 10), OneHotConfig((1 << 20,), 100), OneHotConfig((131072,), 1000)],
    }

    def inputs(self, config, device, dtype, seed):
        g = torch.Generator().manual_seed(seed)
        high = config.num_classes if config.num_classes > 0 else 7
        return torch.randint(0, high, config.shape, generator=g).to(device), config.num_classes

    def reference(self, labels, num_classes):
        return F.one_hot(labels, num_classes)

    def items(self, config):
        return math.prod(config.shape), "rows"

    def bytes(self, config, dtype):
        c = config.num_classes if config.num_classes > 0 else 7
        return 8 * math.prod(config.shape) * (1 + c)  # int64 labels in, int64 (..., C) out

    @impl(baseline=True)
    def torch_one_hot(self, labels, num_classes):
        return lambda: F.one_hot(labels, num_classes)

    @impl
    def scatter(self, labels, num_classes):
        return lambda: one_hot_scatter(labels, num_classes)

    @impl
    def compare(self, labels, num_classes):
        return lambda: one_hot_compare(labels, num_classes)

    @impl
    def eye_index(self, labels, num_classes):
        # the table is built once, outside the timed call (inferred C: inside, it is unknown yet)
        eye = torch.eye(num_classes, dtype=torch.int64, device=labels.device) if num_classes > 0 else None
        return lambda: one_hot_eye(labels, num_classes, eye)

    def extra_checks(self, ctx):
        dev = ctx.device
        ok = torch.tensor([0, 2, 1, 3], device=dev)
        for spec in ctx.implementations(self):
            if spec.baseline:
                continue  # F.one_hot raises RuntimeError; the clear errors are the own encoders' job
            enc = getattr(self, spec.method)
            where = f"{spec.name}: "
            ctx.expect_raises(
                ValueError, enc(torch.tensor([0, -1, 2], device=dev), 4), match=">= 0", name="negative label rejected"
            )
            ctx.expect_raises(
                ValueError,
                enc(torch.tensor([[0, 1], [4, 2]], device=dev), 4),
                match="out of range",
                name="label >= num_classes rejected",
            )
            ctx.expect_raises(
                ValueError,
                enc(torch.tensor([-3], device=dev), -1),
                match=">= 0",
                name="negative label rejected (inferred C)",
            )
            ctx.expect_raises(TypeError, enc(ok.float(), 4), match="integer", name="float labels rejected")
            ctx.expect_raises(ValueError, enc(ok[:0], -1), match="infer", name="empty labels, C=-1 rejected")
            out = enc(ok, 6)()
            ctx.expect(
                out.dtype == torch.int64 and out.shape == (4, 6),
                where + f"dtype {out.dtype}, shape {tuple(out.shape)}; F.one_hot gives int64 (4, 6)",
                name="int64 (..., C) like F.one_hot",
            )
