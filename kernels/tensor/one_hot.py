"""One-hot encoding by hand: labels (...,) int64 -> (..., C) int64, validated first.

Each encoder checks its labels (:func:`validate`) and raises a clear TypeError/ValueError
where ``F.one_hot`` raises RuntimeError("Class values must be non-negative.").
"""

from __future__ import annotations

import torch


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
    """Zeros (..., C), then ``scatter_`` a 1 at each label. Errors as :func:`validate`."""
    c = validate(labels, num_classes)
    out = torch.zeros(*labels.shape, c, dtype=torch.int64, device=labels.device)  # (..., C)
    return out.scatter_(-1, labels.unsqueeze(-1).long(), 1)  # index (..., 1): one 1 per row


def one_hot_compare(labels: torch.Tensor, num_classes: int = -1) -> torch.Tensor:
    """``labels[..., None] == arange(C)`` cast to int64. Errors as :func:`validate`."""
    c = validate(labels, num_classes)
    classes = torch.arange(c, device=labels.device)  # (C,)
    return (labels.unsqueeze(-1) == classes).to(torch.int64)  # (..., 1) vs (C,) -> (..., C)


def one_hot_eye(labels: torch.Tensor, num_classes: int = -1, eye: torch.Tensor | None = None) -> torch.Tensor:
    """Rows of a (C, C) int64 identity (``eye``, built here if not given). Errors as :func:`validate`."""
    c = validate(labels, num_classes)
    if eye is None or eye.shape[0] != c:
        eye = torch.eye(c, dtype=torch.int64, device=labels.device)  # (C, C)
    return eye[labels]  # (..., C): row `label` of the identity
