"""harness.train (training loop, records, peak memory) and models.mlp (config, presets)."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from harness import Context, TrainingRun, task
from harness.registry import Registry
from harness.train import evaluate, fit, peak_memory_mb, record_samples, standard_step
from models.mlp import MLP, PRESETS, MLPConfig, preset


def blobs(n=400, seed=0):
    """Two well-separated Gaussian blobs in 8 dims: a linear model reaches ~100%."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 8, generator=g) + 3.0 * (2 * y[:, None] - 1)
    return x, y


def small_model(seed=0):
    torch.manual_seed(seed)
    return MLP(MLPConfig(in_features=8, hidden=(16,), out_features=2))


@dataclasses.dataclass(frozen=True)
class _Cfg:
    n: int = 1


@task("nn_basics.train_helper_probe", seed="3.99", title="probe", registry=Registry())
class _Probe(TrainingRun):
    """A registry-less task, only to build a Context for the record tests."""

    sizes = {"tiny": _Cfg()}


def test_fit_learns_and_reports_time_to_accuracy():
    x, y = blobs()
    model = small_model()
    log = fit(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        (x[:300], y[:300]),
        batch_size=30,
        epochs=3,
        eval_data=(x[300:], y[300:]),
        target_accuracy=0.95,
    )
    assert log.steps == list(range(1, 31)) and len(log.losses) == 30 and len(log.lrs) == 30
    assert log.eval_steps == [10, 20, 30] and log.final_accuracy >= 0.95
    assert log.losses[-1] < log.losses[0]
    assert log.steps_to_accuracy in (10, 20, 30) and 0 < log.time_to_accuracy_s <= log.train_time_s
    assert log.samples == 900 and log.samples_per_s > 0 and len(log.epoch_samples_per_s) == 3


def test_max_steps_eval_every_and_stop_at_target():
    x, y = blobs()
    model = small_model()
    log = fit(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        (x, y),
        batch_size=40,
        epochs=50,
        max_steps=7,
        eval_data=(x, y),
        eval_every=3,
    )
    assert log.steps[-1] == 7 and log.eval_steps == [3, 6, 7]  # a final evaluation after the last step
    model = small_model()
    log = fit(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        (x, y),
        batch_size=40,
        epochs=50,
        eval_data=(x, y),
        eval_every=2,
        target_accuracy=0.9,
        stop_at_target=True,
    )
    assert log.steps[-1] == log.steps_to_accuracy < 100


def test_a_model_that_never_steps_does_not_reach_the_target():
    x, y = blobs()
    model = small_model()
    acc0, _ = evaluate(model, x, y)

    def no_step(model, opt, xb, yb, loss_fn):
        loss = loss_fn(model(xb), yb)
        loss.backward()  # gradients computed, optimizer.step() forgotten
        return loss.detach()

    log = fit(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        (x, y),
        batch_size=40,
        epochs=2,
        eval_data=(x, y),
        target_accuracy=0.95,
        step_fn=no_step,
    )
    assert log.final_accuracy == acc0 and log.time_to_accuracy_s is None


def test_scheduler_steps_per_optimizer_step_and_lr_is_logged():
    x, y = blobs()
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    log = fit(model, opt, (x, y), batch_size=100, epochs=1, scheduler=sched)
    assert log.lrs == [1.0, 0.5, 0.25, 0.125]


def test_bad_arguments_raise_clear_errors():
    x, y = blobs(n=10)
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="batch_size"):
        fit(model, opt, (x, y), batch_size=11)
    with pytest.raises(ValueError, match="labels"):
        fit(model, opt, (x, y[:5]), batch_size=2)
    with pytest.raises(ValueError, match="target_accuracy"):
        fit(model, opt, (x, y), batch_size=2, target_accuracy=97)


def test_record_writes_curves_and_metrics():
    x, y = blobs()
    model = small_model()
    log = fit(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        (x, y),
        batch_size=50,
        epochs=2,
        eval_data=(x, y),
        target_accuracy=0.999999,
    )
    ctx = Context(_Probe, mode="bench")
    log.record(ctx, series="sgd", prefix="sgd.")
    names = {(c["name"], c["series"]) for c in ctx.record.curves}
    assert {
        ("train loss", "sgd"),
        ("learning rate", "sgd"),
        ("test accuracy", "sgd"),
        ("samples/s per epoch", "sgd"),
    } <= names
    m = ctx.record.metrics
    assert m["sgd.samples_per_s"] > 0 and "sgd.final_accuracy" in m and "sgd.time_to_accuracy_s" in m


def test_record_samples_matches_measure_row_format():
    ctx = Context(_Probe, mode="bench")
    record_samples(ctx, "ddp", [2.0, 2.2, 1.8, 2.0], config=_Cfg(2), items=64, extra_ms=1.5)
    row = ctx.record.measurements[-1]
    assert row["impl"] == "ddp" and row["config"] == "n=2" and row["median_ms"] == 2.0
    assert row["samples_per_s"] == 32000 and row["extra_ms"] == 1.5 and row["n_samples"] == 4
    with pytest.raises(ValueError, match="no samples"):
        record_samples(ctx, "ddp", [])


def test_peak_memory_counts_live_tensor_bytes_on_cpu():
    def make_8mb_then_free():
        a = torch.ones(2_000_000)  # 8 MB float32
        b = torch.ones(1_000_000)  # +4 MB while a is alive -> peak 12 MB
        del a, b

    peak = peak_memory_mb(make_8mb_then_free, "cpu")
    assert 11.9 < peak < 12.5


def test_standard_step_and_evaluate():
    x, y = blobs(n=64)
    model = small_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    loss = standard_step(model, opt, x, y, F.cross_entropy)
    assert loss.requires_grad is False and math.isclose(
        loss.item(), F.cross_entropy(MLP.forward(small_model(), x), y).item(), rel_tol=1e-6
    )
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    acc, mean_loss = evaluate(model, x, y, batch_size=10)
    assert 0 <= acc <= 1 and mean_loss > 0 and model.training


def test_mlp_presets_shapes_and_errors():
    for name, cfg in PRESETS.items():
        m = MLP(name)
        assert sum(p.numel() for p in m.parameters()) == cfg.n_params()
        assert m(torch.zeros(3, cfg.in_features)).shape == (3, cfg.out_features)
    assert MLP("tiny")(torch.zeros(5, 8, 8)).shape == (5, 10)  # (N, 8, 8) flattens to (N, 64)
    bn = MLP(preset("tiny", batch_norm=True, dropout=0.1))
    assert any(isinstance(mod, torch.nn.BatchNorm1d) for mod in bn.modules())
    with pytest.raises(ValueError, match="unknown MLP preset"):
        preset("huge")
    with pytest.raises(ValueError, match="activation"):
        MLPConfig(activation="swish")
    with pytest.raises(ValueError, match="64 features"):
        MLP("tiny")(torch.zeros(2, 28, 28))
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["tiny"].hidden = (1,)
