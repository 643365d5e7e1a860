"""Contention-aware timing: preempted samples, contended measurements, waits, threads, old rows.

The live tests use callables whose verdict does not depend on the machine's load: a
sleeping call gets ~no CPU time whatever the neighbours do. A spinning call is only
clean where the CPU is not taken away, so its test stands in an idle CPU (CPU clock =
wall clock, no run-queue delay); the rule itself is tested on planted numbers.
"""

import statistics
import time
import warnings

import pytest
import torch

from harness import timing
from harness.timing import (
    MIN_CLEAN_SAMPLES,
    ContendedMeasurementWarning,
    Measurement,
    NoisyMeasurementWarning,
    judge_samples,
    load_notice,
    measure,
)


def _judge(par, threads=1, rq=None, psi=None, waits=False):
    walls = [0.01] * len(par)
    cpus = [p * w for p, w in zip(par, walls)]
    rq = rq or [None] * len(par)
    psi = psi or [None] * len(par)
    return judge_samples(walls, cpus, rq, psi, threads=threads, waits=waits)[1]


def test_rule_on_planted_samples():
    # one thread: a sample with 50 % of the CPU lost it; 95 % is within the 0.9 threshold
    assert _judge([1.0, 0.99, 0.95, 0.5]) == [False, False, False, True]
    # two threads on a parallel op: 1.2 cores of the 2 it reaches is short
    assert _judge([2.0, 1.95, 2.0, 1.2], threads=2) == [False, False, False, True]
    # two threads on an op that stays serial: 1 core is all it ever gets -> clean
    assert _judge([1.0, 1.0, 0.98, 1.0], threads=2) == [False] * 4
    # a worker descheduled while the caller spins at the barrier: CPU looks fine, the run queue does not
    assert _judge([1.0, 1.0, 1.0], threads=2, rq=[0.0, 0.003, 0.0]) == [False, True, False]
    # waits by design: low CPU is not evidence; run-queue delay, else CPU pressure, is
    assert _judge([0.01, 0.02], waits=True) == [False, False]
    assert _judge([0.01, 0.02], waits=True, rq=[0.0, 0.002]) == [False, True]
    assert _judge([0.01, 0.02], waits=True, psi=[0.0, 5000.0]) == [False, True]  # 5 ms of a 10 ms sample


def _no_kernel_signals(monkeypatch):
    class NoRunQueue:
        available = False

        def read(self):
            return None

        def close(self):
            pass

    monkeypatch.setattr(timing, "_RunQueue", NoRunQueue)
    monkeypatch.setattr(timing, "read_cpu_pressure_us", lambda: None)
    monkeypatch.setattr(timing, "read_steal", lambda: None)


def test_sleeping_call_is_flagged_preempted():
    with pytest.warns(ContendedMeasurementWarning, match="preempted"):
        m = measure(lambda: time.sleep(0.002), "cpu", min_run_time_s=0.05)
    assert m.n_preempted == len(m.samples_ms) > 0 and m.contended
    row = m.to_json()
    assert row["contended"] and row["n_preempted"] == row["n_samples"] and row["cpu_wall_ratio"] < 0.5
    assert "waits" not in row and all(row["preempted"]) and len(row["cpu_ratios"]) == len(row["samples_ms"])


def test_sleeping_call_that_waits_by_design_is_clean(monkeypatch):
    _no_kernel_signals(monkeypatch)  # quiet kernel: nothing waited in a run queue
    with warnings.catch_warnings():
        warnings.simplefilter("error", ContendedMeasurementWarning)
        m = measure(lambda: time.sleep(0.002), "cpu", min_run_time_s=0.2, waits=True)
    assert m.n_preempted == 0 and not m.contended and m.to_json()["waits"] is True
    assert m.median_ms >= 2.0


def test_spinning_call_is_clean_when_it_has_the_cpu(monkeypatch):
    _no_kernel_signals(monkeypatch)
    monkeypatch.setattr(timing, "_cpu_time", time.perf_counter)  # an idle CPU: CPU time = wall time

    def spin():
        t = time.perf_counter()
        while time.perf_counter() - t < 2e-4:
            pass

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoisyMeasurementWarning)
        m = measure(spin, "cpu", min_run_time_s=0.5, threads=1)  # >= 5 blocks even if calls run 5x slow
    assert m.n_preempted == 0 and not m.contended and len(m.samples_ms) >= MIN_CLEAN_SAMPLES
    assert m.threads == 1 and m.to_json()["cpu_wall_ratio"] == pytest.approx(1.0, abs=0.02)
    assert m.median_ms > 0.19  # a busy machine stretches the spin (it waits for 0.2 ms of wall time)


def test_live_samples_are_judged_consistently():
    """On this (shared) machine: every sample flagged or kept follows the stated rule."""
    x = torch.randn(128, 128)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoisyMeasurementWarning)
        m = measure(lambda: x @ x, "cpu", min_run_time_s=0.05, threads=1)
    assert m.preempted is not None and len(m.preempted) == len(m.samples_ms) == len(m.cpu_ratios)
    for r, p in zip(m.cpu_ratios, m.preempted):
        if r < timing.PREEMPT_RATIO:  # one thread: less than 90 % of the CPU is always preempted
            assert p
    assert m.median_ms == statistics.median(m.clean_samples_ms or m.samples_ms)


