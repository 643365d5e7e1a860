"""5.08 Time-series forecasting.

Compared: a GRU forecaster (``models.sequence.SequenceModel`` with float inputs and a
``last`` head: the final state of a window of L past values -> the next value) against
the naive last-value forecast (tomorrow = today), both scored by mean absolute error on
the test period in the series' own units.

Data: real and offline: the sunspot numbers statsmodels ships (NOAA NGDC; yearly
1700-2008 for tiny, monthly 1749-2008 for cpu/gpu; ``harness.data.series``).

Check (tiny, yearly series, L = 12):

* no leakage: in every window each target index is greater than each input index; the
  split is by time (first 80% train): every train target lies before the split, every
  test target at or after it, windows come in time order, and every target the
  training loop drew was a train target (shuffling stays on its side of the split);
* normalisation is fitted on the train period only: the scaler's mean and std equal
  those of ``values[:split]`` (the full series' differ, so a scaler fitted on it fails);
* the GRU beats the naive forecast: test MAE <= (1 - ``min_gain``) x naive MAE. The naive
  MAE on 1947-2008 is 25.4 sunspots; over seeds 0-5 the tiny GRU (H = 16, 150 Adam steps)
  scored 13.6-15.6, 39-46% better, against the 20% demanded.

Bench: the training loss curve, test MAE of model and naive forecast, windows/s of one
timed training step and of forecasting every test window.

Lesson: on the monthly series (cpu preset) a month's sunspot number is mostly last month's
plus noise, so last-value is a strong forecast at short steps and the model's gain is small;
on the yearly series it is large: the gain shows at the scale of the 11-year cycle
(Schwabe's cycle; mean length about 11 years, SILSO). Leakage is the classic way to fake
such a gain, which is why the check tests the split, the windows and the scaler first.
"""

from __future__ import annotations

import dataclasses
import time

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data.series import Scaler, Windows, load_series, make_windows, time_split
from harness.mutants import Mutant
from models.sequence import SequenceModel, SequenceModelConfig


@dataclasses.dataclass(frozen=True)
class ForecastConfig:
    """Series, windows, model and budget of one forecasting run."""

    series: str
    """name in harness.data.series.SERIES"""
    input_len: int
    """L: past values per window"""
    hidden: int
    """GRU width"""
    steps: int
    """Adam steps"""
    batch_size: int = 32
    """windows per step (drawn from the train windows only)"""
    lr: float = 1e-2
    """Adam learning rate"""
    train_frac: float = 0.8
    """share of the series (from its start) that is the train period"""
    min_gain: float = 0.2
    """the check demands model MAE <= (1 - min_gain) x naive MAE on the test period"""

    def label(self) -> str:
        return f"{self.series},L={self.input_len},H={self.hidden},steps={self.steps}"


# -- the wrong versions (mutants) ------------------------------------------------------------
def _full_series_scaler(self, values, split):
    return Scaler.fit(values)  # test-period statistics leak into training


def _target_in_inputs(self, values, split, cfg):
    """Off by one: each window's inputs end at (and include) its own target."""
    shifted = (Windows(values[w.input_index + 1], w.targets, w.input_index + 1, w.target_index)
               for w in TimeSeries.windows(self, values, split, cfg))  # fmt: skip
    return tuple(shifted)


def _random_split(self, values, split, cfg):
    """Windows over the whole series, split at random 80/20 instead of by time."""
    w = make_windows(values, cfg.input_len, 1)
    perm = torch.randperm(len(w), generator=torch.Generator().manual_seed(0))
    k = int(0.8 * len(w))
    pick = lambda i: Windows(w.inputs[i], w.targets[i], w.input_index[i], w.target_index[i])
    return pick(perm[:k]), pick(perm[k:])


