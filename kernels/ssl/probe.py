"""Linear evaluation of a frozen encoder (the protocol of SimCLR and BYOL, on small data).

Chen et al. 2020 (SimCLR, section 4 / appendix B.6) and Grill et al. 2020 (BYOL, section 4.1)
rate a representation by training a linear classifier on the frozen encoder's outputs. Here the
classifier is scikit-learn's multinomial ``LogisticRegression`` (L-BFGS) on standardised features.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import nn


@torch.no_grad()
def features(encoder: nn.Module, x: torch.Tensor) -> np.ndarray:
    """The encoder's outputs (N, D) as float64 numpy, the encoder in eval mode (restored after)."""
    was = encoder.training
    encoder.eval()
    out = encoder(x).double().cpu().numpy()
    encoder.train(was)
    return out


def linear_probe(encoder: nn.Module, xtr: torch.Tensor, ytr: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor,
                 c: float = 1.0) -> float:  # fmt: skip
    """Held-out accuracy in [0, 1] of a logistic regression on frozen features.

    Args: xtr (N, 64), ytr int64 (N,) the labelled training digits; xte, yte the held-out ones;
    ``c`` the inverse L2 strength of scikit-learn's ``LogisticRegression``.
    """
    scaler = StandardScaler().fit(features(encoder, xtr))
    clf = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(features(encoder, xtr)), ytr.cpu().numpy())
    return float(clf.score(scaler.transform(features(encoder, xte)), yte.cpu().numpy()))
