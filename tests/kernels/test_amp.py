"""kernels/amp/policy.py, amp_probe.py, amp_scaler.py: cast policy vs torch.autocast, and the
dynamic loss scaler vs torch.amp.GradScaler(device="cpu"), step by step."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from kernels.amp.policy import (
    CPU_BF16_POLICY,
    CUDA_FP16_POLICY,
    DynamicLossScaler,
    ManualAutocast,
    policy_for,
    registered_autocast_ops,
)
from kernels.amp.probe import PROBES, compare_policy
from kernels.optim.clipping import clip_grad_norm_

INF, NAN = float("inf"), float("nan")
THIS_TORCH = tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2]) == (2, 13)


# ================================================================ cast policy


@pytest.mark.skipif(
    not THIS_TORCH, reason=f"the tables are those of torch 2.13; torch {torch.__version__} may register other ops"
)
@pytest.mark.parametrize("policy", [CPU_BF16_POLICY, CUDA_FP16_POLICY], ids=["cpu", "cuda"])
def test_tables_equal_this_torch_registrations(policy):
    live = registered_autocast_ops(policy.device_type)
    mine = policy.registered_ops()
    assert mine == live, f"missing {sorted(live - mine)}, extra {sorted(mine - live)}"


def test_cpu_policy_matches_torch_autocast_op_by_op():
    # real bfloat16 autocast on CPU: same dtype AND bit-identical values for every probe
    # in every input-dtype variant (f32, bf16, mixed, f64)
    assert compare_policy(CPU_BF16_POLICY) == []


def test_cuda_policy_matches_torch_autocast_op_by_op():
    # without a GPU: fake CUDA tensors through the real AutocastCUDA kernels (dtypes only)
    assert compare_policy(CUDA_FP16_POLICY) == []


def test_documented_cpu_vs_cuda_differences():
    for op in ["softmax", "log_softmax", "layer_norm", "group_norm", "exp", "sum", "mv", "dot"]:
        assert CPU_BF16_POLICY.category(op) == "passthrough", op
    assert CUDA_FP16_POLICY.category("softmax") == "fp32_set_opt_dtype"
    assert CUDA_FP16_POLICY.category("layer_norm") == "fp32"
    assert CUDA_FP16_POLICY.category("mv") == "lower_precision_fp"
    assert CUDA_FP16_POLICY.category("cross_entropy") == "fp32"  # via its decomposition
    assert CPU_BF16_POLICY.category("cross_entropy") == "fp32"  # registered as cross_entropy_loss
    assert CPU_BF16_POLICY.category("einsum") == "lower_precision_fp"  # via bmm
    assert CUDA_FP16_POLICY.category("binary_cross_entropy") == "banned"
    assert {p.name for p in PROBES} >= {
        "linear",
        "matmul",
        "conv2d",
        "bmm",
        "baddbmm",
        "addmm",
        "softmax",
        "log_softmax",
        "layer_norm",
        "mse_loss",
    }


def test_compute_dtype_rules():
    x32, x16 = torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.bfloat16)
    p = CPU_BF16_POLICY
    assert p.compute_dtype("linear", (x32, x32)) == torch.bfloat16
    assert p.compute_dtype("linear", (x32.double(), x32.double())) is None  # doubles ignored
    assert p.compute_dtype("mse_loss", (x16, x16)) == torch.float32
    assert p.compute_dtype("cat", ([x16, x32],)) == torch.float32  # widest
    assert p.compute_dtype("cat", ([x16, x16],)) == torch.bfloat16
    assert p.compute_dtype("softmax", (x32,)) is None
    assert p.compute_dtype("linear", (torch.zeros(2, 2, dtype=torch.long),)) is None
    with pytest.raises(RuntimeError, match="unsafe to autocast"):
        CUDA_FP16_POLICY.cast_args("binary_cross_entropy", (x32, x32))
    with pytest.raises(ValueError, match="device type"):
        policy_for("tpu")


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc1 = torch.nn.Linear(4 * 6 * 6, 16)
        self.ln = torch.nn.LayerNorm(16)
        self.fc2 = torch.nn.Linear(16, 5)

    def forward(self, x):
        h = F.relu(self.conv(x)).flatten(1)  # (B, 4*6*6)
        h = self.ln(torch.tanh(self.fc1(h)))
        att = torch.softmax(h @ h.T, -1)  # (B, B)
        return self.fc2(att @ h)


def test_manual_autocast_training_step_equals_torch_autocast():
    torch.manual_seed(0)
    net = _Net()
    x = torch.randn(8, 3, 6, 6)
    y = torch.randint(0, 5, (8,))

    def step(ctx):
        net.zero_grad()
        with ctx:
            out = net(x)
            loss = F.cross_entropy(out, y)
        loss.backward()
        return out, loss, [p.grad.clone() for p in net.parameters()]

    o1, l1, g1 = step(torch.autocast("cpu", dtype=torch.bfloat16))
    o2, l2, g2 = step(ManualAutocast(CPU_BF16_POLICY))
    assert o1.dtype == o2.dtype == torch.bfloat16 and l1.dtype == l2.dtype == torch.float32
    assert torch.equal(o1, o2) and torch.equal(l1, l2)
    for a, b in zip(g1, g2):
        assert a.dtype == b.dtype == torch.float32
        assert torch.equal(a, b)


def test_probe_that_never_runs_is_reported_not_silently_equal():
    # a comparison of error with error must not count as agreement
    from kernels.amp.probe import OpProbe

    broken = OpProbe("linear", lambda R, I: F.linear(R(3, 4, first=True), R(5, 3)))  # bad shapes
    assert [m.detail for m in compare_policy(CPU_BF16_POLICY, (broken,))] == ["the reference never ran"]
    assert [m.detail for m in compare_policy(CUDA_FP16_POLICY, (broken,))] == ["the reference never ran"]


def test_manual_autocast_refuses_to_nest_in_torch_autocast():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with pytest.raises(RuntimeError, match="turn torch.autocast off"):
            with ManualAutocast(CPU_BF16_POLICY):
                pass


def test_planted_policy_bugs_are_caught():
    # the CUDA rule (softmax/layer_norm in float32) applied on CPU is wrong on this torch
    gpu_rules_on_cpu = dataclasses.replace(CPU_BF16_POLICY, fp32=CPU_BF16_POLICY.fp32 | {"softmax", "layer_norm"})
    bad = {m.op for m in compare_policy(gpu_rules_on_cpu, variants=("low",))}
    assert {"softmax", "layer_norm"} <= bad
    forgot_linear = dataclasses.replace(
        CPU_BF16_POLICY, lower_precision_fp=CPU_BF16_POLICY.lower_precision_fp - {"linear"}
    )
    assert "linear" in {m.op for m in compare_policy(forgot_linear, variants=("f32",))}
    no_fp32_losses_on_gpu = dataclasses.replace(CUDA_FP16_POLICY, fp32=frozenset())
    assert "mse_loss" in {m.op for m in compare_policy(no_fp32_losses_on_gpu, variants=("low",))}


# ================================================================ loss scaler


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2))


def run_script(script, scaler, opt_cls=torch.optim.SGD, clip=None, **opt_kw):
    """Train on a fixed stream; ``script[i]`` in {"ok", "inf", "-inf", "nan"} poisons one
    scaled gradient entry of step i. Returns per step (scale, tracker, skipped, params)."""
    model = _model()
    opt = opt_cls(model.parameters(), **(opt_kw or {"lr": 0.05, "momentum": 0.9}))
    gen = torch.Generator().manual_seed(1)
    rec = []
    for cond in script:
        x, y = torch.randn(8, 4, generator=gen), torch.randn(8, 2, generator=gen)
        opt.zero_grad()
        scaler.scale(((model(x) - y) ** 2).mean()).backward()
        if cond != "ok":
            model[2].weight.grad[1, 3] = {"inf": INF, "-inf": -INF, "nan": NAN}[cond]
        before = [p.detach().clone() for p in model.parameters()]
        if clip is not None:
            scaler.unscale_(opt)
            clip(model.parameters(), 0.5)
        scaler.step(opt)
        scaler.update()
        after = [p.detach().clone() for p in model.parameters()]
        tracker = scaler._growth_tracker
        rec.append((scaler.get_scale(), int(tracker), all(torch.equal(a, b) for a, b in zip(before, after)), after))
    return rec


def assert_same_records(mine, ref):
    assert len(mine) == len(ref)
    for i, ((s1, t1, k1, p1), (s2, t2, k2, p2)) in enumerate(zip(mine, ref)):
        assert s1 == s2, f"step {i}: scale {s1} vs {s2}"
        assert t1 == t2, f"step {i}: growth tracker {t1} vs {t2}"
        assert k1 == k2, f"step {i}: skipped {k1} vs {k2}"
        for a, b in zip(p1, p2):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


SCRIPTS = {
    "grow_then_backoff": ["ok"] * 7 + ["inf"] + ["ok"] * 3 + ["nan", "nan"] + ["ok"] * 7,
    "alternating": ["ok", "inf", "ok", "ok", "-inf", "ok", "ok", "ok", "nan", "ok", "ok", "ok", "ok"],
    "random": [
        ["ok", "ok", "ok", "inf", "nan"][i]
        for i in torch.randint(0, 5, (40,), generator=torch.Generator().manual_seed(3)).tolist()
    ],
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
@pytest.mark.parametrize("factors", [(2.0**10, 2.0, 0.5, 3), (3.0, 1.7, 0.3, 2)], ids=["pow2", "odd"])
def test_scaler_equals_grad_scaler_step_by_step(name, factors):
    init, growth, backoff, interval = factors
    kw = dict(init_scale=init, growth_factor=growth, backoff_factor=backoff, growth_interval=interval)
    mine = run_script(SCRIPTS[name], DynamicLossScaler(**kw))
    ref = run_script(SCRIPTS[name], torch.amp.GradScaler("cpu", **kw))
    assert_same_records(mine, ref)
    assert any(r[2] for r in mine) and not all(r[2] for r in mine)  # some skipped, some not
    for _, _, _, params in mine:  # NaN/inf never reached the weights
        assert all(torch.isfinite(p).all() for p in params)


def test_scaler_with_unscale_clip_and_own_optimizer():
    from kernels.optim.optimizers import Adam

    script = SCRIPTS["alternating"]
    kw = dict(init_scale=256.0, growth_interval=2)
    # the same clip on both sides: kernels.optim.clipping's float32 norm differs from torch's in
    # the last bit (tests/kernels/test_clipping.py), which this bitwise check would see
    mine = run_script(script, DynamicLossScaler(**kw), opt_cls=Adam, clip=torch.nn.utils.clip_grad_norm_, lr=0.01)
    ref = run_script(
        script,
        torch.amp.GradScaler("cpu", **kw),
        opt_cls=torch.optim.Adam,
        clip=torch.nn.utils.clip_grad_norm_,
        lr=0.01,
    )
    assert_same_records(mine, ref)
    own_clip = run_script(script, DynamicLossScaler(**kw), opt_cls=Adam, clip=clip_grad_norm_, lr=0.01)
    assert [r[:3] for r in own_clip] == [r[:3] for r in ref]
    for (_, _, _, a), (_, _, _, b) in zip(own_clip, ref):
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y)


def test_scale_does_not_grow_past_float32_range():
    kw = dict(init_scale=3e38, growth_factor=2.0, growth_interval=1)
    mine = run_script(["ok"] * 3, DynamicLossScaler(**kw))
    ref = run_script(["ok"] * 3, torch.amp.GradScaler("cpu", **kw))
    assert [r[0] for r in mine] == [r[0] for r in ref]
    assert math.isfinite(mine[-1][0])


def test_unscale_overflow_passes_in_torch_and_is_caught_with_check_unscaled():
    # documented torch behaviour: the inf check runs on the *scaled* gradients
    def one_step(scaler):
        p = torch.nn.Parameter(torch.ones(2))
        opt = torch.optim.SGD([p], lr=0.1)
        scaler.scale(p.sum())
        p.grad = torch.tensor([1e36, 1.0])  # finite when scaled (S = 1e-3), inf unscaled
        scaler.step(opt)
        scaler.update()
        return p.detach()

    ref = one_step(torch.amp.GradScaler("cpu", init_scale=1e-3))
    mine = one_step(DynamicLossScaler(init_scale=1e-3))
    assert torch.equal(mine, ref) and not torch.isfinite(ref).all()
    safe = DynamicLossScaler(init_scale=1e-3, check_unscaled=True)
    assert torch.equal(one_step(safe), torch.ones(2)) and safe.last_step_skipped


def test_state_dict_compatible_with_grad_scaler():
    ref = torch.amp.GradScaler("cpu", init_scale=128.0, growth_interval=5)
    run_script(["ok", "ok", "inf", "ok"], ref)
    mine = DynamicLossScaler()
    mine.load_state_dict(ref.state_dict())
    assert mine.get_scale() == ref.get_scale() and mine.get_growth_tracker() == int(ref._growth_tracker)
    assert mine.state_dict().keys() == ref.state_dict().keys()


class _NoBackoffScaler(DynamicLossScaler):
    """Planted bug: skips the step but does not shrink the scale or reset the tracker."""

    def update(self, new_scale=None):
        scale, tracker = self._scale, self._growth_tracker
        found = any(st["found_inf"] for st in self._opt_state.values())
        super().update(new_scale)
        if found:
            self._scale, self._growth_tracker = scale, tracker


class _NoSkipScaler(DynamicLossScaler):
    """Planted bug: steps even when the gradients are not finite."""

    def step(self, optimizer, *args, **kwargs):
        super().step(optimizer, *args, **kwargs)
        st = self._state(optimizer)
        if st["found_inf"]:
            optimizer.step()


@pytest.mark.parametrize("bad", [_NoBackoffScaler, _NoSkipScaler])
def test_planted_scaler_bugs_are_caught(bad):
    script = SCRIPTS["grow_then_backoff"]
    ref = run_script(script, torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3))
    mine = run_script(script, bad(init_scale=1024.0, growth_interval=3))
    with pytest.raises(AssertionError):
        assert_same_records(mine, ref)


def test_scaler_bad_input_and_misuse():
    for kw in [
        dict(growth_factor=1.0),
        dict(backoff_factor=1.0),
        dict(backoff_factor=0.0),
        dict(growth_interval=0),
        dict(init_scale=-1.0),
    ]:
        with pytest.raises(ValueError):
            DynamicLossScaler(**kw)
    p = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([p], lr=0.1)
    s = DynamicLossScaler()
    with pytest.raises(RuntimeError, match="No inf checks"):
        s.update()
    s.scale(p.sum()).backward()
    s.unscale_(opt)
    with pytest.raises(RuntimeError, match="already been called"):
        s.unscale_(opt)
    s.step(opt)
    with pytest.raises(RuntimeError, match="step\\(\\) has already been called"):
        s.step(opt)
    s.update()
    p16 = torch.nn.Parameter(torch.ones(2, dtype=torch.float16))
    p16.grad = torch.ones(2, dtype=torch.float16)
    with pytest.raises(ValueError, match="FP16"):
        s.unscale_(torch.optim.SGD([p16], lr=0.1))
    off = DynamicLossScaler(enabled=False)
    loss = p.sum()
    assert off.scale(loss) is loss and off.get_scale() == 1.0
