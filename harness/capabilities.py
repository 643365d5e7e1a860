"""Capabilities: which optional stacks this process can use, detected once.

A task lists what it needs in ``requires`` (``("cuda",)``, ``("triton",)``, ...). The
runner skips a task, or one part of it, whose capability is missing and records the
capability by name as the reason, so optional stacks are reported as skipped and never
silently absent (the tritonbench rule in DESIGN.md).

Detection imports nothing heavy except what the capability itself is about, and is
cached for the life of the process: call :func:`detect` as often as you like.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import torch

#: What each capability means, shown by ``drills env`` and in skip reasons.
DESCRIPTIONS: dict[str, str] = {
    "cuda": "a CUDA GPU visible to torch (torch.cuda.is_available())",
    "triton": "the triton package (pip install 'torchdrills[triton]'); on CPU it runs in the interpreter",
    "triton_gpu": "triton compiling for a real GPU (cuda and triton)",
    "nvcc": "the CUDA compiler nvcc on PATH (compiles .cu sources, also without a GPU)",
    "cpp_ext": "a C++ compiler and ninja for torch.utils.cpp_extension (pip install 'torchdrills[cpp]')",
    "multiproc": "torch.distributed with the gloo backend (several processes on this machine)",
    "nccl": "torch.distributed with NCCL and at least one CUDA GPU",
    "tensorrt": "NVIDIA TensorRT with torch_tensorrt (pip install 'torchdrills[gpu]' torch-tensorrt; the TensorRT "
    "libraries come from NVIDIA's index) and a CUDA GPU",
    "executorch": "ExecuTorch's exporter and runtime (pip install 'torchdrills[export]'; Linux x86_64 wheels)",
    "onnxruntime": "onnx + onnxruntime + onnxscript (pip install 'torchdrills[export]')",
    "torchao": "torchao's PT2E quantization and QAT (pip install 'torchdrills[export]')",
    "fastapi": "fastapi + uvicorn + httpx (pip install 'torchdrills[serve]')",
    "flask": "flask (pip install 'torchdrills[serve]')",
    "gymnasium": "gymnasium's classic-control environments (pip install 'torchdrills[rl]')",
    "tensorboard": "tensorboard's event writer and reader (pip install 'torchdrills[data]')",
    "nvml": "NVIDIA's management library through nvidia-ml-py, with a driver present",
    "bf16": "bfloat16 matmul support on the current device",
}


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _nvml_ok() -> bool:
    if not _has_module("pynvml"):
        return False
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:  # NVMLError_LibraryNotFound and friends: no driver here
        return False


def _executorch_ok() -> bool:
    # importing executorch.runtime pulls in its compiler stack (seconds): look for the
    # runtime's compiled extension on disk instead
    spec = importlib.util.find_spec("executorch") if _has_module("executorch") else None
    roots = list(spec.submodule_search_locations or []) if spec else []
    libs = ("_C*.so", "_portable_lib*.so")  # the extension's name in executorch 1.x and 0.x
    return any(any((Path(r) / "extension" / "pybindings").glob(p)) for r in roots for p in libs)


@functools.lru_cache(maxsize=1)
def detect() -> dict[str, bool]:
    """Return ``{capability: available}`` for every name in :data:`DESCRIPTIONS`.

    Cached: detection runs once per process.
    """
    cuda = torch.cuda.is_available()
    triton = _has_module("triton")
    caps = {
        "cuda": cuda,
        "triton": triton,
        "triton_gpu": cuda and triton,
        "nvcc": shutil.which("nvcc") is not None,
        "cpp_ext": (shutil.which("c++") or shutil.which("g++")) is not None and _has_module("ninja"),
        "multiproc": torch.distributed.is_available() and torch.distributed.is_gloo_available(),
        "nccl": cuda and torch.distributed.is_available() and torch.distributed.is_nccl_available(),
        "tensorrt": cuda and _has_module("tensorrt") and _has_module("torch_tensorrt"),
        "executorch": _executorch_ok(),
        "onnxruntime": all(_has_module(m) for m in ("onnx", "onnxruntime", "onnxscript")),
        "torchao": _has_module("torchao"),
        "fastapi": all(_has_module(m) for m in ("fastapi", "uvicorn", "httpx")),
        "flask": _has_module("flask"),
        "gymnasium": _has_module("gymnasium"),
        "tensorboard": _has_module("tensorboard"),
        "nvml": _nvml_ok(),
        "bf16": True,  # CPU matmul supports bf16 on every torch >= 2.0; refined below for CUDA
    }
    if cuda:
        caps["bf16"] = torch.cuda.is_bf16_supported()
    return caps


def missing(requires: tuple[str, ...] | list[str]) -> list[str]:
    """Names in ``requires`` that this process lacks.

    Raises:
        ValueError: for a name that is not a known capability (a typo in a task).
    """
    caps = detect()
    unknown = [r for r in requires if r not in caps]
    if unknown:
        raise ValueError(f"unknown capability {unknown}; known: {sorted(caps)} (harness/capabilities.py)")
    return [r for r in requires if not caps[r]]


def skip_reason(names: list[str]) -> str:
    """A skip reason that names each missing capability, e.g. ``needs cuda``."""
    return "needs " + ", ".join(names)


def setup_triton_interpreter() -> None:
    """Use Triton's interpreter when there is no GPU.

    Triton reads ``TRITON_INTERPRET`` when it is first imported, so this must run
    before anything imports triton; harness/__init__.py calls it. A user who set the
    variable keeps their value.
    """
    if "triton" in sys.modules:
        return
    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
