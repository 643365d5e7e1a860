"""9.02 TorchScript inference.

Compared: a small CNN (``models.deploy.TinyConvNet``, with BatchNorm and Dropout) run eagerly, as
TorchScript (``torch.jit.script`` and ``torch.jit.trace``), through ``torch.compile`` and, in the
gpu preset, as an AOTInductor package (a C++ build); and a model with a data-dependent branch
(``GatedMLP``: ``if x.sum() > 0`` picks one of two layers) captured each way.

Scripted and traced CNNs must equal eager at two batches, before and after ``torch.jit.load``; the
module traced on a positive input must be *wrong* on negative ones (the tracer recorded one path,
with a TracerWarning), the scripted one, which compiles the ``if``, right on both. ``torch.jit`` is
deprecated (torch 2.13 warns on every call: "Please switch to torch.compile or torch.export");
``torch.export`` refuses the Python ``if`` (a data-dependent guard) instead of freezing it, and
exports both paths of the ``torch.cond`` version, through save/load and at an unseen batch.

Lesson: tracing runs the model once and records the operators it executed, so Python control
flow on tensor values, and anything else Python decided, is frozen at trace time; the PyTorch
docs for ``torch.jit.trace`` warn exactly this. Scripting compiles the source instead, but only a
subset of Python. PyTorch 2 replaced both: across 163 open-source models ``torch.compile`` worked
93 % of the time and trained 43 % faster on an A100 on average (pytorch.org, "PyTorch 2.0: Our
next generation release", 2023, on the HuggingFace, TIMM and TorchBench suites), and
``torch.export`` gives the whole-graph, Python-free artifact TorchScript used to give, failing
loudly where a trace would silently be wrong.
"""

from __future__ import annotations

import copy
import dataclasses

import torch

from harness import Prepared, System, task
from harness.claims import speedup, time_ratio
from harness.mutants import Mutant
from harness.task import measure_or_skip
from kernels.export.compile import compile_or_skip, export_round_trip, jit_round_trip, quiet_jit
from kernels.export.graph import quiet_torch_logs
from models.deploy import BranchDeletedMLP, CondGatedMLP, ConvNetConfig, GatedMLP


@dataclasses.dataclass(frozen=True)
class TSConfig(ConvNetConfig):
    """The CNN's width, image and batch (of the check's example and the bench), and the gated MLP's."""

    dim: int = 16
    """width of the gated MLP (check)"""
    aot_inductor: bool = False
    """time an AOTInductor package too (a C++ build of about a minute on a 2-core CPU)"""


