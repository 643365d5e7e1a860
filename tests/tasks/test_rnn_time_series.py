"""5.08 time_series: leak-free windows, train-only scaling, beats naive; its mutants: test_mutants.py.

Also tests harness.data.series (the real sunspot files and the windowing helpers).
"""

import pytest
import torch

from harness import REGISTRY
from harness.data.series import SERIES, Scaler, load_series, make_windows, time_split
from harness.testing import run_check

Task = REGISTRY.get("rnn.time_series")


def test_check_passes():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    assert rec.metrics["check_gain_vs_naive"] >= Task.sizes["tiny"].min_gain


def test_series_are_real_and_complete():
    y = load_series("sunspots_yearly")
    assert len(y) == 309 and float(y.times[0]) == 1700 and float(y.times[-1]) == 2008
    assert float(y.values[0]) == 5.0 and not y.synthetic  # 1700: 5 (statsmodels' sunspots.csv)
    m = load_series("sunspots_monthly")
    assert len(m) == (2008 - 1749 + 1) * 12 and float(m.values[0]) == 58.0  # Jan 1749
    assert set(SERIES) == {"sunspots_yearly", "sunspots_monthly"}
    with pytest.raises(ValueError, match="unknown series"):
        load_series("co3")


def test_windows_indexes_and_split():
    v = torch.arange(20, dtype=torch.float64)
    split = time_split(20, 0.75)
    assert split == 15
    tr = make_windows(v, 4, 2, end=split)
    te = make_windows(v, 4, 2, first_target=split)
    assert tr.target_index[:, 0].tolist() == list(range(4, 14)) and int(tr.target_index.max()) == 14
    assert te.target_index[:, 0].tolist() == [15, 16, 17, 18] and te.input_index[0].tolist() == [11, 12, 13, 14]
    assert torch.equal(tr.inputs, v[tr.input_index]) and torch.equal(te.targets, v[te.target_index])
    with pytest.raises(ValueError, match="no window"):
        make_windows(v, 19, 2)
    with pytest.raises(ValueError, match="train_frac"):
        time_split(20, 1.0)


def test_scaler_round_trip_and_errors():
    s = Scaler.fit(torch.tensor([1.0, 3.0]))
    assert (s.mean, s.std) == (2.0, 1.0)
    x = torch.tensor([0.0, 5.0], dtype=torch.float64)
    torch.testing.assert_close(s.inverse(s.transform(x)), x)
    with pytest.raises(ValueError, match="constant"):
        Scaler.fit(torch.ones(4))
