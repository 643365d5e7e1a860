"""The timer: raw samples, median/IQR, noise flag, agreement with torch.utils.benchmark."""

import warnings

import pytest
import torch
import torch.utils.benchmark as tbench

from harness.timing import Measurement, NoisyMeasurementWarning, measure


def test_median_iqr_and_noise_flag():
    m = Measurement(samples_ms=[1.0, 1.0, 1.0, 1.0, 10.0], number_per_sample=1, mode="cpu")
    assert m.median_ms == 1.0 and m.min_ms == 1.0
    quiet = Measurement(samples_ms=[1.0, 1.01, 0.99, 1.0], number_per_sample=1, mode="cpu")
    assert not quiet.noisy
    noisy = Measurement(samples_ms=[1.0, 2.0, 1.0, 2.0, 1.5], number_per_sample=1, mode="cpu")
    assert noisy.noisy and noisy.noise > 0.1
    j = noisy.to_json()
    assert j["noisy"] is True and j["n_samples"] == 5 and len(j["samples_ms"]) == 5


def test_samples_are_thinned_for_the_record():
    m = Measurement(samples_ms=[float(i) for i in range(1, 1001)], number_per_sample=1, mode="cpu")
    j = m.to_json()
    assert len(j["samples_ms"]) == 64 and j["samples_ms"][0] == 1.0 and j["samples_ms"][-1] == 1000.0
    assert j["n_samples"] == 1000


def test_cpu_measure_keeps_raw_samples():
    x = torch.randn(256, 256)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoisyMeasurementWarning)
        m = measure(lambda: x @ x, "cpu", min_run_time_s=0.05)
    assert m.mode == "cpu" and len(m.samples_ms) >= 1 and m.median_ms > 0


def test_agrees_with_torch_utils_benchmark():
    """Same workload and thread count, both timers. The agreement is a benchmark, not asserted here
    (`drills timer-check` measures it quiet and loaded); printed with -s.

    On a busy machine they differ by design: the harness drops preempted samples, Timer keeps them.
    """
    x = torch.randn(384, 384)
    fn = lambda: x @ x  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoisyMeasurementWarning)
        ours = measure(fn, "cpu", min_run_time_s=0.2)
    ref = tbench.Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()).blocked_autorange(
        min_run_time=0.2
    )
    print(
        f"harness/torch.utils.benchmark median ratio: {ours.median_ms / (ref.median * 1e3):.3f} "
        f"(contended: {ours.contended})"
    )
    assert ours.median_ms > 0 and ref.median > 0 and ours.mode == "cpu" and ours.cpu_ratios


def test_cuda_modes_need_cuda():
    if torch.cuda.is_available():
        pytest.skip("this test checks the CPU error path")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        measure(lambda: None, "cpu", mode="graph")
    with pytest.raises(ValueError, match="unknown timing mode"):
        measure(lambda: None, "cpu", mode="hot")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs cuda")
def test_cuda_cold_warm_and_graph():
    x = torch.randn(1024, 1024, device="cuda")
    cold = measure(lambda: x @ x, "cuda", mode="cold", min_run_time_s=0.1)
    warm = measure(lambda: x @ x, "cuda", mode="warm", min_run_time_s=0.1)
    out = torch.empty_like(x)
    graph = measure(lambda: torch.matmul(x, x, out=out), "cuda", mode="graph", min_run_time_s=0.1)
    assert cold.mode == "cuda-cold-l2" and warm.mode == "cuda-warm-l2" and graph.mode == "cuda-graph"
    assert cold.host_overhead_ms is not None
