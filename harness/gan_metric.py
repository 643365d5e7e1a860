"""The one sample-quality metric of the generative tasks: a digits-feature Fréchet distance.

FID (Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local
Nash equilibrium", arXiv:1706.08500) fits a Gaussian to Inception-v3 pool features of real
and of generated images and reports the Fréchet (2-Wasserstein) distance between them::

    FD = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))

Inception weights cannot be had offline and 8x8 digits are not ImageNet photos, so the
features here are the 64 penultimate ReLU units of a small digits classifier
(:class:`DigitsClassifier`) that the harness trains deterministically on sklearn's digits
and caches in the temp folder, keyed by its config (never in the repo). The number is
labelled :data:`LABEL`: it ranks samples of the same data, and is not comparable to any
published FID. The same classifier's accuracy on conditional samples says whether G(z, y)
looks like a y.

Images enter as float (N, 1, S, S) in [-1, 1]; S other than 8 is area-resized to 8x8.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

#: How the report names the metric.
LABEL = "digits-feature FD, not comparable to published FID"


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """How the feature classifier is trained (the cache key)."""

    hidden: int = 128
    """units of the first hidden layer"""
    features: int = 64
    """units of the penultimate layer: the feature dimension of the FD"""
    steps: int = 300
    """full-batch Adam steps"""
    lr: float = 3e-3
    """Adam learning rate"""
    seed: int = 0
    """seeds the weights and the train/test split"""


def digits_images(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's 1,797 digits as images x (1797, 1, 8, 8) in [-1, 1] and labels int64 (1797,)."""
    from harness.data.digits import digits_features

    x, y = digits_features(dtype)
    return x.view(-1, 1, 8, 8) * 2 - 1, y  # [0, 1] -> [-1, 1], (N, 64) -> (N, 1, 8, 8)


class DigitsClassifier(nn.Module):
    """(N, 1, 8, 8) in [-1, 1] -> logits (N, 10); :meth:`features` gives (N, features)."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(64, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.features), nn.ReLU()
        )
        self.head = nn.Linear(cfg.features, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 8 or x.shape[-2] != 8:
            x = F.interpolate(x, size=(8, 8), mode="area")  # (N, 1, S, S) -> (N, 1, 8, 8)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _cache_path(cfg: ClassifierConfig) -> Path:
    key = hashlib.sha256(f"{cfg}|torch {torch.__version__}".encode()).hexdigest()[:16]
    root = Path(os.environ.get("DRILLS_CACHE_DIR") or Path(tempfile.gettempdir()) / "torchdrills-cache")
    return root / f"digits_classifier_{key}.pt"


def _train(cfg: ClassifierConfig) -> tuple[DigitsClassifier, float]:
    from harness.data.tabular import stratified_split

    x, y = digits_images()
    tr, te = stratified_split(y, 0.2, seed=cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=g)))
        net = DigitsClassifier(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    for _ in range(cfg.steps):  # full batch: no sampling, so the run is deterministic
        opt.zero_grad()
        F.cross_entropy(net(x[tr]), y[tr]).backward()
        opt.step()
    with torch.no_grad():
        acc = float((net(x[te]).argmax(1) == y[te]).float().mean())
    return net, acc


@functools.lru_cache(maxsize=2)
def digits_classifier(cfg: ClassifierConfig = ClassifierConfig()) -> tuple[DigitsClassifier, float]:
    """The trained feature classifier (eval mode, CPU) and its held-out accuracy (0..1).

    Trained once per config and torch version, then loaded from
    ``$DRILLS_CACHE_DIR`` (default ``<tmp>/torchdrills-cache``); a broken cache file is retrained.
    """
    path = _cache_path(cfg)
    net = DigitsClassifier(cfg)
    try:
        blob = torch.load(path, weights_only=True)
        net.load_state_dict(blob["state"])
        acc = float(blob["acc"])
    except Exception:  # missing or unreadable: train and write atomically
        net, acc = _train(cfg)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save({"state": net.state_dict(), "acc": acc}, tmp)
        os.replace(tmp, path)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval(), acc


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """FD between Gaussians fitted to features a (N, D) and b (M, D), computed in float64.

    Tr (S_a S_b)^(1/2) = sum of sqrt(eigenvalues of S_a^(1/2) S_b S_a^(1/2)), a symmetric PSD
    matrix with the same eigenvalues as S_a S_b (no non-symmetric matrix square root needed).

    Raises:
        ValueError: not 2-D, feature dims differ, or fewer than 2 rows.
    """
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"frechet_distance: need (N, D) and (M, D) features, got {tuple(a.shape)}, {tuple(b.shape)}")
    if min(a.shape[0], b.shape[0]) < 2:
        raise ValueError("frechet_distance: need at least 2 samples on each side for a covariance")
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = torch.cov(a.T), torch.cov(b.T)  # (D, D), unbiased (N - 1), as torchmetrics
    w, v = torch.linalg.eigh(s_a)
    root_a = (v * w.clamp_min(0).sqrt()) @ v.T  # S_a^(1/2)
    cross = torch.linalg.eigvalsh(root_a @ s_b @ root_a).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + s_a.trace() + s_b.trace() - 2 * cross)


@torch.no_grad()
def digits_fd(samples: torch.Tensor, real: torch.Tensor | None = None) -> float:
    """:data:`LABEL` of samples (N, 1, S, S) in [-1, 1] against real digits (default: all 1,797)."""
    net, _ = digits_classifier()
    real = digits_images()[0] if real is None else real
    return frechet_distance(net.features(samples.detach().float().cpu()), net.features(real.float().cpu()))


@torch.no_grad()
def label_accuracy(samples: torch.Tensor, labels: torch.Tensor) -> float:
    """Share (0..1) of samples (N, 1, S, S) the digits classifier labels as ``labels`` (N,)."""
    net, _ = digits_classifier()
    return float((net(samples.detach().float().cpu()).argmax(1) == labels.cpu()).float().mean())
