"""Wrong standardisers (and a model stuck at the baseline): the mutants of nn_basics.tabular_mlp.

The standardisers have the signature of that task's ``standardizer(x_train, x_all) -> (mean
(F,), std (F,))`` (``x_train``: float (N_train, F); ``x_all``: every row (N, F)); each is a
plausible data leak or slip against :func:`harness.data.tabular.fit_standardizer` (statistics
of the training rows only, population std). The task's checks must catch each one
(``tests/tasks/test_mutants.py``).
"""

from __future__ import annotations

import torch

from .tabular import fit_standardizer


def fits_on_all_rows(x_train: torch.Tensor, x_all: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """WRONG: the classic leak: fitted before the split, test rows in the statistics."""
    return fit_standardizer(x_all)


def sample_std(x_train: torch.Tensor, x_all: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """WRONG: the sample std (n - 1), not the population std that StandardScaler uses."""
    return x_train.mean(0), x_train.std(0)


def one_test_row(x_train: torch.Tensor, x_all: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """WRONG: one test row in the fit: a small leak is still a leak."""
    extra = next(r for r in x_all if not (x_train == r).all(1).any())
    return fit_standardizer(torch.cat([x_train, extra[None]]))


def majority_model(self, ctx, name, recipe, opt, data, budget):
    """WRONG: a ``train_variant`` whose model never moves off the majority class: its held-out
    accuracy is always that of predicting the most common training label."""
    from harness.trained import train_recipe  # the harness's training, then the accuracies replaced

    run = train_recipe(ctx, name, recipe, opt, data, budget)
    (_, y_train), (_, y_test) = data
    majority = (y_test == torch.bincount(y_train).argmax()).float().mean().item()
    run.log.eval_accuracy = [majority] * len(run.log.eval_accuracy)
    return run
