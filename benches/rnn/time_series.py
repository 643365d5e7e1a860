"""5.08 Time-series forecasting.

Compared: a GRU forecaster (``models.sequence.SequenceModel`` with float inputs and a
``last`` head: the final state of a window of L past values -> the next value) against
the naive last-value forecast (tomorrow = today), both scored by mean absolute error on
the test period in the series' own units.

Data: real and offline: the sunspot numbers statsmodels ships (NOAA NGDC; yearly
1700-2008 for tiny, monthly 1749-2008 for cpu/gpu; ``harness.data.series``).

Check (tiny, yearly series, L = 12): leakage first, the classic way to fake a gain: every
target comes after every input of its window; the split is by time (first 80% train, windows
in time order) and training draws train targets only; the scaler is fitted on the train period.
Then test MAE <= (1 - ``min_gain``) x naive MAE: the naive MAE on 1947-2008 is 25.4 sunspots;
over seeds 0-5 the tiny GRU (H = 16, 150 steps) scored 13.6-15.6, 39-46% better (20% demanded).

Lesson: on the monthly series (cpu preset) a month's sunspot number is mostly last month's
plus noise, so last-value is a strong forecast at short steps and the model's gain is small;
on the yearly series it is large: the gain shows at the scale of the 11-year cycle
(Schwabe's cycle; mean length about 11 years, SILSO).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from harness import Prepared, TrainingRun, task
from harness.claims import metric
from harness.data import series_wrong
from harness.data.series import Scaler, Windows, load_series, make_windows, time_split
from harness.mutants import Mutant
from harness.train import standard_step
from harness.train_text import train_loop
from harness.trained import forward_prepared
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
        Mutant("full_series_scaler", "the scaler is fitted on the whole series",
               {"fit_scaler": staticmethod(series_wrong.full_series_scaler)}, match="scaler fitted on train only"),
        Mutant("target_in_inputs", "each window's inputs include its own target",
               {"windows": staticmethod(series_wrong.target_in_inputs)}, match="target index is not after"),
        Mutant("random_split", "a random 80/20 split instead of by time",
               {"windows": staticmethod(series_wrong.random_split)}, match="time order"),
    )  # fmt: skip

    # -- the leak-prone parts ------------------------------------------------------------------
    @staticmethod
    def fit_scaler(values: torch.Tensor, split: int) -> Scaler:
        return Scaler.fit(values[:split])

    @staticmethod
    def windows(values: torch.Tensor, split: int, cfg: ForecastConfig) -> tuple[Windows, Windows]:
        """(train windows: targets before ``split``, test windows: targets from ``split``)."""
        L = cfg.input_len
        return make_windows(values, L, 1, end=split), make_windows(values, L, 1, first_target=split)

    def prepare_data(self, cfg: ForecastConfig):
        """(series, split index, scaler, train windows, test windows), values normalised by the scaler."""
        s = load_series(cfg.series)
        split = time_split(len(s), cfg.train_frac)
        scaler = self.fit_scaler(s.values, split)
        return s, split, scaler, *self.windows(scaler.transform(s.values), split, cfg)

    def model(self, cfg: ForecastConfig, ctx):
        """A seeded GRU forecaster and its Adam optimizer."""
        torch.manual_seed(ctx.rng_seed)
        mc = SequenceModelConfig(None, input_size=1, hidden_size=cfg.hidden, output_size=1, cell="gru", head="last")
        model = SequenceModel(mc).to(ctx.device, ctx.dtype)
        return model, torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def run(self, ctx, cfg: ForecastConfig, data):
        """Train; returns (model MAE, naive MAE, losses, seconds, windows trained, target indexes drawn, model)."""
        s, split, scaler, train, test = data
        model, opt = self.model(cfg, ctx)
        x = train.inputs[:, :, None].to(ctx.device, ctx.dtype)  # (M, L, 1)
        y = train.targets.to(ctx.device, ctx.dtype)  # (M, 1)
        drawn = []  # every batch's rows, shuffled within train only

        def draw(g):
            drawn.append(torch.randint(0, len(train), (cfg.batch_size,), generator=g))
            return x[drawn[-1]], y[drawn[-1]]

        step = lambda m, o, b: standard_step(m, o, *b, F.mse_loss)  # MSE on a drawn (x, y)
        losses, _, _, seconds = train_loop(model, opt, draw, step, steps=cfg.steps, seed=ctx.rng_seed)
        with torch.no_grad():
            pred = model.eval()(test.inputs[:, :, None].to(ctx.device, ctx.dtype)).double().cpu()  # (M, 1)
        # the model's forecast and the last value (the naive one), scored alike in the series' units
        mae = lambda p: float((scaler.inverse(p) - scaler.inverse(test.targets)).abs().mean())
        drawn_targets = train.target_index[torch.cat(drawn)]  # (steps * B, 1)
        return mae(pred), mae(test.inputs[:, -1:]), losses, seconds, cfg.steps * cfg.batch_size, drawn_targets, model

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = s, split, scaler, train, test = self.prepare_data(cfg)
        for name, w in (("train", train), ("test", test)):
            after = bool((w.target_index.min(1).values > w.input_index.max(1).values).all())
            msg = f"{name} windows: some target index is not after every input index of its window"
            ctx.expect(after, msg, name="every target after every input of its window")
            ordered = bool((w.target_index[1:, 0] > w.target_index[:-1, 0]).all())
            ctx.expect(ordered, f"{name} windows are not in time order", name="windows in time order")
            want = s.values[w.input_index].sub(scaler.mean).div(scaler.std)
            ctx.assert_close(w.inputs, want, name="window values = series at their indexes", where=name)
        last, first = int(train.target_index.max()), int(test.target_index.min())
        msg = f"split at {split}: train targets reach {last}, test targets start at {first}"
        ctx.expect(last < split <= first, msg, name="split by time: train targets < split <= test targets")
        want, got = s.values[:split], torch.tensor([scaler.mean, scaler.std], dtype=torch.float64)
        ctx.assert_close(got, torch.stack([want.mean(), want.std(unbiased=False)]), name="scaler fitted on train only")
        mae, naive, _, _, _, drawn, _ = self.run(ctx, cfg, data)
        msg = f"training drew a window whose target index {int(drawn.max())} is past the split {split}"
        ctx.expect(int(drawn.max()) < split, msg, name="training draws train windows only")
        for name, v in (("mae", mae), ("naive_mae", naive), ("gain_vs_naive", 1 - mae / naive)):
            ctx.metric(f"check_{name}", v)
        msg = f"test MAE {mae:.2f} vs naive last-value {naive:.2f}: gain {1 - mae / naive:.1%} < {cfg.min_gain:.0%}"
        ctx.expect(mae <= (1 - cfg.min_gain) * naive, msg, name=f"beats the naive forecast by >= {cfg.min_gain:.0%}")

    def prepare(self, ctx, impl: str, config: ForecastConfig) -> Prepared:
        train = self.prepare_data(config)[3]
        model, opt = self.model(config, ctx)
        x = train.inputs[: config.batch_size, :, None].to(ctx.device, ctx.dtype)  # (B, L, 1)
        y = train.targets[: config.batch_size].to(ctx.device, ctx.dtype)  # (B, 1)
        fn = lambda: standard_step(model, opt, x, y, F.mse_loss)
        return Prepared(fn=fn, items=config.batch_size, item_unit="windows")

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        data = s, split, _, train, test = self.prepare_data(cfg)
        note = f"train {len(train)} windows (targets before {float(s.times[split]):.2f}), test {len(test)} windows"
        ctx.note(f"data: {s.description}; {note}")
        mae, naive, losses, seconds, n_windows, _, model = self.run(ctx, cfg, data)
        steps = list(range(1, len(losses) + 1))
        ctx.curve("train loss", steps, losses, y_label="MSE (normalised)", series="gru", log_y=True)
        for name, v in (("test_mae", mae), ("naive_mae", naive), ("gain_vs_naive", 1 - mae / naive)):
            ctx.metric(name, v)
        ctx.metric("train_windows_per_s", n_windows / seconds)
        ctx.measure("train_step", self.prepare(ctx, "train_step", cfg), config=cfg)
        x_test = test.inputs[:, :, None].to(ctx.device, ctx.dtype)  # (M, L, 1)
        ctx.measure("forecast", forward_prepared(model, x_test, "windows"), config=cfg)