def test_fewer_than_five_samples_is_contended():
    four = Measurement(samples_ms=[1.0, 1.0, 1.0, 1.0], number_per_sample=1, mode="cpu", preempted=[False] * 4)
    assert four.contended and "only 4 sample(s)" in four.contended_reason and four.to_json()["contended"]
    ext = Measurement(samples_ms=[1.0, 1.1, 0.9], number_per_sample=1, mode="external")  # preemption unknown
    assert ext.contended and ext.to_json()["n_preempted"] is None
    five = Measurement(samples_ms=[1.0] * 5, number_per_sample=1, mode="cpu", preempted=[False] * 5)
    assert not five.contended and "contended_reason" not in five.to_json()
    # 4 clean of 5 (one preempted): contended for too few clean; median over clean only
    m = Measurement(
        samples_ms=[1.0, 1.0, 1.0, 1.0, 9.0],
        number_per_sample=1,
        mode="cpu",
        preempted=[False] * 4 + [True],
    )
    assert m.median_ms == 1.0 and m.min_ms == 1.0 and m.n_preempted == 1
    assert m.contended and "1 of 5 samples preempted: 4 clean" in m.contended_reason
    # enough clean samples, but most lost the CPU: the clean ones ran beside busy neighbours
    busy = Measurement(samples_ms=[1.0] * 12, number_per_sample=1, mode="cpu", preempted=[False] * 8 + [True] * 4)
    assert busy.contended and "4 of 12 samples preempted (> 25%)" in busy.contended_reason
    ok = Measurement(samples_ms=[1.0] * 12, number_per_sample=1, mode="cpu", preempted=[False] * 9 + [True] * 3)
    assert not ok.contended and ok.n_preempted == 3
    stolen = Measurement(samples_ms=[1.0] * 9, number_per_sample=1, mode="cpu", preempted=[False] * 9, steal=0.3)
    assert stolen.contended and "stole" in stolen.contended_reason


def test_record_keeps_aligned_samples_ratios_and_flags():
    n = 200
    m = Measurement(
        samples_ms=[1.0 + (i % 7) * 0.01 for i in range(n)],
        number_per_sample=10,
        mode="cpu",
        cpu_ratios=[0.4 if i % 10 == 0 else 1.0 for i in range(n)],
        preempted=[i % 10 == 0 for i in range(n)],
        threads=1,
    )
    j = m.to_json()
    assert j["n_samples"] == n and j["n_preempted"] == 20 and j["threads"] == 1
    assert len(j["samples_ms"]) == len(j["cpu_ratios"]) == len(j["preempted"]) == timing.MAX_SAMPLES_KEPT
    assert all((r < 0.5) == p for r, p in zip(j["cpu_ratios"], j["preempted"]))
    for key in ("n_samples", "n_preempted", "cpu_wall_ratio", "noisy", "contended"):
        assert key in j


def test_load_notice(monkeypatch):
    monkeypatch.setattr(timing.os, "getloadavg", lambda: (3.1, 2.0, 1.0))
    monkeypatch.setattr(timing, "available_cores", lambda: 2)
    msg = load_notice(2)
    assert msg and msg.startswith("load 3.1 on 2 cores") and "contended" in msg and "preempted" in msg
    monkeypatch.setattr(timing.os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert load_notice(1) is None


def test_intra_op_threads_restores():
    before = torch.get_num_threads()
    with timing.intra_op_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_gpu_only_paths_refuse_on_cpu():
    if torch.cuda.is_available():
        pytest.skip("checks the CPU error path")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        measure(lambda: None, "cpu", mode="graph-cold")
    with pytest.raises(RuntimeError, match="needs a CUDA device"):
        timing.compare_with_do_bench(lambda: None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs cuda")
def test_graph_cold_and_do_bench_agree():
    x = torch.randn(2048, 2048, device="cuda")
    out = torch.empty_like(x)
    g = measure(lambda: torch.matmul(x, x, out=out), "cuda", mode="graph-cold", min_run_time_s=0.1)
    assert g.mode == "cuda-graph-cold-l2"
    r = timing.compare_with_do_bench(lambda: torch.matmul(x, x, out=out), min_run_time_s=0.2)
    print(f"harness cold-L2 / triton do_bench median: {r['ratio']:.3f}")
    assert 0.5 < r["ratio"] < 2.0


def test_cli_threads_usage_errors(capsys):
    from harness.cli import main

    assert main(["bench", "--threads", "0", "--task", "fundamentals.manual_matmul", "--no-save"]) == 2
    assert main(["run", "--threads", "999", "--task", "fundamentals.manual_matmul", "--no-save"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("--threads" in e and "give 1 to" in e for e in err)


def test_contention_summary_line():
    rows = [{"contended": True}, {"contended": False, "noisy": True}, {"contended": False}, {"median_ms": 1.0}]
    line = timing.contention_summary([{"measurements": rows}, {"id": "t.skip"}])
    assert line.startswith("1 of 3 measurements contended") and "1 more noisy" in line
    assert timing.contention_summary([{"measurements": [{"contended": False}, {"median_ms": 1.0}]}]) is None
