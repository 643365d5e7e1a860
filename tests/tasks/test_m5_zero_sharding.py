"""m5 zero_sharding: ZeRO-1 and FSDP2 on 2 gloo ranks follow unsharded Adam, state splits as ZeRO
says (its mutants, no parameter broadcast, all state on rank 0, FSDP2 summing gradients:
test_mutants.py). The memory formula, the mixed-precision Adam and the byte counts are checked
here in one process.
"""

import pickle

import pytest
import torch

from harness import REGISTRY, capabilities
from harness.testing import run_check
from kernels.sharding.zero import MasterAdam, largest_state_share, state_bytes, zero_bytes_per_param

Task = REGISTRY.get("m5.zero_sharding")


@pytest.mark.skipif(capabilities.missing(["multiproc"]) != [], reason="needs multiproc (gloo)")
def test_check_passes_with_two_gloo_ranks():
    rec = run_check(Task)
    assert all(c["passed"] for c in rec.checks.values())
    names = {
        "ZeRO-1 weights = unsharded Adam",
        "FSDP2 weights = unsharded Adam",
        "ZeRO-1 optimizer state per rank",
        "consolidated state = unsharded Adam's",
        "mixed-precision bytes per parameter = ZeRO's 2 + 2 + 12",
    }
    assert names <= set(rec.checks)
    assert rec.metrics["mixed_bytes_per_param"] == 16.0


def test_zero_figure_1_worked_example():
    # Rajbhandari et al. 2020, figure 1: Psi = 7.5B parameters, N_d = 64, K = 12
    psi, gb = 7.5e9, 1e9
    per_rank = {s: zero_bytes_per_param(s, 64) * psi / gb for s in range(4)}
    assert per_rank[0] == pytest.approx(120) and per_rank[1] == pytest.approx(31.4, abs=0.05)
    assert per_rank[2] == pytest.approx(16.6, abs=0.05) and per_rank[3] == pytest.approx(1.88, abs=0.01)
    assert (
        zero_bytes_per_param(0, 2, param=4, grad=4, k=8) == 16 and zero_bytes_per_param(3, 2, param=4, grad=4, k=8) == 8
    )
    with pytest.raises(ValueError, match="stage"):
        zero_bytes_per_param(4, 2)


def test_master_adam_equals_adam_in_fp32_and_keeps_12_bytes_in_bf16():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(8, 4), torch.nn.Linear(8, 4)
    b.load_state_dict(a.state_dict())
    ours, ref = MasterAdam(a.parameters(), lr=0.1), torch.optim.Adam(b.parameters(), lr=0.1)
    x = torch.randn(16, 8)
    for _ in range(3):
        for m, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            m(x).pow(2).mean().backward()
            opt.step()
    torch.testing.assert_close(a.weight, b.weight)
    low = torch.nn.Linear(8, 4).to(torch.bfloat16)
    opt = MasterAdam(low.parameters(), lr=0.1)
    low(x.bfloat16()).float().pow(2).mean().backward()
    opt.step()
    n = sum(p.numel() for p in low.parameters())
    assert state_bytes(opt) == {"per_param": 12 * n, "scalars": 2 * 4}  # one fp32 step per tensor
    assert low.weight.dtype == torch.bfloat16 and opt.state[low.weight]["master"].dtype == torch.float32
    with pytest.raises(ValueError, match="lr > 0"):
        MasterAdam(low.parameters(), lr=0)


def test_preset_parameter_counts():
    with torch.device("meta"):  # shapes only: the 300M model allocates nothing
        counts = {size: sum(p.numel() for p in Task.sizes[size].model().parameters()) for size in ("cpu", "gpu")}
    assert counts == {"cpu": 20_907_520, "gpu": 307_032_064}


def test_greedy_partition_bound():
    share, bound = largest_state_share([60, 40], 100, 30, 2)
    assert share == 0.6 and bound == pytest.approx(0.8)


def test_mutant_optimizers_pickle_by_reference():
    module = __import__(Task.__module__, fromlist=["ZeroSkipsBroadcast"])
    for cls in (module.ZeroSkipsBroadcast, module.ZeroAllOnRankZero):
        assert pickle.loads(pickle.dumps(cls)) is cls
