"""9.09 Inference with TensorRT.

Compared: a small CNN (``models.deploy.TinyConvNet``) run eagerly, through ``torch.compile`` (on a
GPU also ``mode="max-autotune"``, the stand-in where TensorRT is missing) and as a TensorRT engine
from Torch-TensorRT's dynamo path, which exports the model with ``torch.export``, lowers it to core
ATen and converts it operator by operator; an operator without a converter stays in PyTorch and
splits the engine. The check needs no GPU: the export graph (eval mode, float32 in) must equal
eager and hold only operators on ``kernels.export.trt.TRT_CONVERTERS``, with ``torch.bucketize``,
off it, named the fallback; with torch_tensorrt (a CUDA GPU; TensorRT comes from NVIDIA's index,
not PyPI) the engine must stay within 1e-3 of eager.

Lesson: TensorRT wins by fusing layers, picking the fastest kernel per layer and shape at build
time and running in reduced precision; NVIDIA reported up to 6x faster inference with
Torch-TensorRT than eager PyTorch on NVIDIA GPUs (NVIDIA Technical Blog, "Accelerating Inference
Up to 6x Faster in PyTorch with Torch-TensorRT", 2021-12). The precondition is the graph: the
build is only as whole as the converter coverage of the exported operators, and a model exported
in training mode carries batch-norm updates and dropout into it.
"""

from __future__ import annotations

import copy
import functools

import torch

from harness import Prepared, System, impl, task
from harness.claims import metric, speedup
from harness.mutants import Mutant
from kernels.export.graph import core_aten, coverage, input_dtypes
from kernels.export.trt import TRAINING_OPS, TRT_CONVERTERS, Bucketized, namespace_coverage, op_table, trt_compile
from models.deploy import ConvNetConfig


@task("deployment.tensorrt", seed="9.09", title="inference with TensorRT")
class TensorRT(System):
    __doc__ = __doc__
    gpu_check = True
    sizes = {
        "tiny": ConvNetConfig(),
        "cpu": ConvNetConfig(width=16, image=16, batch=16),
        "gpu": ConvNetConfig(width=64, image=32, batch=64),
    }
    metrics = {"trt_op_coverage": "share of the export graph's operators on the stated TensorRT converter list"}
    claims = (
        metric(
            "trt_op_coverage",
            ">=",
            1.0,
            text="every operator of the CNN's export graph has a TensorRT converter (one engine, no fallback)",
        ),
        speedup("tensorrt", over="eager", at_least=1.5, device="cuda", text="TensorRT >= 1.5x eager on a GPU"),
        speedup(
            "max_autotune",
            over="eager",
            at_least=1.0,
            device="cuda",
            text="torch.compile(mode='max-autotune') at least as fast as eager on a GPU",
        ),
    )
    #: the model and example as exported (inference: eval mode; float32, the engine's input dtype)
    export_form = staticmethod(lambda m, x: (m.eval(), x))
    #: converter coverage of a list of op names
    coverage_fn = staticmethod(coverage)
    mutants = (
        Mutant(
            "exported_in_train_mode",
            "exported without .eval(): batch-norm updates and dropout in the graph",
            {"export_form": staticmethod(lambda m, x: (m, x))},
            match="training",
        ),
        Mutant(
            "float16_export",
            "model and example exported in float16: a half-precision engine input",
            {"export_form": staticmethod(lambda m, x: (m.eval().half(), x.half()))},
            match="float32",
        ),
        Mutant(
            "namespace_coverage",
            "coverage counts every aten op as convertible",
            {"coverage_fn": staticmethod(namespace_coverage)},
            match="fallback",
        ),
    )

    def check(self, ctx):
        net, x = ctx.configs[0].build(ctx.rng_seed, ctx.generator())
        ref = copy.deepcopy(net).eval()
        ep, ops = core_aten(*self.export_form(copy.deepcopy(net), x))  # the graph TensorRT would compile
        dts = input_dtypes(ep)
        ctx.expect(
            dts == [torch.float32],
            f"export graph inputs are {dts}; the engine is fed float32",
            name="export graph input is float32",
        )
        train = sorted(set(ops) & set(TRAINING_OPS))
        ctx.expect(
            not train,
            f"training-only operators {train} in the export graph: export in eval mode",
            name="no training operators in the graph",
        )
        ctx.assert_close(ep.module()(x), ref(x), name="export graph = eager")
        cov = self.coverage_fn(ops, TRT_CONVERTERS)
        ctx.metric("trt_op_coverage", cov["fraction"])
        ctx.table("export graph operators (core ATen)", op_table(ops))
        ctx.expect(
            cov["fraction"] == 1.0,
            f"operators without a converter: {cov['missing']}",
            name="every operator has a TensorRT converter",
        )
        cov_b = self.coverage_fn(core_aten(*self.export_form(Bucketized(copy.deepcopy(net)), x))[1], TRT_CONVERTERS)
        ctx.expect(
            "aten.bucketize.Tensor" in cov_b["missing"] and cov_b["fraction"] < 1.0,
            f"bucketize model: coverage {cov_b['fraction']:.2f}, missing {cov_b['missing']}: no fallback named",
            name="an unconverted operator is a fallback",
        )
        if ctx.require("tensorrt", part="TensorRT engine (torch_tensorrt) within 1e-3 of eager"):
            trt = self.tensorrt(ref.to(ctx.device), x.to(ctx.device))
            with torch.no_grad():
                ctx.assert_close(trt(), ref(x.to(ctx.device)), rtol=1e-3, atol=1e-3, name="TensorRT = eager")

    # -- the implementations the bench times (model in eval mode on ctx.device, x its input) --
    @impl(baseline=True)
    def eager(self, model, x):
        return lambda: model(x)

    @impl
    def compiled(self, model, x):
        return functools.partial(torch.compile(model), x)

    @impl(bench_requires=("cuda",))
    def max_autotune(self, model, x):
        return functools.partial(torch.compile(model, mode="max-autotune"), x)

    @impl(requires=("tensorrt",))
    def tensorrt(self, model, x):
        return functools.partial(trt_compile(model, x), x)

    def bench(self, ctx):
        if ctx.is_cuda and not ctx.has("tensorrt"):
            ctx.note("TensorRT is not installed: torch.compile(mode='max-autotune') stands in for it beside eager")
        _, ops = core_aten(*self.export_form(*ctx.configs[0].build(ctx.rng_seed, batch=2)))
        ctx.metric("trt_op_coverage", coverage(ops, TRT_CONVERTERS)["fraction"])
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        model, x = config.build(ctx.rng_seed, ctx.generator(), device=ctx.device, train=False)
        fn = torch.inference_mode()(getattr(self, impl)(model, x))  # builds the engine (TensorRT: export inside)
        fn()  # compiles (torch.compile) and warms up outside the timed region, in the timed grad mode
        return Prepared(fn=fn, items=config.batch, item_unit="images")
