"""8.03 Model quantization.

Compared: a digits MLP (64 -> 256 -> 256 -> 10, float32) beside its int8 versions: torchao's PT2E
flow (``torch.export`` -> ``prepare_pt2e`` with ``X86InductorQuantizer`` -> calibration ->
``convert_pt2e``: uint8 activations per tensor, int8 weights per channel, static scales) run
eagerly (q/dq as float ops) and lowered by ``torch.compile`` (inductor fuses q/dq into oneDNN int8
kernels; cpu preset only: ~20 s to compile), torchao's dynamic int8
(``Int8DynamicActivationInt8WeightConfig``: activation scales per row at run time) and, where it
still exists, the deprecated ``torch.ao.quantization.quantize_dynamic`` (fbgemm kernels). The
affine arithmetic is written out in ``kernels.compress.affine`` and checked against
``torch.quantize_per_tensor`` (exact ties included) and torchao's ``MinMaxObserver``.

Lesson: int8 buys size for sure (4x fewer weight bytes) and speed only where the hardware has int8
dot products and the runtime uses them. PyTorch's "(beta) Dynamic Quantization on BERT" tutorial
(pytorch.org/tutorials, sections 3.1-3.2) shrinks bert-base-uncased from 438 MB to 181 MB: only the
Linear layers are quantized (350 MB -> 90 MB, ~3.9x) while the 90 MB word-embedding table stays
float32; F1 on MRPC is 0.9019 (fp32) vs 0.902 (int8) in its table, and one MacBook Pro thread
evaluates MRPC in 90 s instead of 160 s with fbgemm's int8 kernels. Without AVX512-VNNI / AVX-VNNI /
AMX an x86 core multiplies int8 with the same AVX2 lanes it uses for float (VNNI's VPDPBUSD fuses the
3-instruction int8 multiply-accumulate VPMADDUBSW + VPMADDWD + VPADDD into one: Intel, "Deep Learning
with Intel AVX-512 and Intel DL Boost"), so int8 may not be faster at all; a PT2E model that is not
lowered is slower than float32, because it runs quantize/dequantize as extra float ops, and torchao's
dynamic int8 tensor subclass is meant to run under ``torch.compile`` (eagerly it dispatches per op).
``torch.ao.quantization`` is deprecated (its warning names 2.10 for removal; it still imports in
2.13): the PT2E flow and the tensor-subclass configs live in torchao now.
"""

from __future__ import annotations

import copy
import dataclasses

import torch

from harness import Comparison, Prepared, task
from harness.claims import metric, speedup
from harness.data.digits import digits_split
from harness.mutants import Mutant
from harness.task import measure_or_skip
from kernels.compress import affine, ao
from kernels.compress import wrong as W
from kernels.compress.digits import accuracy, fit, mlp


@dataclasses.dataclass(frozen=True)
class QuantConfig:
    """Model, training and timing sizes."""

    hidden: int = 256
    """width of the two hidden layers (weights dominate the file: the size ratio nears 4x)"""
    steps: int = 400
    """Adam steps of the float model (batch 64, lr 3e-3)"""
    calibration: int = 512
    """training rows the PT2E observers see before conversion"""
    batch: int = 256
    """rows per timed forward"""
    compile_int8: bool = False
    """also time the PT2E model lowered by torch.compile (inductor; ~20 s to compile)"""


