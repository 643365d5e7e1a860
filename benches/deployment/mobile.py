"""9.10 Deploy on mobile.

Compared: a small mobile-style CNN (``models.deploy.TinyConvNet``: Conv-BN-ReLU, depthwise separable
conv, pooling, Linear) on sklearn's 8x8 digits, run eagerly and as ExecuTorch programs (``.pte``),
the format PyTorch's on-device runtime loads on Android and iOS: ``torch.export`` ->
``executorch.exir.to_edge_transform_and_lower`` with the XNNPACK partitioner (conv, linear, pooling
handed to XNNPACK's optimised kernels) -> ``to_executorch()`` -> ``.pte``, and the same program
without a partitioner, on ExecuTorch's *portable* kernels. The programs are loaded back from a file
with ``executorch.runtime`` (the same C++ runtime a phone runs, through its Python bindings). The
bench times all three and records both ``.pte`` file sizes.

The XNNPACK program must leave no convolution or matmul outside its delegate and answer batches the
export never saw (the batch is a dynamic dim, example >= 2 since torch.export specialises sizes 0
and 1); the static portable program refuses batch 5, ``kernels.export.pte.PteModule`` naming the
planned shape and the fix where the runtime says ``set_inputs() failed with error 0x10``.

Lesson: on a phone there is no Python and little memory: ExecuTorch's design goal is a runtime under
50 KB without kernels, against 1.5 MB for the Lite Interpreter it replaces, which relied on
TorchScript (pytorch/executorch README, "Why ExecuTorch?", 2023). Everything dynamic is settled
ahead of time (shapes, memory plan, which kernels), so a shape not declared at export is refused at
run time. Speed comes from the backend: portable kernels are reference loops written for coverage
and size, and the delegate (XNNPACK on CPUs) is where the optimised kernels are.
"""

from __future__ import annotations

import copy
import dataclasses

import torch

from harness import Prepared, System, task
from harness.claims import speedup
from harness.data.digits import digits_split
from harness.mutants import Mutant
from kernels.export.pte import PteModule, lower
from models.deploy import ConvNetConfig


@dataclasses.dataclass(frozen=True)
class MobileConfig(ConvNetConfig):
    """The CNN's width and image size, fed the held-out 8x8 digits (a larger ``image`` upsamples them)."""

    batch: int = 2
    """the export's example batch (>= 2) and the bench batch"""

    def images(self, generator=None, batch=None) -> torch.Tensor:  # the digits in [0, 1]: nothing is drawn
        n = self.batch if batch is None else batch
        x = digits_split(seed=0)[2][:n].view(-1, 1, 8, 8)  # (n, 64) -> (n, 1, 8, 8)
        return x if self.image == 8 else torch.nn.functional.interpolate(x, size=(self.image,) * 2, mode="bilinear")


@task("deployment.mobile", seed="9.10", title="deploy on mobile")
class Mobile(System):
    __doc__ = __doc__
    requires = ("executorch",)
    variants = ("eager", "xnnpack", "portable")
    sizes = {"tiny": MobileConfig(), "cpu": MobileConfig(width=16, image=16, batch=8)}
    # importing ExecuTorch's compiler stack alone takes 10-20 s on a busy 2-core machine
    time_limit_s = {"check": 300.0, "bench": 600.0, "run": 900.0}
    metrics = {
        "pte_kb_xnnpack": "size of the XNNPACK .pte file, KiB",
        "pte_kb_portable": "size of the portable-kernel .pte file, KiB",
    }
    claims = (
        speedup(
            "xnnpack",
            over="portable",
            at_least=2.0,
            text="XNNPACK-delegated program >= 2x faster than ExecuTorch's portable kernels",
        ),
    )
    #: backend of the program checked for delegation and dynamic batch
    backend: str = "xnnpack"
    #: export the batch dim as dynamic
    dynamic_batch: bool = True
    #: prepares the model for export (inference: eval mode)
    freeze = staticmethod(lambda m: m.eval())
    mutants = (
        Mutant(
            "no_partitioner",
            "lowered without the XNNPACK partitioner: everything on portable kernels",
            {"backend": "portable"},
            match="delegate",
        ),
        Mutant(
            "static_batch",
            "exported without a dynamic batch dim, served at other batch sizes",
            {"dynamic_batch": False},
            match="batch",
        ),
        Mutant(
            "exported_in_train_mode",
            "exported without .eval(): batch-norm updates and dropout in the graph",
            {"freeze": staticmethod(lambda m: m)},
            match="lowering",
        ),
    )

    def check(self, ctx):
        cfg = ctx.configs[0]
        net, x = cfg.build(ctx.rng_seed, batch=16)
        ref = copy.deepcopy(net).eval()
        ex = x[: cfg.batch]
        dyn = ({0: torch.export.Dim("batch", min=1, max=64)},) if self.dynamic_batch else None
        try:
            lo = lower(self.freeze(copy.deepcopy(net)), ex, backend=self.backend, dynamic_shapes=dyn)
        except Exception as e:  # exir rejects what it cannot lower (a training-mode op is not core ATen)
            ctx.expect(
                False,
                f"lowering to ExecuTorch failed: {type(e).__name__}: {str(e).strip()[:300]}",
                name="the model lowers to a .pte",
            )
        heavy = lo.left_out()  # convolutions and matmuls outside the delegate (kernels.export.pte.HEAVY_OPS)
        ctx.expect(
            lo.delegate_calls >= 1 and not heavy,
            f"{lo.delegate_calls} XNNPACK delegate calls; left on portable kernels: {heavy}",
            name="XNNPACK delegate runs the convolutions and matmuls",
        )
        with torch.no_grad():
            pte = PteModule.written(lo.buffer, ctx.workdir / "model.pte")  # loaded from the file, as a phone app would
            for b in (cfg.batch, 1, 7):
                try:
                    got = pte(x[:b])
                except ValueError as e:
                    ctx.expect(False, f"batch {b}: {e}", name="the .pte runs batch sizes the export never saw")
                ctx.assert_close(got, ref(x[:b]), name="XNNPACK .pte = eager", where=f"digits, batch {b}")
            portable = PteModule(lower(ref, ex, backend="portable").buffer)  # static shapes
            ctx.assert_close(portable(ex), ref(ex), name="portable .pte = eager", where=f"batch {cfg.batch}")
            ctx.expect_raises(
                ValueError,
                lambda: portable(x[:5]),
                match="planned for input shape",
                name="a static .pte refuses batch 5 with a clear message",
            )

    def bench(self, ctx):
        net, ex = ctx.configs[0].build(ctx.rng_seed, train=False)
        for backend in ("xnnpack", "portable"):
            ctx.metric(f"pte_kb_{backend}", len(lower(net, ex, backend=backend).buffer) / 1024)
        super().bench(ctx)

    def prepare(self, ctx, impl, config):
        net, x = config.build(ctx.rng_seed, train=False)
        if impl == "eager":
            return Prepared(fn=torch.inference_mode()(lambda: net(x)), items=config.batch, item_unit="images")
        pte = PteModule.written(lower(net, x, backend=impl).buffer, ctx.workdir / f"{impl},{config.label()}.pte")
        return Prepared(fn=lambda: pte(x), items=config.batch, item_unit="images")
