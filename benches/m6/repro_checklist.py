"""m6 A reproducibility checklist.

Compared: nothing against a reference; the output is the checklist itself. ``harness.repro``
captures, at the moment it is called, what decides whether a run can be repeated bit for
bit: versions, the CPU's SIMD level, torch's deterministic switches, the seeds in force,
the environment variables that change kernel selection, the git commit with its dirty flag
and a hash of every installed package. The report shows the captured values and which ones
fall short of a reproducible run, with the fix.

Check: the capture is live, not typed in: flags, seeds, RNG state and environment variables
changed by the check show up in it (and in the verdicts), versions are the loaded ones, the
package hash is order-free, the commit is git's.

Bench: the cost of one capture (it runs at the start of every run, so it must stay cheap).

Lesson: reproducibility is a property of the whole stack, not of a seed. The PyTorch docs
("Reproducibility") promise bit-identical results only on the same release, platform and
device, with ``torch.use_deterministic_algorithms(True)``, cuDNN autotuning off and, on CUDA
10.2 and later, ``CUBLAS_WORKSPACE_CONFIG=:4096:8``; a checklist is trustworthy only if it is
generated from the run, because a hand-written one goes stale the moment a flag changes.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import torch

from harness import Comparison, Prepared, task
from harness import repro as R
from harness.claims import metric
from harness.fingerprint import git_state
from harness.mutants import Mutant

# -- wrong versions (the check must reject each) -------------------------------------------
_FIRST: dict = {}


def _stale_capture():
    if not _FIRST:  # captured once at the start and reused: the checklist goes stale
        _FIRST.update(R.capture())
    return dict(_FIRST)


def _typed_in_capture():
    return {**R.capture(), "torch": "2.4.0", "numpy": "1.26.4"}  # versions copied from a README


def _no_env_capture():
    return {**R.capture(), **{f"env_{k}": None for k in R.ENV_VARS}}  # environment never read


@task("m6.repro_checklist", seed="m6", title="a reproducibility checklist")
class ReproChecklist(Comparison):
    __doc__ = __doc__
    variants = ("capture",)
    sizes = {"tiny": 1}
    metrics = {"capture_ms": "median time of one capture, ms"}
    claims = (
        metric(
            "capture_ms", "<=", 100.0, text="capturing the checklist costs under 100 ms per run", measured_by="capture"
        ),
    )
    capture = staticmethod(R.capture)
    mutants = (
        Mutant(
            "stale",
            "the environment captured once and reused",
            {"capture": staticmethod(_stale_capture)},
            match="deterministic",
        ),
        Mutant(
            "typed_in",
            "versions typed into the checklist",
            {"capture": staticmethod(_typed_in_capture)},
            match="version",
        ),
        Mutant(
            "env_ignored",
            "environment variables never read",
            {"capture": staticmethod(_no_env_capture)},
            match="CUBLAS",
        ),
    )

    def check(self, ctx):
        c0 = self.capture()
        ctx.expect(
            c0["torch"] == torch.__version__ and c0["numpy"] == np.__version__,
            f"version fields {c0['torch']!r}/{c0['numpy']!r} are not the loaded torch "
            f"{torch.__version__}/numpy {np.__version__}",
            name="versions are the loaded ones",
        )
        before = torch.are_deterministic_algorithms_enabled()
        with R.deterministic(not before):
            flipped = self.capture()
        ctx.expect(
            flipped["deterministic_algorithms"] == (not before)
            and self.capture()["deterministic_algorithms"] == before,
            "switching deterministic algorithms did not change the captured flag",
            name="deterministic flag captured live",
        )
        item = {i["item"]: i for i in R.checklist(flipped)}["deterministic algorithms"]
        ctx.expect(
            item["ok"] == (not before),
            "the checklist verdict did not follow the deterministic flag",
            name="verdict follows the flag",
        )
        torch.manual_seed(ctx.rng_seed + 4242)
        cs = self.capture()
        ctx.expect(
            cs["torch_initial_seed"] == ctx.rng_seed + 4242,
            f"seed {cs['torch_initial_seed']} captured after torch.manual_seed({ctx.rng_seed + 4242})",
            name="seed captured",
        )
        torch.rand(1)
        ctx.expect(
            self.capture()["rng_digest"] != cs["rng_digest"],
            "drawing a number left the RNG digest as it was",
            name="RNG state captured live",
        )
        with mock.patch.dict("os.environ", {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}):
            ce = self.capture()
        ctx.expect(
            ce["env_CUBLAS_WORKSPACE_CONFIG"] == ":4096:8",
            f"CUBLAS_WORKSPACE_CONFIG set to :4096:8 was captured as {ce['env_CUBLAS_WORKSPACE_CONFIG']!r}",
            name="environment captured",
        )
        ph = R.packages_hash
        ctx.expect(
            ph([("a", "1"), ("b", "2")]) == ph([("b", "2"), ("a", "1")]) != ph([("a", "1"), ("b", "3")]),
            "the package hash depends on order or ignores a version change",
            name="package hash",
        )
        ctx.expect(
            c0["git_commit"] == git_state().get("commit"), "the captured commit is not git's", name="commit is git's"
        )
        self._table(ctx, c0)

    def bench(self, ctx):
        ctx.metric("capture_ms", ctx.measure("capture", Prepared(fn=self.capture)).median_ms)
        self._table(ctx, self.capture())

    def _table(self, ctx, cap):
        ctx.table("reproducibility checklist", [{**i, "value": str(i["value"])} for i in R.checklist(cap)])

    def prepare(self, ctx, impl, config):
        return Prepared(fn=self.capture)
