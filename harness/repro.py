"""What a run actually ran with: the reproducibility checklist, captured live, never typed in.

:func:`capture` reads the state that decides whether a run can be repeated bit for bit, at
the moment it is called: library versions, the CPU's SIMD level (which kernels ATen picks),
torch's deterministic switches, the seeds in force, the environment variables that change
kernel selection (``CUBLAS_WORKSPACE_CONFIG``, ``PYTHONHASHSEED``, thread counts), the git
commit with its dirty flag, and a SHA-256 over every installed distribution's name and
version (two environments with the same hash import the same packages).

:func:`checklist` turns a capture into items a person reads: each with the captured value,
whether it meets the bar for a reproducible run, and what to do if not. Sources: PyTorch
docs, "Reproducibility" (``torch.use_deterministic_algorithms``, cuDNN flags, the cuBLAS
workspace setting for CUDA >= 10.2) and "Randomness"; NVIDIA cuBLAS docs, "Results
reproducibility".
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import random
from collections.abc import Iterator
from importlib import metadata
from typing import Any

import numpy as np
import torch

#: torch's CPU generator seed when nothing seeded it (c10's default_rng_seed_val).
DEFAULT_TORCH_SEED = 67280421310721
#: Environment variables that change which kernels run or how they are seeded.
ENV_VARS = ("CUBLAS_WORKSPACE_CONFIG", "PYTHONHASHSEED", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_LAUNCH_BLOCKING")


@contextlib.contextmanager
def deterministic(on: bool = True) -> Iterator[None]:
    """``torch.use_deterministic_algorithms(on)`` inside the block, the previous setting restored after it."""
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(on)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was)


def packages_hash(dists: list[tuple[str, str]] | None = None) -> str:
    """SHA-256 (hex, first 16 digits) of sorted ``name==version`` lines of installed distributions."""
    if dists is None:
        dists = [((d.metadata["Name"] or "?").lower(), d.version) for d in metadata.distributions()]
    text = "\n".join(f"{n}=={v}" for n, v in sorted(set(dists)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _rng_digest() -> str:
    """A short digest of the Python, NumPy and torch CPU generator states (changes with every draw)."""
    h = hashlib.sha256()
    h.update(repr(random.getstate()).encode())
    state: Any = np.random.get_state()  # legacy tuple: (name, keys (624,) uint32, pos, ...)
    h.update(np.asarray(state[1]).tobytes())
    h.update(torch.get_rng_state().numpy().tobytes())
    return h.hexdigest()[:16]


def capture() -> dict[str, Any]:
    """The live state, as a flat JSON-ready dict (see the module docstring for the fields)."""
    from harness.fingerprint import git_state

    git = git_state()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "torch_initial_seed": torch.initial_seed(),
        "rng_digest": _rng_digest(),
        "intra_op_threads": torch.get_num_threads(),
        **{f"env_{k}": os.environ.get(k) for k in ENV_VARS},
        "git_commit": git.get("commit"),
        "git_dirty": git.get("dirty"),
        "packages_sha256": packages_hash(),
    }


def checklist(cap: dict[str, Any]) -> list[dict[str, Any]]:
    """Items a person reads: ``{"item", "value", "ok", "advice"}`` (ok None: informational)."""
    on_cuda = cap.get("cuda") is not None and torch.cuda.is_available()
    items = [
        (
            "code pinned to a commit",
            cap["git_commit"],
            bool(cap["git_commit"]) and cap["git_dirty"] is False,
            "commit your changes: a dirty tree cannot be checked out again",
        ),
        ("packages recorded", cap["packages_sha256"], True, "keep a lock file with this environment"),
        (
            "deterministic algorithms",
            cap["deterministic_algorithms"],
            cap["deterministic_algorithms"],
            "torch.use_deterministic_algorithms(True): nondeterministic kernels then raise instead of drifting",
        ),
        (
            "cuDNN autotuner off",
            not cap["cudnn_benchmark"],
            not cap["cudnn_benchmark"],
            "torch.backends.cudnn.benchmark = False: autotuning may pick a different algorithm per run",
        ),
        (
            "seed set",
            cap["torch_initial_seed"],
            cap["torch_initial_seed"] != DEFAULT_TORCH_SEED,
            "torch.manual_seed(s) (and random.seed, np.random.seed): the default seed is random per process",
        ),
        (
            "hash seed fixed",
            cap["env_PYTHONHASHSEED"],
            cap["env_PYTHONHASHSEED"] is not None,
            "export PYTHONHASHSEED=0: set iteration order otherwise changes between processes",
        ),
        (
            "cuBLAS workspace pinned",
            cap["env_CUBLAS_WORKSPACE_CONFIG"],
            (cap["env_CUBLAS_WORKSPACE_CONFIG"] in (":4096:8", ":16:8")) if on_cuda else None,
            "export CUBLAS_WORKSPACE_CONFIG=:4096:8 (CUDA >= 10.2) for deterministic cuBLAS",
        ),
        ("CPU kernels (SIMD level)", cap["cpu_capability"], None, "results can differ across AVX2/AVX512 machines"),
        ("library versions", f"torch {cap['torch']}, numpy {cap['numpy']}, python {cap['python']}", None, ""),
    ]
    return [{"item": i, "value": v, "ok": ok, "advice": "" if ok else a} for i, v, ok, a in items]
