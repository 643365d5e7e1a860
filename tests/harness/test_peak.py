"""Peaks: % of peak in the measured dtype, over 100 % flagged, quiet best-of measurement, the commit without git."""

import json

import pytest
import torch

from harness import fingerprint as fpmod
from harness import peak as peakmod
from harness.context import Context, TaskRecord
from harness.registry import REGISTRY
from harness.timing import Measurement

PEAK = {"matmul_gflops": 50_000.0, "matmul_bf16_gflops": 700_000.0, "matmul_fp16_gflops": 710_000.0, "copy_gbps": 3000}


def _row(dtype, *, flops=None, bytes=None, ms=1.0, peak=PEAK):
    ctx = Context(REGISTRY.get("m4.triton_matmul"), mode="bench", dtype=dtype, peak=peak, record=TaskRecord(id="t"))
    m = Measurement(samples_ms=[ms] * 5, number_per_sample=1, mode="external")
    return ctx.record_measurement("k", m, flops=flops, bytes=bytes), ctx.record


@pytest.mark.parametrize(
    "dtype, want",
    [(torch.bfloat16, 700_000.0), (torch.float16, 710_000.0), (torch.float32, 50_000.0), (torch.float64, None)],
)
def test_pct_of_peak_uses_the_peak_of_the_measured_dtype(dtype, want):
    row, _ = _row(dtype, flops=40e9)  # 40 TFLOP/s
    assert row["gflops"] == pytest.approx(40_000)
    if want is None:
        assert "pct_peak_flops" not in row  # no peak measured for float64: no % at all
    else:
        assert row["pct_peak_flops"] == pytest.approx(100 * 40_000 / want, rel=1e-3)
    assert not row.get("pct_peak_suspect")


def test_over_100_pct_of_peak_is_flagged_not_shown_as_fact():
    row, rec = _row(torch.float32, flops=400e9)  # 8x the fp32 peak: a bf16 rate judged by fp32 would be
    assert row["pct_peak_flops"] > 100 and row["pct_peak_suspect"] is True
    assert any("over 100% is not a fact" in w for w in rec.warnings)
    row, rec = _row(torch.float32, bytes=1e9, ms=0.1)  # 10 TB/s against a 3 TB/s copy
    assert row["pct_peak_bw"] > 100 and row["pct_peak_suspect"] is True
    row, rec = _row(torch.bfloat16, flops=400e9, bytes=1e6)
    assert "pct_peak_suspect" not in row and not rec.warnings
    row, _ = _row(torch.bfloat16, flops=400e9, peak={"matmul_gflops": 50_000.0})  # no bf16 peak stored
    assert "pct_peak_flops" not in row


def test_peak_is_best_of_attempts_with_load_and_threads(tmp_path, monkeypatch):
    rates = iter([4.0, 1.0, 2.0] * 2)  # ms per call of each attempt: the best (1.0) is kept

    def fake_measure(fn, device, mode, min_run_time_s):
        return Measurement(samples_ms=[next(rates)] * 5, number_per_sample=1, mode="cpu")

    monkeypatch.setattr(peakmod, "measure", fake_measure)
    p = peakmod.measure_peak("cpu", quick=True, threads=1)
    assert p["matmul_gflops"] == pytest.approx(round(2 * 512**3 / 1e-3 / 1e9, 1))
    assert p["attempts"] == 3 and p["torch_threads"] == 1 and "load_avg_1m" in p and "loaded" in p


def test_cpu_peaks_are_stored_per_thread_count(tmp_path, monkeypatch):
    base = peakmod.peak_path("cpu", tmp_path)
    base.write_text(json.dumps({"matmul_gflops": 1.0, "copy_gbps": 1.0, "torch_threads": 99}))
    assert peakmod.peak_path("cpu", tmp_path, threads=99) == base
    other = peakmod.peak_path("cpu", tmp_path, threads=1)
    assert other.name.endswith("_cpu_t1.json")
    monkeypatch.setattr(peakmod, "measure_peak", lambda d, quick, threads: {"measured_for": threads})
    assert peakmod.load_or_measure("cpu", peaks_dir=tmp_path, threads=99)["matmul_gflops"] == 1.0
    assert peakmod.load_or_measure("cpu", peaks_dir=tmp_path, threads=1) == {"measured_for": 1}
    assert json.loads(other.read_text()) == {"measured_for": 1} and json.loads(base.read_text())["torch_threads"] == 99


def test_commit_travels_without_git(tmp_path, monkeypatch):
    monkeypatch.delenv("DRILLS_COMMIT", raising=False)
    assert fpmod.git_state(tmp_path)["short"] == "nogit"  # no .git, no file, no variable
    (tmp_path / fpmod.COMMIT_FILE).write_text("0123456789abcdef0123456789abcdef01234567-dirty\n")
    st = fpmod.git_state(tmp_path)
    assert st == {
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "short": "01234567",
        "dirty": True,
        "source": "file",
    }
    monkeypatch.setenv("DRILLS_COMMIT", "fedcba9876543210")
    assert fpmod.git_state(tmp_path)["short"] == "fedcba98" and fpmod.git_state(tmp_path)["source"] == "env"
    monkeypatch.setenv("DRILLS_COMMIT", "not a commit")
    assert fpmod.git_state(tmp_path)["short"] == "nogit"


def test_a_peak_measured_under_load_is_replaced_when_quiet(tmp_path, monkeypatch):
    path = peakmod.peak_path("cpu", tmp_path, threads=1)
    path.write_text(json.dumps({"matmul_gflops": 1.0, "copy_gbps": 1.0, "torch_threads": 1, "loaded": True}))
    monkeypatch.setattr(peakmod, "measure_peak", lambda d, quick, threads: {"remeasured": True})
    monkeypatch.setattr(peakmod, "_load_avg", lambda: 1e6)  # still busy: keep the stored one
    assert peakmod.load_or_measure("cpu", peaks_dir=tmp_path, threads=1)["matmul_gflops"] == 1.0
    monkeypatch.setattr(peakmod, "_load_avg", lambda: 0.0)  # quiet now: measure again
    assert peakmod.load_or_measure("cpu", peaks_dir=tmp_path, threads=1) == {"remeasured": True}