@task("rnn.time_series", seed="5.08", title="time-series forecasting")
class TimeSeries(TrainingRun):
    __doc__ = __doc__
    sizes = {
        "tiny": ForecastConfig("sunspots_yearly", input_len=12, hidden=16, steps=150),
        "cpu": ForecastConfig("sunspots_monthly", input_len=48, hidden=32, steps=400, lr=5e-3),
        "gpu": ForecastConfig("sunspots_monthly", input_len=120, hidden=128, steps=2000, batch_size=256, lr=2e-3),
    }

    metrics = {"gain_vs_naive": "1 - model MAE / naive last-value MAE on the test period"}
    claims = (
        metric("gain_vs_naive", ">", 0.0, text="the GRU beats the last-value forecast on monthly sunspots"),
        metric("gain_vs_naive", "<=", 0.25,
               text="on monthly data last-value stays within 25 % of the GRU's MAE (a strong short-step baseline)"),
    )  # fmt: skip
    mutants = (
        Mutant("full_series_scaler", "the scaler is fitted on the whole series", {"fit_scaler": _full_series_scaler},
               match="scaler fitted on train only"),
        Mutant("target_in_inputs", "each window's inputs include its own target", {"windows": _target_in_inputs},
               match="target index is not after"),
        Mutant("random_split", "a random 80/20 split instead of by time", {"windows": _random_split},
               match="time order"),
    )  # fmt: skip

    # -- the leak-prone parts ------------------------------------------------------------------
    def fit_scaler(self, values: torch.Tensor, split: int) -> Scaler:
        return Scaler.fit(values[:split])

    def windows(self, values: torch.Tensor, split: int, cfg: ForecastConfig) -> tuple[Windows, Windows]:
        """(train windows: targets before ``split``, test windows: targets from ``split``)."""
        return (
            make_windows(values, cfg.input_len, 1, end=split),
            make_windows(values, cfg.input_len, 1, first_target=split),
        )

    def prepare_data(self, cfg: ForecastConfig):
        s = load_series(cfg.series)
        split = time_split(len(s), cfg.train_frac)
        scaler = self.fit_scaler(s.values, split)
        z = scaler.transform(s.values)  # float64 (N,), normalised with train statistics
        train, test = self.windows(z, split, cfg)
        return s, split, scaler, train, test

    def model(self, cfg: ForecastConfig, device, dtype, seed: int) -> SequenceModel:
        torch.manual_seed(seed)
        mc = SequenceModelConfig(None, input_size=1, hidden_size=cfg.hidden, output_size=1, cell="gru", head="last")
        return SequenceModel(mc).to(device, dtype)

    def train_step(self, model, opt, x, y) -> torch.Tensor:
        loss = F.mse_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    def run(self, ctx, cfg: ForecastConfig, data):
        """Train; returns (model MAE, naive MAE, losses, seconds, windows trained, max target index drawn, model)."""
        s, split, scaler, train, test = data
        model = self.model(cfg, ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        x = train.inputs[:, :, None].to(ctx.device, ctx.dtype)  # (M, L, 1)
        y = train.targets.to(ctx.device, ctx.dtype)  # (M, 1)
        g = torch.Generator().manual_seed(ctx.rng_seed)
        losses, drawn_max = [], -1
        ctx.sync()
        t0 = time.perf_counter()
        for _ in range(cfg.steps):
            idx = torch.randint(0, len(train), (cfg.batch_size,), generator=g)  # shuffled within train only
            drawn_max = max(drawn_max, int(train.target_index[idx].max()))
            losses.append(self.train_step(model, opt, x[idx], y[idx]))
        ctx.sync()
        seconds = time.perf_counter() - t0
        mae, naive = self.evaluate(ctx, model, scaler, test)
        losses = torch.stack(losses).float().cpu().tolist()
        return mae, naive, losses, seconds, cfg.steps * cfg.batch_size, drawn_max, model

    @torch.no_grad()
    def evaluate(self, ctx, model, scaler: Scaler, test: Windows) -> tuple[float, float]:
        """(model MAE, naive last-value MAE) on the test windows, in the series' units."""
        model.eval()
        pred = model(test.inputs[:, :, None].to(ctx.device, ctx.dtype)).double().cpu()  # (M, 1)
        model.train()
        truth = scaler.inverse(test.targets)
        mae = (scaler.inverse(pred) - truth).abs().mean()
        naive = (scaler.inverse(test.inputs[:, -1:]) - truth).abs().mean()
        return float(mae), float(naive)

    def check_no_leakage(self, ctx, cfg: ForecastConfig, data) -> None:
        s, split, scaler, train, test = data
        for name, w in (("train", train), ("test", test)):
            after = bool((w.target_index.min(1).values > w.input_index.max(1).values).all())
            msg = f"{name} windows: some target index is not after every input index of its window"
            ctx.expect(after, msg, name="every target after every input of its window")
            ordered = bool((w.target_index[1:, 0] > w.target_index[:-1, 0]).all())
            ctx.expect(ordered, f"{name} windows are not in time order", name="windows in time order")
            want = s.values[w.input_index].sub(scaler.mean).div(scaler.std)
            ctx.assert_close(w.inputs, want, name="window values = series at their indexes", where=name)
        ctx.expect(
            int(train.target_index.max()) < split <= int(test.target_index.min()),
            f"split at {split}: train targets reach {int(train.target_index.max())}, test targets start "
            f"at {int(test.target_index.min())}",
            name="split by time: train targets < split <= test targets",
        )
        want, got = s.values[:split], torch.tensor([scaler.mean, scaler.std], dtype=torch.float64)
        ctx.assert_close(got, torch.stack([want.mean(), want.std(unbiased=False)]), name="scaler fitted on train only")

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = self.prepare_data(cfg)
        self.check_no_leakage(ctx, cfg, data)
        mae, naive, losses, seconds, n_windows, drawn_max, _ = self.run(ctx, cfg, data)
        split = data[1]
        msg = f"training drew a window whose target index {drawn_max} is past the split {split}"
        ctx.expect(drawn_max < split, msg, name="training draws train windows only")
        ctx.metric("check_mae", mae)
        ctx.metric("check_naive_mae", naive)
        ctx.metric("check_gain_vs_naive", 1 - mae / naive)
        ctx.expect(
            mae <= (1 - cfg.min_gain) * naive,
            f"test MAE {mae:.2f} vs naive last-value {naive:.2f}: gain {1 - mae / naive:.1%} is below "
            f"{cfg.min_gain:.0%}",
            name=f"beats the naive forecast by >= {cfg.min_gain:.0%}",
        )

    def prepare(self, ctx, impl: str, config: ForecastConfig) -> Prepared:
        _, _, _, train, _ = self.prepare_data(config)
        model = self.model(config, ctx.device, ctx.dtype, ctx.rng_seed)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        x = train.inputs[: config.batch_size, :, None].to(ctx.device, ctx.dtype)
        y = train.targets[: config.batch_size].to(ctx.device, ctx.dtype)
        return Prepared(fn=lambda: self.train_step(model, opt, x, y), items=config.batch_size, item_unit="windows")

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = self.prepare_data(cfg)
        s, split, scaler, train, test = data
        ctx.note(
            f"data: {s.description}; train {len(train)} windows (targets before {float(s.times[split]):.2f}), "
            f"test {len(test)} windows"
        )
        mae, naive, losses, seconds, n_windows, _, model = self.run(ctx, cfg, data)
        ctx.curve(
            "train loss", list(range(1, len(losses) + 1)), losses, y_label="MSE (normalised)", series="gru", log_y=True
        )
        ctx.metric("test_mae", mae)
        ctx.metric("naive_mae", naive)
        ctx.metric("gain_vs_naive", 1 - mae / naive)
        ctx.metric("train_windows_per_s", n_windows / seconds)
        ctx.measure("train_step", self.prepare(ctx, "train_step", cfg), config=cfg)
        x_test = test.inputs[:, :, None].to(ctx.device, ctx.dtype)

        def forecast():
            with torch.no_grad():
                return model(x_test)

        ctx.measure("forecast", Prepared(fn=forecast, items=len(test), item_unit="windows"), config=cfg)
