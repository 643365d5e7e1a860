"""Real time series, offline, and leak-free windowing for forecasting.

Data: the sunspot numbers that statsmodels ships (``statsmodels/datasets/sunspots``; source
NOAA National Geophysical Data Center, public domain), read straight from the package's
files with the standard library (statsmodels itself is not imported, which saves seconds):

* ``sunspots_yearly``: ``sunspots.csv``, yearly mean sunspot number, 1700-2008 (309 values).
* ``sunspots_monthly``: ``src/sunspots_monthly.dat``, monthly mean, Jan 1749 - Dec 2008
  (3,120 values; the file's preliminary 2009 months are left out).

Statsmodels is in the project's ``data`` extra; without it :func:`load_series` raises
``DataNotFoundError`` naming the package to install.

Leakage rules (what :func:`make_windows`, :func:`time_split` and :class:`Scaler` enforce):

* a window's inputs are the ``input_len`` values right before its first target, so every
  target index is greater than every input index of its window;
* train and test are split by time at one index: a train window's targets are all before
  it, a test window's all at or after it (a test window's *inputs* may reach back into
  the train period: those values are known when the forecast is made);
* normalisation statistics come from the train period only (:meth:`Scaler.fit` on
  ``values[:split]``); shuffling happens only within the train windows.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import re
from pathlib import Path

import torch

from .errors import DataNotFoundError

SERIES = {
    "sunspots_yearly": "yearly mean sunspot number 1700-2008 (NOAA NGDC, via statsmodels' sunspots.csv)",
    "sunspots_monthly": "monthly mean sunspot number 1749-2008 (NOAA NGDC, via statsmodels' src/sunspots_monthly.dat)",
}


@dataclasses.dataclass(frozen=True)
class TimeSeries:
    """A univariate series in time order.

    Fields:
        values: float64 (N,), in ``unit``.
        times: float64 (N,), decimal years (1700.0; 1749 + (month - 1) / 12).
        name: key of :data:`SERIES`.
        unit: unit of ``values``.
        description: one line: what and where from.
        synthetic: always False here (real data).
    """

    values: torch.Tensor
    times: torch.Tensor
    name: str
    unit: str
    description: str
    synthetic: bool = False

    def __len__(self) -> int:
        return int(self.values.shape[0])


def _sunspots_dir() -> Path:
    spec = importlib.util.find_spec("statsmodels")
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(
            "statsmodels' bundled sunspot data",
            ["statsmodels/datasets/sunspots"],
            "Install it: pip install statsmodels (the project's 'data' extra)",
        )
    d = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "sunspots"
    if not (d / "sunspots.csv").is_file():
        raise DataNotFoundError(
            "statsmodels' bundled sunspot data",
            [str(d / "sunspots.csv")],
            "Reinstall statsmodels: its datasets folder is incomplete",
        )
    return d


def load_series(name: str = "sunspots_yearly") -> TimeSeries:
    """Load a real series by name (see :data:`SERIES`).

    Raises ValueError for an unknown name; DataNotFoundError when statsmodels (which
    ships the files) is not installed.
    """
    if name not in SERIES:
        raise ValueError(f"load_series: unknown series {name!r}; known: {', '.join(SERIES)}")
    d = _sunspots_dir()
    times: list[float] = []
    values: list[float] = []
    if name == "sunspots_yearly":
        with open(d / "sunspots.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                times.append(float(row["YEAR"]))
                values.append(float(row["SUNACTIVITY"]))
    else:
        path = d / "src" / "sunspots_monthly.dat"
        for line in path.read_text(encoding="utf-8").splitlines():
            m = re.match(r"^(\d{4})\s+(.*)$", line)
            if not m or int(m.group(1)) > 2008:  # 2009 months are marked preliminary
                continue
            for k, v in enumerate(m.group(2).split()):
                times.append(int(m.group(1)) + k / 12)
                values.append(float(v))
    return TimeSeries(
        torch.tensor(values, dtype=torch.float64),
        torch.tensor(times, dtype=torch.float64),
        name,
        "sunspot number",
        f"real: {SERIES[name]}, {len(values)} values",
    )


@dataclasses.dataclass(frozen=True)
class Scaler:
    """Standardisation (v - mean) / std with statistics fitted on training values only."""

    mean: float
    std: float

    @classmethod
    def fit(cls, train_values: torch.Tensor) -> Scaler:
        """Mean and (population) std of ``train_values``; raises ValueError if fewer than 2
        values or constant (nothing to scale by)."""
        if train_values.numel() < 2:
            raise ValueError(f"Scaler.fit: need at least 2 training values, got {train_values.numel()}")
        std = float(train_values.double().std(unbiased=False))
        if std == 0.0:
            raise ValueError("Scaler.fit: the training values are constant")
        return cls(float(train_values.double().mean()), std)

    def transform(self, v: torch.Tensor) -> torch.Tensor:
        return (v - self.mean) / self.std

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean


@dataclasses.dataclass(frozen=True)
class Windows:
    """Forecasting windows: ``inputs[i]`` (L values) predicts ``targets[i]`` (H values).

    Fields:
        inputs: (M, L) values; targets: (M, H) values (same dtype as the series).
        input_index, target_index: int64 (M, L) / (M, H), positions in the series, so a
            check can prove that no window sees its future.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    input_index: torch.Tensor
    target_index: torch.Tensor

    def __len__(self) -> int:
        return int(self.inputs.shape[0])


def time_split(n: int, train_frac: float) -> int:
    """The split index: the first ``round(n * train_frac)`` values are the train period.

    Raises ValueError for a fraction outside (0, 1) or a split leaving either side empty.
    """
    if not 0.0 < train_frac < 1.0:
        raise ValueError(f"time_split: train_frac must be in (0, 1), got {train_frac}")
    split = round(n * train_frac)
    if not 0 < split < n:
        raise ValueError(f"time_split: {n} values with train_frac={train_frac} leave an empty side")
    return split


def make_windows(
    values: torch.Tensor, input_len: int, horizon: int = 1, *, first_target: int = 0, end: int | None = None
) -> Windows:
    """Every window whose H targets lie in ``[first_target, end)``, in time order.

    Window i has targets ``values[t : t + H]`` and inputs ``values[t - L : t]`` for each t
    with ``t >= max(first_target, L)`` and ``t + H <= end`` (``end`` defaults to len(values)).
    So targets come strictly after inputs, and with ``end = split`` (train) or
    ``first_target = split`` (test) no target crosses the split.
    Raises ValueError for L or H < 1, or when no window fits.
    """
    if input_len < 1 or horizon < 1:
        raise ValueError(f"make_windows: input_len and horizon must be >= 1, got {input_len}, {horizon}")
    n = values.shape[0]
    end = n if end is None else end
    start = max(first_target, input_len)
    ts = torch.arange(start, end - horizon + 1)  # (M,) first target index of each window
    if ts.numel() == 0:
        raise ValueError(
            f"make_windows: no window of {input_len} inputs + {horizon} targets has its targets "
            f"in [{first_target}, {end}) of {n} values"
        )
    in_idx = ts[:, None] + torch.arange(-input_len, 0)[None, :]  # (M, L)
    tg_idx = ts[:, None] + torch.arange(horizon)[None, :]  # (M, H)
    return Windows(values[in_idx], values[tg_idx], in_idx, tg_idx)
