"""Machine fingerprint: what a result was measured on.

Recorded in every run record so a number is never separated from its machine: CPU
model, cores, threads, RAM, GPU name/driver/clocks (through NVML where present),
CUDA/cuDNN/torch/triton/python versions, and the git commit with a dirty flag.

``machine_id`` is a stable, filesystem-safe name for the *kind* of machine (GPU model
or CPU model plus core count), used as the folder under ``results/runs/``; host names
are not used because sandboxes get random ones.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    """Commit, short commit and dirty flag of the checkout at ``root`` (None outside git)."""

    def run(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = run("rev-parse", "HEAD")
    stamped = commit_without_git(root)
    if stamped["commit"]:
        # an explicit stamp wins: a copy sent to a lent GPU machine may carry a stale .git
        # (seen: the device's copy reported the session's first commit, not the one it ran)
        return {**stamped, "git_head": commit} if commit else stamped
    if not commit:
        return stamped
    # Untracked files are ignored: results written by this very run must not mark it dirty.
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "short": commit[:8], "dirty": bool(status)}


#: File a copy of the checkout without ``.git`` carries its commit in (see :func:`commit_without_git`).
COMMIT_FILE = ".drills_commit"


def commit_without_git(root: Path = REPO_ROOT) -> dict[str, Any]:
    """The commit of a checkout copied without ``.git`` (a lent GPU machine gets the working tree only).

    From ``$DRILLS_COMMIT``, else from the file ``<root>/.drills_commit`` that the README's
    command writes before the copy (``git rev-parse HEAD`` plus ``-dirty`` when the tree has
    uncommitted changes to tracked files). Returns the :func:`git_state` fields plus
    ``source`` (``env`` or ``file``); ``short`` is ``nogit`` when neither is there.
    """
    text, source = os.environ.get("DRILLS_COMMIT", "").strip(), "env"
    if not text:
        try:
            text, source = (root / COMMIT_FILE).read_text().split()[0].strip(), "file"
        except (OSError, IndexError):
            return {"commit": None, "short": "nogit", "dirty": None}
    commit, dirty = text.removesuffix("-dirty"), text.endswith("-dirty")
    if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
        return {"commit": None, "short": "nogit", "dirty": None}
    return {"commit": commit, "short": commit[:8], "dirty": dirty, "source": source}


def _gpus() -> list[dict[str, Any]]:
    if not torch.cuda.is_available():
        return []
    gpus = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        g: dict[str, Any] = {
            "name": p.name,
            "capability": f"{p.major}.{p.minor}",
            "memory_gib": round(p.total_memory / 2**30, 1),
            "sm_count": p.multi_processor_count,
        }
        try:
            import pynvml

            pynvml.nvmlInit()
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            g["driver"] = pynvml.nvmlSystemGetDriverVersion()
            g["sm_clock_mhz"] = pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)
            g["max_sm_clock_mhz"] = pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_SM)
            g["mem_clock_mhz"] = pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_MEM)
            g["power_limit_w"] = pynvml.nvmlDeviceGetPowerManagementLimit(h) / 1000
            pynvml.nvmlShutdown()
        except Exception as e:  # NVML missing or refused: keep what torch told us
            g["nvml"] = f"unavailable: {type(e).__name__}"
        gpus.append(g)
    return gpus


def _slug(s: str) -> str:
    s = re.sub(r"\((r|tm|TM|R)\)|CPU|@.*$|Processor", "", s)
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")[:40] or "unknown"


@functools.lru_cache(maxsize=4)
def fingerprint(bench_threads: int | None = None) -> dict[str, Any]:
    """The fingerprint dict stored in run records (cached per process).

    ``bench_threads``: the intra-op threads benchmarks run with (``--threads``; default
    torch's current setting). Records of different thread counts are not compared
    (harness.compare).
    """
    gpus = _gpus()
    cpu = _cpu_model()
    fp: dict[str, Any] = {
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "bench_threads": bench_threads or torch.get_num_threads(),
        "ram_gib": _ram_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "triton": _version("triton"),
        "numpy": _version("numpy"),
        "torchdrills": _version("torchdrills"),
        "gpus": gpus,
        "git": git_state(),
        # Other work on the machine when the run started: timings under load are noisy.
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    fp["machine_id"] = machine_id(fp)
    return fp


def machine_id(fp: dict[str, Any] | None = None) -> str:
    """Stable folder name for this kind of machine, e.g. ``nvidia-h200`` or ``intel-xeon-8375c-2c``."""
    fp = fp or fingerprint()
    if fp.get("gpus"):
        n = len(fp["gpus"])
        return _slug(fp["gpus"][0]["name"]) + (f"-x{n}" if n > 1 else "")
    return f"{_slug(fp['cpu_model'])}-{fp.get('cpu_affinity') or fp.get('cpu_cores')}c"
