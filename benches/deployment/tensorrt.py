"""9.09 Inference with TensorRT.

Compared: a small CNN (``models.deploy.TinyConvNet``) run eagerly, through ``torch.compile``
(default and, on a GPU, ``mode="max-autotune"``) and as a TensorRT engine built by
Torch-TensorRT's dynamo path (``torch_tensorrt.compile(model, ir="dynamo", ...)``), which
exports the model with ``torch.export``, lowers it to core ATen and converts operator by
operator; an operator without a converter stays in PyTorch and splits the engine.

Check (tiny):

* on any machine, the export graph TensorRT would compile: ``torch.export`` of the model in
  eval mode, decomposed to core ATen; its input is float32; it equals eager; it holds no
  training-only operator (``_native_batch_norm_legit_functional``, ``native_dropout``: a
  model exported in train mode); every operator is on the stated converter list
  :data:`TRT_CONVERTERS` (coverage 1.0: one engine); and a model with ``torch.bucketize``,
  which is not on the list, reports coverage below 1 with that operator named as the
  fallback;
* with the ``tensorrt`` capability (a CUDA GPU, TensorRT and torch_tensorrt), the engine's
  outputs stay within 1e-3 of eager; without it that part is skipped with the reason
  (torch_tensorrt cannot come from PyPI alone: the TensorRT libraries download from
  NVIDIA's own index).

Bench: latency of eager, ``torch.compile``, ``max-autotune`` (GPU) and TensorRT (where
installed). On a GPU without TensorRT the record says that ``max-autotune`` stands in.

Lesson: TensorRT wins by fusing layers, picking the fastest kernel per layer and shape at
build time and running in reduced precision; NVIDIA reported up to 6x faster inference with
Torch-TensorRT than eager PyTorch on NVIDIA GPUs (NVIDIA Technical Blog, "Accelerating
Inference Up to 6x Faster in PyTorch with Torch-TensorRT", 2021-12). The precondition is the
graph: the build is only as whole as the converter coverage of the exported operators, and
a model exported in training mode carries batch-norm updates and dropout into it. Checking
the graph needs no GPU, which is why it is the part that runs everywhere.
"""

from __future__ import annotations

import copy
import dataclasses

import torch

from harness import Prepared, System, impl, task
from harness.claims import metric, speedup
from harness.mutants import Mutant
from kernels.export.graph import coverage, graph_ops, input_dtypes
from models.deploy import TinyConvNet

#: Core-ATen operators with a converter in Torch-TensorRT's dynamo path (registered with
#: ``dynamo_tensorrt_converter`` in py/torch_tensorrt/dynamo/conversion/aten_ops_converters.py,
#: pytorch/TensorRT 2.x); a stated subset, the operators CNNs and MLPs lower to.
TRT_CONVERTERS = tuple(
    f"aten.{op}"
    for op in (
        "convolution.default", "_native_batch_norm_legit_no_training.default", "native_layer_norm.default",
        "relu.default", "gelu.default", "sigmoid.default", "tanh.default", "hardtanh.default", "_softmax.default",
        "addmm.default", "mm.default", "bmm.default", "add.Tensor", "sub.Tensor", "mul.Tensor", "div.Tensor",
        "mean.dim", "sum.dim_IntList", "amax.default", "avg_pool2d.default", "max_pool2d_with_indices.default",
        "view.default", "reshape.default", "permute.default", "expand.default", "clone.default", "_to_copy.default",
        "cat.default", "slice.Tensor", "select.int", "squeeze.dims", "unsqueeze.default", "where.self", "clamp.default",
        "embedding.default", "rsqrt.default",
    )
)  # fmt: skip
#: Operators that only a training-mode export contains.
TRAINING_OPS = ("aten._native_batch_norm_legit_functional.default", "aten.native_dropout.default")


@dataclasses.dataclass(frozen=True)
class TRTConfig:
    """CNN size and batch."""

    width: int = 8
    """channels after the first conv"""
    image: int = 8
    """input height = width (pixels)"""
    batch: int = 4
    """images per call"""

    def label(self) -> str:
        return f"w={self.width},img={self.image},B={self.batch}"