@task("advanced.quantization", seed="8.03", title="model quantization")
class Quantization(Comparison):
    __doc__ = __doc__
    requires = ("torchao",)
    variants = ("fp32", "int8_pt2e", "int8_pt2e_inductor", "int8_dynamic", "int8_dynamic_legacy")
    sizes = {"tiny": QuantConfig(), "cpu": QuantConfig(hidden=512, batch=512, compile_int8=True)}
    metrics = {
        "acc_fp32": "float32 held-out accuracy, share",
        "acc_int8_pt2e": "PT2E static int8 held-out accuracy, share",
        "acc_int8_dynamic": "torchao dynamic int8 held-out accuracy, share",
        "acc_drop_pts": "fp32 minus PT2E int8 held-out accuracy, points",
        "logit_rel_err": "||z_int8 - z_fp32|| / ||z_fp32|| on the held-out set (PT2E)",
        "size_ratio": "saved fp32 state dict bytes / saved PT2E int8 state dict bytes",
        "cpu_has_vnni": "1 when /proc/cpuinfo lists avx512_vnni, avx_vnni or amx_int8, else 0",
    }
    claims = (
        metric("acc_drop_pts", "<=", 1.0, text="PT2E int8 loses <= 1 point of held-out digits accuracy"),
        metric("size_ratio", ">=", 3.0, text="the int8 state dict is >= 3x smaller than the float32 one"),
        speedup("fp32", over="int8_pt2e", at_least=1.0,
                text="un-lowered PT2E int8 (q/dq as float ops) is no faster than float32"),
    )  # fmt: skip
    quantize = staticmethod(affine.quantize)
    qparams = staticmethod(affine.minmax_qparams)
    drop_state = staticmethod(ao.drop_unused_state)
    calibration_data = staticmethod(lambda x: x)
    mutants = (
        Mutant("zero_point_subtracted", "q = round(x / s) - z", {"quantize": staticmethod(W.zero_point_subtracted)},
               match="torch.quantize_per_tensor"),
        Mutant("zero_point_mid_range", "z = the middle of [qmin, qmax] for an asymmetric range",
               {"qparams": staticmethod(W.zero_point_mid_range)}, match="MinMaxObserver"),
        Mutant("fp32_weights_kept", "the saved int8 model still carries the float32 weights",
               {"drop_state": staticmethod(lambda gm: gm)}, match="smaller"),
        Mutant("calibrated_on_zeros", "observers calibrated on all-zero inputs",
               {"calibration_data": staticmethod(torch.zeros_like)}, match="accuracy"),
    )  # fmt: skip

    def check(self, ctx):
        self._check_affine(ctx)
        r = self._study(ctx, ctx.configs[0])
        n_lin = sum(isinstance(m, torch.nn.Linear) for m in r["fp32"].modules())
        n_dq, n_q = ao.count_ops(r["pt2e"], "dequantize_per_channel"), ao.count_ops(r["pt2e"], "quantize_per_tensor")
        ctx.expect(n_dq == n_lin and n_q >= n_lin, f"PT2E graph: {n_dq} per-channel weight dequantizes and {n_q} "
                   f"activation quantizes for {n_lin} Linear layers", name="q/dq around every Linear")  # fmt: skip
        for k, (wq, scale, zp, w) in enumerate(r["weights"]):
            err = (affine.dequantize(wq, scale, zp) - w).abs()  # (out, in)
            ctx.expect(bool((err <= scale / 2 + 1e-6).all()), f"int8 weight {k}: error {float(err.max()):.3g} "
                       "exceeds scale/2", name="int8 weights within scale/2")  # fmt: skip
        for arm in ("int8_pt2e", "int8_dynamic"):
            drop = 100 * (r["acc_fp32"] - r[f"acc_{arm}"])
            ctx.expect(drop <= 1.0, f"{arm}: held-out accuracy {r[f'acc_{arm}']:.4f} vs fp32 {r['acc_fp32']:.4f} "
                       f"(drop {drop:.2f} points > 1)", name=f"{arm} accuracy within 1 point")  # fmt: skip
        ctx.expect(r["logit_rel_err"] <= 0.10, f"PT2E logits move by {r['logit_rel_err']:.3f} of their norm (> 0.10)",
                   name="int8 logits within 10 %")  # fmt: skip
        ctx.expect(r["size_ratio"] >= 3.0, f"saved int8 state dict only {r['size_ratio']:.2f}x smaller than fp32 "
                   f"({r['bytes_fp32']} vs {r['bytes_int8']} bytes; want >= 3x)",
                   name="int8 file >= 3x smaller")  # fmt: skip

    def _check_affine(self, ctx):
        g = ctx.generator()
        x = torch.cat([torch.randn(4096, generator=g) * 3 + 1, torch.arange(-40, 41) * 0.25])  # ties at scale 0.5
        for dtype, qmin, qmax in ((torch.quint8, 0, 255), (torch.qint8, -128, 127)):
            for scale, zp in (self.qparams(x.min(), x.max(), qmin, qmax), (0.5, qmin + 131)):
                q_ref, x_ref = affine.torch_quantized(x, scale, zp, dtype)
                q = self.quantize(x, scale, zp, qmin, qmax)
                where = f"{dtype}, scale {scale:.4g}, zero point {zp}"
                ctx.assert_close(q, q_ref, name="hand quantize = torch.quantize_per_tensor", where=where)
                ctx.assert_close(affine.dequantize(q, scale, zp), x_ref, name="hand dequantize = torch dequantize",
                                 where=where)  # fmt: skip
            s, z = self.qparams(x.min(), x.max(), qmin, qmax)
            ctx.assert_close(torch.tensor([s, float(z)]), torch.tensor(ao.observer_qparams(x, dtype)).float(),
                             name="min/max qparams = torchao MinMaxObserver", where=str(dtype))  # fmt: skip

    def _study(self, ctx, cfg):
        xtr, ytr, xte, yte = digits_split(seed=0)
        torch.manual_seed(ctx.rng_seed)
        model = fit(mlp(cfg.hidden), xtr, ytr, steps=cfg.steps, lr=3e-3, seed=ctx.rng_seed)
        gm = self.drop_state(ao.pt2e_int8(model, xtr[:8], self.calibration_data(xtr[: cfg.calibration])))
        dyn = ao.dynamic_int8(copy.deepcopy(model))
        weights = ao.pt2e_weights(gm, model)  # [(int8 W, scale (out, 1), zero point (out, 1), float W)]
        with torch.no_grad():
            z, zq = model(xte), gm(xte)  # (N, 10) each
        b_fp, b_q = ao.saved_bytes(model.state_dict()), ao.saved_bytes(gm.state_dict())
        return {"fp32": model, "pt2e": gm, "dynamic": dyn, "weights": weights, "acc_fp32": accuracy(model, xte, yte),
                "acc_int8_pt2e": accuracy(gm, xte, yte), "acc_int8_dynamic": accuracy(dyn, xte, yte),
                "logit_rel_err": float((zq - z).norm() / z.norm()), "bytes_fp32": b_fp, "bytes_int8": b_q,
                "size_ratio": b_fp / b_q, "bytes_dynamic": ao.saved_bytes(dyn.state_dict())}  # fmt: skip

    def bench(self, ctx):
        cfg = ctx.configs[0]
        r = self._study(ctx, cfg)
        for k in ("acc_fp32", "acc_int8_pt2e", "acc_int8_dynamic", "logit_rel_err", "size_ratio"):
            ctx.metric(k, r[k])
        ctx.metric("acc_drop_pts", 100 * (r["acc_fp32"] - r["acc_int8_pt2e"]))
        ctx.metric("cpu_has_vnni", float(ao.cpu_has_vnni()))
        ctx.note(f"torch.backends.cpu.get_cpu_capability() = {torch.backends.cpu.get_cpu_capability()}")
        ctx.table("saved state dict bytes", [{"model": k, "bytes": r[f"bytes_{k}"]} for k in
                                             ("fp32", "int8", "dynamic")])  # fmt: skip
        self._models = r
        for impl in self.variants:  # a variant this preset or torch cannot run: a skipped part saying why
            measure_or_skip(self, ctx, impl, cfg)

    def prepare(self, ctx, impl, config):
        r = getattr(self, "_models", None) or self._study(ctx, config)
        x = torch.rand(config.batch, 64, generator=ctx.generator())  # (B, 64) pixels in [0, 1]
        model = {"fp32": r["fp32"], "int8_pt2e": r["pt2e"], "int8_dynamic": r["dynamic"]}.get(impl)
        if impl == "int8_pt2e_inductor":
            if not config.compile_int8:
                raise NotImplementedError("the inductor compile (~20 s) runs in the cpu preset only")
            model = ao.compiled_warm(r["pt2e"], x)
        elif impl == "int8_dynamic_legacy":
            model = ao.legacy_dynamic(r["fp32"])  # NotImplementedError where this torch has none
        fn = torch.no_grad()(lambda: model(x))  # inference: no autograd graph
        stop = ao.stop_compile_workers if impl == "int8_pt2e_inductor" else None
        return Prepared(fn=fn, items=config.batch, item_unit="rows", teardown=stop)
