"""9.01 Export to ONNX.

Compared: a small sequence classifier (``models.deploy.SeqClassifier``: (B, T, 8) -> (B, 4), input
projection, one self-attention block, GELU MLP, mean over T) run in eager PyTorch and exported with
``torch.onnx.export(..., dynamo=True)`` (torch.export + onnxscript) into an ``.onnx`` file that
ONNX Runtime runs on its CPU execution provider with the same thread count; timed at batch 1,
T = 16, the export time recorded as ``export_s``.

The check runs the file at the export's example shape (2, 3) and at shapes the export never saw,
since batch and sequence were exported as named dynamic dims (``dynamic_shapes``); a static export
is refused at batch 5: what the dynamic axes buy. The example must be >= 2 in every dynamic dim
(``torch.export`` specialises sizes 0 and 1: a size-1 dim broadcasts, so it cannot be assumed to
stay free; ``kernels.export.onnx_rt.export_onnx`` refuses such an example).

Lesson: an ONNX file is a graph without Python; the runtime is free to fuse it. Microsoft fused
BERT's attention, LayerNorm and GELU subgraphs into single ONNX Runtime kernels and served a
3-layer distilled BERT at 1.7 ms on a V100 (Microsoft Open Source blog, "Microsoft open sources
breakthrough optimizations for transformer inference on GPU and CPU", 2020-01-21). For a small
model at batch 1 most of eager PyTorch's time is per-operator dispatch in Python, which an
ahead-of-time graph removes. The price is the export: shapes are frozen unless declared dynamic,
and the exporter is only as good as torch.export's capture (data-dependent control flow needs
``torch.cond``; see 9.02).
"""

from __future__ import annotations

import dataclasses

import torch

from harness import Prepared, System, task
from harness.claims import time_ratio
from harness.mutants import Mutant
from kernels.export.onnx_rt import export_onnx, io_types, run, session, signature
from models.deploy import SeqClassifier


@dataclasses.dataclass(frozen=True)
class OnnxConfig:
    """Model width, the export's example shape, the unseen shapes checked and the bench input."""

    features: int = 8
    """F: input features per step"""
    dim: int = 32
    """model width D"""
    classes: int = 4
    """output logits"""
    example: tuple[int, int] = (2, 3)
    """(batch, seq) of the export's example input; >= 2 in both (0/1 specialisation)"""
    unseen: tuple[tuple[int, int], ...] = ((1, 1), (5, 11), (17, 2))
    """(batch, seq) shapes the check runs that the export never saw"""
    batch: int = 1
    """bench batch size (samples)"""
    seq: int = 16
    """bench sequence length (steps)"""

    def label(self) -> str:
        return f"D={self.dim},B={self.batch},T={self.seq}"


@task("deployment.onnx_export", seed="9.01", title="export to ONNX")
class OnnxExport(System):
    __doc__ = __doc__
    requires = ("onnxruntime",)
    variants = ("eager", "onnxruntime")
    sizes = {"tiny": OnnxConfig(), "cpu": OnnxConfig(dim=64, seq=32)}
    metrics = {"export_s": "seconds torch.onnx.export(dynamo=True) took, saving included"}
    claims = (
        time_ratio(
            "onnxruntime",
            to="eager",
            at_most=1.0,
            text="ONNX Runtime at batch 1 takes no longer than eager PyTorch (per-op dispatch dominates)",
        ),
    )
    #: input dim -> name exported as dynamic (None: every dim static)
    dynamic_dims: dict[int, str] | None = {0: "batch", 1: "seq"}
    #: dtype the model and example are exported in (the service feeds float32)
    export_dtype: torch.dtype = torch.float32
    mutants = (
        Mutant(
            "no_dynamic_shapes",
            "exported without dynamic_shapes: every dim frozen at (2, 3)",
            {"dynamic_dims": None},
            match="unseen",
        ),
        Mutant(
            "batch_only_dynamic",
            "only the batch dim declared dynamic; the sequence length is frozen",
            {"dynamic_dims": {0: "batch"}},
            match="unseen",
        ),
        Mutant(
            "float64_export",
            "model and example exported in float64 (a graph that wants doubles)",
            {"export_dtype": torch.float64},
            match="float32",
        ),
    )

    def _model(self, ctx, cfg: OnnxConfig) -> SeqClassifier:
        torch.manual_seed(ctx.rng_seed)
        return SeqClassifier(cfg.features, cfg.dim, cfg.classes).eval()

    def check(self, ctx):
        cfg = ctx.configs[0]
        model, g = self._model(ctx, cfg), ctx.generator()
        x = torch.randn(*cfg.example, cfg.features, generator=g)  # (B, T, F) float32
        path = ctx.workdir / "model.onnx"
        secs = export_onnx(model.to(self.export_dtype), x.to(self.export_dtype), path, dynamic_dims=self.dynamic_dims)
        ctx.metric("export_s", secs)
        model.float()
        kinds = io_types(path)  # raises onnx.checker.ValidationError on a malformed graph
        ctx.expect(
            kinds == ("FLOAT", "FLOAT"),
            f"the ONNX graph takes {kinds[0]} and returns {kinds[1]}; the service sends float32: export in float32",
            name="ONNX graph is float32 in and out",
        )
        sess = session(path, torch.get_num_threads())
        shape = signature(sess)[0]
        for b, t in (cfg.example, *cfg.unseen):
            xi = torch.randn(b, t, cfg.features, generator=g)
            try:
                got = run(sess, xi)
            except ValueError as e:
                ctx.expect(False, f"at unseen shape {(b, t)}: {e}", name="ORT runs shapes the export never saw")
            with torch.no_grad():
                want = model(xi)  # (b, classes) eager logits
            ctx.assert_close(got, want, name="ORT = eager", where=f"(B, T) = {(b, t)} (unseen unless {cfg.example})")
        ctx.expect(
            isinstance(shape[0], str) and isinstance(shape[1], str),
            f"graph input dims {shape}: batch and sequence should be symbolic",
            name="batch and sequence are symbolic dims",
        )
        export_onnx(model, x, ctx.workdir / "static.onnx", dynamic_dims=None)
        s2 = session(ctx.workdir / "static.onnx", 1)
        big = torch.randn(5, cfg.example[1], cfg.features, generator=g)
        ctx.expect_raises(ValueError, lambda: run(s2, big), match="refused", name="a static export refuses batch 5")

    def prepare(self, ctx, impl, config):
        model = self._model(ctx, config)
        x = torch.randn(config.batch, config.seq, config.features, generator=ctx.generator())
        if impl == "eager":
            return Prepared(fn=torch.inference_mode()(lambda: model(x)), items=config.batch, item_unit="samples")
        example = torch.randn(2, 3, config.features, generator=ctx.generator(1))
        path = ctx.workdir / "bench.onnx"
        ctx.metric("export_s", export_onnx(model, example, path, dynamic_dims=self.dynamic_dims))
        sess = session(path, torch.get_num_threads())
        feed = {sess.get_inputs()[0].name: x.numpy()}
        return Prepared(fn=lambda: sess.run(None, feed), items=config.batch, item_unit="samples")