@task("deployment.torchscript", seed="9.02", title="TorchScript inference")
class TorchScript(System):
    __doc__ = __doc__
    variants = ("eager", "scripted", "compiled", "aot_inductor")
    sizes = {
        "tiny": TSConfig(),
        "cpu": TSConfig(width=16, image=16, batch=16),
        "gpu": TSConfig(width=32, image=32, batch=64, aot_inductor=True),
    }
    claims = (
        time_ratio(
            "scripted",
            to="eager",
            at_most=1.25,
            text="TorchScript is a format, not a speed-up: scripted within 1.25x of eager",
        ),
        speedup("compiled", over="eager", at_least=1.0, text="torch.compile at least as fast as eager at this size"),
    )
    #: how the module to script/trace is prepared (inference: eval mode)
    freeze = staticmethod(lambda m: m.eval())
    #: how the branching model is scripted
    script = staticmethod(torch.jit.script)
    #: the branching model written for torch.export
    export_cls: type[GatedMLP] = CondGatedMLP
    mutants = (
        Mutant(
            "forgets_eval",
            "scripted/traced in training mode (Dropout on, BatchNorm on batch statistics)",
            {"freeze": staticmethod(lambda m: m)},
            match="= eager",
        ),
        Mutant(
            "traced_branch",
            "the branching model 'scripted' by torch.jit.trace: claimed right on the other branch",
            {"script": staticmethod(lambda m: torch.jit.trace(m, torch.ones(2, m.pos.in_features)))},
            match="other branch",
        ),
        Mutant(
            "branch_deleted",
            "torch.export's data-dependent error silenced by deleting the branch",
            {"export_cls": BranchDeletedMLP},
            match="torch.export",
        ),
    )

    def check(self, ctx):
        cfg, g = ctx.configs[0], ctx.generator()
        cnn, x = cfg.build(ctx.rng_seed, g)
        ref = copy.deepcopy(cnn).eval()
        x2 = cfg.images(g, cfg.batch + 3)  # a batch the trace never saw
        with torch.no_grad():
            for name, jit, args in (("scripted", torch.jit.script, ()), ("traced", torch.jit.trace, (x,))):
                m = quiet_jit(jit, self.freeze(copy.deepcopy(cnn)), *args)
                for when, mm in jit_round_trip(m, ctx.workdir / f"{name}.pt"):
                    for xi in (x, x2):
                        ctx.assert_close(mm(xi), ref(xi), name=f"{name} = eager", where=f"CNN, {when}, batch {len(xi)}")
            torch.manual_seed(ctx.rng_seed + 1)
            gated = GatedMLP(cfg.dim).eval()
            xp = torch.randn(cfg.batch, cfg.dim, generator=g).abs()  # sum > 0: the "pos" branch
            xn = -xp  # sum < 0: the other branch
            traced = quiet_jit(torch.jit.trace, gated, xp)
            ctx.assert_close(traced(xp), gated(xp), name="traced = eager on the traced branch")
            ctx.expect(
                not torch.allclose(traced(xn), gated(xn)),
                "the module traced on x.sum() > 0 matched eager on x.sum() < 0: the inputs took the same branch",
                name="trace is wrong on the other branch (the lesson)",
            )
            for when, mm in jit_round_trip(quiet_jit(self.script, gated), ctx.workdir / "gated.pt"):
                ctx.assert_close(mm(xp), gated(xp), name="scripted branch = eager", where=f"traced branch, {when}")
                ctx.assert_close(mm(xn), gated(xn), name="scripted branch = eager", where=f"other branch, {when}")
            with quiet_torch_logs():  # the refused export logs its half-traced graph first
                ctx.expect_raises(
                    Exception,
                    lambda: torch.export.export(gated, (xp,)),
                    match="data-dependent",
                    name="torch.export refuses a Python if on tensor values",
                )
            cond = self.export_cls(cfg.dim).eval()
            cond.load_state_dict(gated.state_dict())
            loaded = export_round_trip(cond, xp, ctx.workdir / "gated.pt2")  # batch dynamic (xp's batch >= 2)
            for where, xi in (("branch x.sum() > 0", xp), ("branch x.sum() < 0", xn), ("unseen batch 3", xn[:3])):
                ctx.assert_close(loaded(xi), gated(xi), name="torch.export save/load = eager", where=where)

    def bench(self, ctx):  # a compiler that cannot build here is a skipped part, its reason from prepare
        for config in ctx.configs:
            for spec in ctx.implementations(self, bench=True):
                measure_or_skip(self, ctx, spec.name, config)

    def prepare(self, ctx, impl, config):
        if impl == "aot_inductor" and not config.aot_inductor:
            raise NotImplementedError("its C++ build takes about a minute on a 2-core CPU; the gpu preset times it")
        model, x = config.build(ctx.rng_seed, ctx.generator(), device=ctx.device, train=False)
        if impl == "scripted":
            model = quiet_jit(torch.jit.script, model)
        elif impl != "eager":  # only a compiler may fail to build (NotImplementedError); eager or TorchScript is a bug
            model = compile_or_skip(impl, model, x, ctx.workdir)  # built and warmed up; a package in the scratch folder
        fn = torch.inference_mode()(lambda: model(x))
        fn()  # warms up outside the timed region
        return Prepared(fn=fn, items=config.batch, item_unit="images")
