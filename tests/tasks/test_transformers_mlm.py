"""6.09 mlm: the check passes; a loss over all positions, a 90/5/5 rule, a 20% selection, random
replacements drawn from the whole vocabulary (specials included) or from its lower half, and
selection of padding are caught."""

import torch
import torch.nn.functional as F

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("transformers.mlm")
module = __import__(Task.__module__, fromlist=["mlm_mask"])
IGNORE = module.IGNORE


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert abs(rec.metrics["selected_fraction"] - 0.15) < 0.01
    assert abs(rec.metrics["mask_fraction_of_selected"] - 0.8) < 0.02


def _mask(p_select=0.15, split=(0.8, 0.9), low=None, high=None, pad_ok=False):
    def fn(ids, *, mask_id, first_ordinary, vocab_size, pad_id=0, select_p=None, generator=None):
        g = generator
        sel = torch.rand(ids.shape, generator=g) < p_select
        if not pad_ok:
            sel &= ids != pad_id
        u = torch.rand(ids.shape, generator=g)
        lo = first_ordinary if low is None else low
        hi = vocab_size if high is None else high(vocab_size)
        rnd = torch.randint(lo, hi, ids.shape, generator=g)
        out = torch.where(sel & (u < split[0]), mask_id, ids)
        out = torch.where(sel & (u >= split[0]) & (u < split[1]), rnd, out)
        return out, torch.where(sel, ids, IGNORE)

    return staticmethod(fn)


def _wrong(**kw):
    class Wrong(Task):
        mask_fn = _mask(**kw)

        def _train(self, ctx, config, tok, train_ids, test_ids):  # the statistics fail first; skip training
            return 0.0, 1.0

    return Wrong


def test_reference_planting_helper_passes():
    run_check(_wrong())  # the planted helper with correct settings passes: failures below come from the bugs


def test_ninety_five_five_is_caught():
    expect_check_fails(_wrong(split=(0.9, 0.95)), match="80/10/10")


def test_twenty_percent_selection_is_caught():
    expect_check_fails(_wrong(p_select=0.2), match="against p = 0.15")


def test_random_tokens_from_the_whole_vocabulary_are_caught():
    expect_check_fails(_wrong(low=0), match="ordinary tokens")


def test_random_tokens_from_half_the_vocabulary_are_caught():
    expect_check_fails(_wrong(high=lambda v: v // 2), match="uniform")


def test_padding_selected_is_caught():
    expect_check_fails(_wrong(pad_ok=True), match="padding")


def test_loss_over_all_positions_is_caught():
    def all_positions(logits, labels):
        # the original token is recoverable at selected positions only; elsewhere any target will do
        targets = torch.where(labels == IGNORE, 3, labels)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    class Wrong(Task):
        loss_fn = staticmethod(all_positions)

        def _train(self, ctx, config, tok, train_ids, test_ids):
            return 0.0, 1.0

    expect_check_fails(Wrong, match="mlm loss")