class _Bucketized(torch.nn.Module):
    """A feature quantiser in front of the CNN: ``torch.bucketize`` is not on the converter list."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net
        self.register_buffer("edges", torch.linspace(-2, 2, 9))

    def forward(self, x):
        return self.net(torch.bucketize(x, self.edges).float())


def _namespace_only(ops, supported):
    return coverage(ops, [o for o in ops if o.startswith("aten.")])  # any ATen op "has a converter"


@task("deployment.tensorrt", seed="9.09", title="inference with TensorRT")
class TensorRT(System):
    __doc__ = __doc__
    gpu_check = True
    sizes = {"tiny": TRTConfig(), "cpu": TRTConfig(width=16, image=16, batch=16),
             "gpu": TRTConfig(width=64, image=32, batch=64)}  # fmt: skip
    metrics = {"trt_op_coverage": "share of the export graph's operators on the stated TensorRT converter list"}
    claims = (
        metric("trt_op_coverage", ">=", 1.0,
               text="every operator of the CNN's export graph has a TensorRT converter (one engine, no fallback)"),
        speedup("tensorrt", over="eager", at_least=1.5, device="cuda", text="TensorRT >= 1.5x eager on a GPU"),
        speedup("max_autotune", over="eager", at_least=1.0, device="cuda",
                text="torch.compile(mode='max-autotune') at least as fast as eager on a GPU"),
    )  # fmt: skip
    #: prepares the model for export (inference: eval mode)
    freeze = staticmethod(lambda m: m.eval())
    #: dtype of the model and example exported (the engine's input dtype)
    export_dtype: torch.dtype = torch.float32
    #: converter coverage of a list of op names
    coverage_fn = staticmethod(coverage)
    mutants = (
        Mutant("exported_in_train_mode", "exported without .eval(): batch-norm updates and dropout in the graph",
               {"freeze": staticmethod(lambda m: m)}, match="training"),
        Mutant("float16_export", "model and example exported in float16: a half-precision engine input",
               {"export_dtype": torch.float16}, match="float32"),
        Mutant("namespace_coverage", "coverage counts every aten op as convertible", {"coverage_fn":
               staticmethod(_namespace_only)}, match="fallback"),
    )  # fmt: skip

    def _graph(self, ctx, model, x):
        model = self.freeze(model)
        ep = torch.export.export(model.to(self.export_dtype), (x.to(self.export_dtype),)).run_decompositions()
        return ep, graph_ops(ep)

    def check(self, ctx):
        cfg = ctx.configs[0]
        torch.manual_seed(ctx.rng_seed)
        net = TinyConvNet(cfg.width)
        ref = copy.deepcopy(net).eval()
        x = torch.randn(cfg.batch, 1, cfg.image, cfg.image, generator=ctx.generator())
        ep, ops = self._graph(ctx, copy.deepcopy(net), x)
        dts = input_dtypes(ep)
        ctx.expect(dts == [torch.float32], f"export graph inputs are {dts}; the engine is fed float32",
                   name="export graph input is float32")  # fmt: skip
        train = sorted(set(ops) & set(TRAINING_OPS))
        ctx.expect(not train, f"training-only operators {train} in the export graph: export in eval mode",
                   name="no training operators in the graph")  # fmt: skip
        with torch.no_grad():
            ctx.assert_close(ep.module()(x), ref(x), name="export graph = eager")
        cov = self.coverage_fn(ops, TRT_CONVERTERS)
        ctx.metric("trt_op_coverage", cov["fraction"])
        ctx.table(
            "export graph operators (core ATen)",
            [
                {"op": o, "count": n, "TensorRT converter": o in TRT_CONVERTERS}
                for o, n in sorted(ops.items())
                if o != "getitem"
            ],
        )
        ctx.expect(cov["fraction"] == 1.0, f"operators without a converter: {cov['missing']}",
                   name="every operator has a TensorRT converter")  # fmt: skip
        _, ops_b = self._graph(ctx, _Bucketized(copy.deepcopy(net)), x)
        cov_b = self.coverage_fn(ops_b, TRT_CONVERTERS)
        ctx.expect("aten.bucketize.Tensor" in cov_b["missing"] and cov_b["fraction"] < 1.0,
                   f"bucketize model: coverage {cov_b['fraction']:.2f}, missing {cov_b['missing']}; torch.bucketize "
                   "should be reported as the fallback operator",
                   name="an unconverted operator is a fallback")  # fmt: skip
        if ctx.require("tensorrt", part="TensorRT engine (torch_tensorrt) within 1e-3 of eager"):
            trt = self.tensorrt(ref.to(ctx.device), x.to(ctx.device))
            with torch.no_grad():
                ctx.assert_close(trt(), ref(x.to(ctx.device)), rtol=1e-3, atol=1e-3, name="TensorRT = eager")
        elif ctx.is_cuda:
            ctx.note("TensorRT is not installed: the bench compares torch.compile(mode='max-autotune') with eager")

    # -- the implementations the bench times (model in eval mode on ctx.device, x its input) --
    @impl(baseline=True)
    def eager(self, model, x):
        return lambda: model(x)

    @impl
    def compiled(self, model, x):
        return _compiled(model, x)

    @impl(bench_requires=("cuda",))
    def max_autotune(self, model, x):
        return _compiled(model, x, mode="max-autotune")

    @impl(requires=("tensorrt",))
    def tensorrt(self, model, x):
        import torch_tensorrt  # only with the tensorrt capability

        engine = torch_tensorrt.compile(model, ir="dynamo", inputs=[x], enabled_precisions={torch.float32})
        return lambda: engine(x)

    def bench(self, ctx):
        if ctx.is_cuda and not ctx.has("tensorrt"):
            ctx.note("TensorRT is not installed: torch.compile(mode='max-autotune') stands in for it beside eager")
        cfg = ctx.configs[0]
        torch.manual_seed(ctx.rng_seed)
        _, ops = self._graph(ctx, TinyConvNet(cfg.width), torch.randn(2, 1, cfg.image, cfg.image))
        ctx.metric("trt_op_coverage", coverage(ops, TRT_CONVERTERS)["fraction"])
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        torch.manual_seed(ctx.rng_seed)
        model = TinyConvNet(config.width).eval().to(ctx.device)
        x = torch.randn(config.batch, 1, config.image, config.image, generator=ctx.generator()).to(ctx.device)
        spec = next(s for s in self.implementations() if s.name == impl)
        call = getattr(self, str(spec.method))(model, x)  # builds the engine (TensorRT: torch.export inside)
        with torch.inference_mode():
            call()  # compiles (torch.compile) and warms up outside the timed region, in the timed grad mode

        def fn():
            with torch.inference_mode():
                return call()

        return Prepared(fn=fn, items=config.batch, item_unit="images")


def _compiled(model, x, mode: str | None = None):
    compiled = torch.compile(model, mode=mode)
    return lambda: compiled(x)
