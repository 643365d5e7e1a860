"""m3.pinned_loader: batches arrive intact and in order; planted loader bugs are caught."""

import torch

from harness import REGISTRY
from harness.testing import expect_check_fails, run_check

Task = REGISTRY.get("m3.pinned_loader")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.checks["pinned_prefetch: batch checksums"]["n"] == 14  # 7 batches x 2 configs
    if not torch.cuda.is_available():
        assert rec.skipped_parts[0]["reason"] == "needs cuda"


class _Wrap:
    def __init__(self, inner, edit):
        self.inner, self.edit = inner, edit

    def __iter__(self):
        return iter(self.edit(list(self.inner)))


def _planted(edit):
    class Wrong(Task):
        def loader(self, variant, config, device, seed):
            inner = super().loader(variant, config, device, seed)
            return _Wrap(inner, edit) if variant == "pinned_prefetch" else inner

    return Wrong


def test_loader_that_reorders_batches_is_caught():
    expect_check_fails(_planted(lambda bs: [bs[1], bs[0], *bs[2:]]), match="batch 0 carries samples [8, 9")


def test_batch_with_swapped_samples_but_right_indices_is_caught():
    def swap_rows(bs):
        ids, x = bs[2]
        return [*bs[:2], (ids, x[[1, 0, *range(2, x.shape[0])]]), *bs[3:]]

    expect_check_fails(_planted(swap_rows), match="pinned_prefetch: batch checksums")


def test_loader_that_drops_the_short_last_batch_is_caught():
    expect_check_fails(_planted(lambda bs: bs[:-1]), match="48 samples arrived, expected 50")


def test_corrupted_value_is_caught():
    def corrupt(bs):
        ids, x = bs[0]
        x = x.clone()
        x[3, 7] += 1e-3
        return [(ids, x), *bs[1:]]

    expect_check_fails(_planted(corrupt), match="checksums")
