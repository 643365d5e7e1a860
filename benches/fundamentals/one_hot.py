"""1.08 One-hot encoding: labels (...,) int64 -> (..., C) int64 with a 1 at each label.

Own encoders validate first: labels must be an integer tensor (TypeError), no label may be
negative or >= num_classes (ValueError naming the offending value and the valid range);
``num_classes=-1`` infers max + 1 as ``F.one_hot`` does, and empty labels then raise. ``F.one_hot``
raises RuntimeError("Class values must be non-negative.") for the same inputs; the validation
costs one min/max pass and, on a GPU, a device-to-host sync for the two numbers.

Compared, all against ``F.one_hot`` (``torch_one_hot``, the baseline):

* ``scatter``: zeros (..., C), then ``scatter_`` a 1 at each label: one full-size zero fill,
  one write per row.
* ``compare``: ``labels[..., None] == arange(C)`` cast to int64: a bool (..., C) temporary first.
* ``eye_index``: rows of a (C, C) identity (``eye[labels]``), built outside the timed region.

Lesson: one-hot is bound by writing its output, C int64 values per label, almost all
zero; how the ones get there hardly matters (the claims: each encoder within a small factor
of ``F.one_hot``). The better move is not to build it: cross-entropy takes class indices
(PyTorch docs, ``nn.CrossEntropyLoss``), and ``one_hot(y) @ W`` is ``W[y]``. The encoders
live in :mod:`kernels.tensor.one_hot`.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import torch
import torch.nn.functional as F

from harness import Operator, impl, task
from harness.claims import time_ratio
from harness.mutants import replace_call
from kernels.tensor import wrong
from kernels.tensor.one_hot import one_hot_compare, one_hot_eye, one_hot_scatter


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


@task("fundamentals.one_hot", seed="1.08", title="one-hot encoding")
class OneHot(Operator):
    __doc__ = __doc__
    sizes = {
        "tiny": [OneHotConfig(s, c) for s, c in (((10,), 4), ((2, 7), 5), ((13,), -1), ((0,), 3), ((3, 4, 2), 1))],
        "cpu": [OneHotConfig((65536,), 10), OneHotConfig((65536,), 100), OneHotConfig((8192,), 1000)],
        "gpu": [OneHotConfig((1 << 20,), 10), OneHotConfig((1 << 20,), 100), OneHotConfig((131072,), 1000)],
    }
    claims = (
        time_ratio(
            "scatter",
            to="torch_one_hot",
            at_most=1.5,
            text="zeros + scatter_ within 1.5x of F.one_hot at C=1000 (both bound by the output write)",
        ),
        time_ratio(
            "compare", to="torch_one_hot", at_most=2.0, text="broadcast compare within 2x of F.one_hot at C=1000"
        ),
        time_ratio(
            "eye_index", to="torch_one_hot", at_most=2.0, text="identity-row gather within 2x of F.one_hot at C=1000"
        ),
    )
    mutants = (
        replace_call(
            "accepts_minus_one",
            "no validation: -1 becomes an all-zero row",
            "compare",
            wrong.one_hot_unchecked,
            match="negative label rejected",
        ),
        replace_call(
            "unclear_error",
            "rejects -1 with scatter_'s RuntimeError, not a clear ValueError",
            "scatter",
            wrong.one_hot_raw_scatter,
            match="expected",
        ),
        replace_call("float_output", "returns float32, not int64 like F.one_hot", "eye_index", wrong.one_hot_float),
        replace_call("off_by_one_class", "the 1 lands one class too far", "scatter", wrong.one_hot_shifted),
    )

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
        t = functools.partial(torch.tensor, device=ctx.device)
        ok = t([0, 2, 1, 3])
        bad = (  # (error, labels, num_classes, message part, check name)
            (ValueError, t([0, -1, 2]), 4, ">= 0", "negative label rejected"),
            (ValueError, t([[0, 1], [4, 2]]), 4, "out of range", "label >= num_classes rejected"),
            (ValueError, t([-3]), -1, ">= 0", "negative label rejected (inferred C)"),
            (TypeError, ok.float(), 4, "integer", "float labels rejected"),
            (ValueError, ok[:0], -1, "infer", "empty labels, C=-1 rejected"),
        )
        for spec in ctx.implementations(self):
            if spec.baseline:
                continue  # F.one_hot raises RuntimeError; the clear errors are the own encoders' job
            enc = getattr(self, spec.method)
            for error, labels, c, match, name in bad:
                ctx.expect_raises(error, enc(labels, c), match=match, name=name)
            out = enc(ok, 6)()
            ctx.expect(
                out.dtype == torch.int64 and out.shape == (4, 6),
                f"{spec.name}: dtype {out.dtype}, shape {tuple(out.shape)}; F.one_hot gives int64 (4, 6)",
                name="int64 (..., C) like F.one_hot",
            )
