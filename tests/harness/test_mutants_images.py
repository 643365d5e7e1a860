"""Mutants: a survivor fails the task, a crash is not a catch; pictures: sizes, pooling, budget."""

import base64
import io

import pytest
import torch

from harness import Operator, impl
from harness.context import Context
from harness.images import MAX_HEATMAP, RECORD_BUDGET_BYTES, encode_image
from harness.mutants import Mutant, replace_call, replace_functions, replace_impl, run_mutant, tiny_changed
from harness.registry import Registry, RegistryError, task
from harness.runner import run_task


class Double(Operator):
    """y = 2x, by hand."""

    sizes = {"tiny": 5}
    factor = 2.0

    def inputs(self, config, device, dtype, seed):
        return (torch.randn(config, generator=torch.Generator().manual_seed(seed)),)

    def reference(self, x):
        return 2 * x

    @impl(baseline=True)
    def torch_mul(self, x):
        return lambda: torch.mul(x, 2)

    @impl
    def own(self, x):
        return lambda: x * self.factor


def _register(mutants):
    cls = type("D", (Double,), {"mutants": mutants, "__doc__": Double.__doc__})
    return task("zz.double", seed="1.01", title="t", registry=Registry())(cls)


def test_caught_survivor_and_crash():
    cls = _register(
        (
            Mutant("triple", "multiplies by 3", {"factor": 3.0}, match="own"),
            Mutant("harmless", "the same factor written as an int", {"factor": 2}),
            replace_impl("crash", "raises instead of computing", "own", lambda self, x: lambda: 1 / 0),
        )
    )
    caught, survived, crashed = (run_mutant(cls, m) for m in cls.mutants)
    assert caught["caught"] and "own" in caught["how"]
    assert not survived["caught"] and "cannot see" in survived["how"]
    assert not crashed["caught"] and "crashed" in crashed["how"]


def test_replace_call_times_the_wrong_function_of_the_inputs():
    cls = _register((replace_call("halves", "x / 2", "own", lambda x: x / 2),))
    verdict = run_mutant(cls, cls.mutants[0])
    assert verdict["caught"] and "own" in verdict["how"]
    x = torch.ones(3)
    assert torch.equal(cls.mutants[0].build(cls)().own(x)(), x / 2)


def test_replace_functions_keeps_each_wrong_function_unbound():
    base = type("B", (), {"id": "zz.b", "f": staticmethod(abs), "g": staticmethod(round), "__doc__": "b"})
    m = replace_functions("neg", "negates", match="neg", f=lambda x: -x, g=lambda x: x)
    obj = m.build(base)()
    assert (m.name, m.what, m.match) == ("neg", "negates", "neg")
    assert (obj.f(3), obj.g(2.6), base().f(-3)) == (-3, 2.6, 3)  # called unbound, the task's own untouched
    with pytest.raises(ValueError, match="no attribute 'h'"):
        replace_functions("typo", "x", h=abs).build(base)


def test_tiny_changed_patches_the_tiny_preset_only():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        lr: float = 1e-3
        epochs: int = 3

    sizes = {"tiny": Cfg(), "cpu": Cfg(epochs=9)}
    assert tiny_changed(sizes, lr=0.0, epochs=1) == {"sizes": {"tiny": Cfg(lr=0.0, epochs=1)}}
    assert sizes["tiny"] == Cfg()  # the task's own presets untouched


def test_run_task_with_mutants_fails_on_a_survivor_and_records_each():
    cls = _register((Mutant("triple", "x3", {"factor": 3.0}), Mutant("harmless", "int 2", {"factor": 2})))
    entry = run_task(cls, mode="check", mutants=True)
    assert entry["status"] == "fail" and "harmless" in entry["reason"]
    assert [(m["name"], m["caught"]) for m in entry["mutants"]] == [("triple", True), ("harmless", False)]
    plain = run_task(cls, mode="check")
    assert plain["status"] == "pass" and "mutants" not in plain


def test_mutant_patching_an_unknown_attribute_fails_registration():
    with pytest.raises(RegistryError, match="no attribute 'fctor'"):
        _register((Mutant("typo", "x", {"fctor": 3.0}),))
    with pytest.raises(RegistryError, match="repeat"):
        _register((Mutant("a", "x", {"factor": 3.0}), Mutant("a", "y", {"factor": 4.0})))


def test_image_grid_is_a_png_of_the_grid_size():
    from PIL import Image

    e = encode_image("g", torch.rand(6, 1, 8, 8), nrow=3)
    img = Image.open(io.BytesIO(base64.b64decode(e["png_b64"])))
    assert img.size == (e["width"], e["height"]) == (3 * 9 + 1, 2 * 9 + 1)
    with pytest.raises(ValueError, match="C = 1 or 3"):
        encode_image("bad", torch.rand(2, 8, 8))


def test_heatmap_is_pooled_and_budget_is_enforced():
    ctx = Context(_register(()), mode="check")
    ctx.heatmap("h", torch.rand(300, 10), x=list(range(10)))
    h = ctx.record.images[0]
    assert len(h["z"]) == MAX_HEATMAP and len(h["z"][0]) == 10 and h["y"] is None
    with pytest.raises(ValueError, match="labels"):
        ctx.heatmap("h2", torch.rand(4, 4), x=[1, 2])
    for i in range(8):  # noise does not compress: each 128x128 RGB PNG is ~65 KiB of base64
        ctx.image(f"n{i}", torch.rand(3, 128, 128))
    assert sum(len(str(e)) for e in ctx.record.images) <= RECORD_BUDGET_BYTES * 1.05
    assert any("dropped" in w for w in ctx.record.warnings)
