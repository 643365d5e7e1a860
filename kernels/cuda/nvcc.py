"""Compile a CUDA source with nvcc and read each kernel's resource usage from ptxas.

Works without a GPU: ``nvcc -c`` only needs the toolkit. ``-Xptxas -v`` makes ptxas print, per
``__global__`` function and architecture, the lines this module parses::

    ptxas info    : Compiling entry function '_Z...' for 'sm_90'
    ptxas info    : Function properties for _Z...
        0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
    ptxas info    : Used 32 registers, used 1 barriers, 384 bytes smem, 380 bytes cmem[0]

Why these numbers matter on sm_90 (CUDA C++ Programming Guide, compute capability 9.0):
65536 32-bit registers and 2048 threads per SM, so a kernel using more than 32 registers per
thread cannot keep 2048 threads resident (at 64 registers: 1024); at most 228 KiB shared memory
per SM (227 KiB per block, 48 KiB static); any spill store/load goes to local memory (L1/L2 or
HBM) and usually means the register cap of __launch_bounds__ or the code's live state is too
high; a stack frame appears with spills, recursion, or arrays indexed at run time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "NvccNotFoundError",
    "KernelResources",
    "CompileReport",
    "find_nvcc",
    "nvcc_flags",
    "compile_check",
    "parse_ptxas",
]

_ARCH_RE = re.compile(r"^sm_\d{2,3}[a-z]?$")
_ENTRY_RE = re.compile(r"Compiling entry function '(?P<name>[^']+)' for '(?P<arch>[^']+)'")
_PROPS_RE = re.compile(r"Function properties for (?P<name>\S+)")
_STACK_RE = re.compile(
    r"(?P<stack>\d+) bytes stack frame, (?P<st>\d+) bytes spill stores, (?P<ld>\d+) bytes spill loads"
)
_USED_RE = re.compile(r"Used (?P<regs>\d+) registers")
_BARRIERS_RE = re.compile(r"used (?P<n>\d+) barriers")
_SMEM_RE = re.compile(r"(?P<n>\d+) bytes smem")
_CMEM_RE = re.compile(r"(?P<n>\d+) bytes cmem\[(?P<bank>\d+)\]")


class NvccNotFoundError(RuntimeError):
    """nvcc (the CUDA toolkit's compiler driver) is not installed or not on PATH."""


@dataclass(frozen=True)
class KernelResources:
    """What ptxas reports for one ``__global__`` function on one architecture."""

    name: str
    """Demangled signature (``c++filt``), or the mangled name when c++filt is absent."""
    mangled: str
    """Mangled symbol as ptxas prints it."""
    arch: str
    """Target, e.g. ``sm_90``."""
    registers: int
    """32-bit registers per thread."""
    shared_bytes: int = 0
    """Static shared memory per block, bytes (``smem``; dynamic shared memory is not included)."""
    stack_frame_bytes: int = 0
    """Per-thread stack frame in local memory, bytes."""
    spill_store_bytes: int = 0
    """Bytes of register spill stores per thread (to local memory)."""
    spill_load_bytes: int = 0
    """Bytes of register spill loads per thread."""
    barriers: int = 0
    """Named barriers used (``__syncthreads`` uses barrier 0: 1 when the kernel syncs)."""
    constant_bytes: int = 0
    """Constant bank 0 bytes (``cmem[0]``: kernel parameters and driver data), when printed."""

    @property
    def short_name(self) -> str:
        """Function name with template arguments, without namespaces, return type or parameters.

        ``void td::cuda::(anonymous namespace)::k<float, 4>(float const*)`` -> ``k<float, 4>``.
        """
        text = self.name.replace("(anonymous namespace)::", "")
        if text.startswith("void "):
            text = text[len("void ") :]
        depth, cut = 0, len(text)
        for i, ch in enumerate(text):  # parameter list = first '(' outside template brackets
            if ch == "<":
                depth += 1
            elif ch == ">":
                depth -= 1
            elif ch == "(" and depth == 0:
                cut = i
                break
        text = text[:cut]
        depth, start = 0, 0
        for i, ch in enumerate(text):  # drop namespaces: last '::' outside template brackets
            if ch == "<":
                depth += 1
            elif ch == ">":
                depth -= 1
            elif ch == ":" and depth == 0 and text[i : i + 2] == "::":
                start = i + 2
        return text[start:]


@dataclass(frozen=True)
class CompileReport:
    """Result of :func:`compile_check`: success, per-kernel resources, the full log."""

    source: Path
    arch: str
    success: bool
    """True when nvcc exited with status 0."""
    returncode: int
    command: tuple[str, ...]
    seconds: float
    """Wall time of the nvcc run."""
    kernels: tuple[KernelResources, ...] = field(default_factory=tuple)
    log: str = ""
    """nvcc's stdout and stderr: ptxas lines, warnings, errors."""

    def kernel(self, pattern: str) -> KernelResources:
        """The first kernel whose short name contains ``pattern``.

        Raises KeyError listing the kernel names when none matches.
        """
        for k in self.kernels:
            if pattern in k.short_name:
                return k
        names = ", ".join(sorted({k.short_name for k in self.kernels})) or "none"
        raise KeyError(f"no kernel matching {pattern!r} in {self.source.name}; kernels: {names}")

    def table(self) -> str:
        """Plain-text table: one row per kernel, columns regs, smem, stack, spill st/ld."""
        head = f"{'kernel':<72} {'regs':>4} {'smem B':>7} {'stack B':>7} {'spill st/ld B':>13}"
        rows = [head, "-" * len(head)]
        for k in sorted(self.kernels, key=lambda k: k.short_name):
            rows.append(
                f"{k.short_name[:72]:<72} {k.registers:>4} {k.shared_bytes:>7} "
                f"{k.stack_frame_bytes:>7} {k.spill_store_bytes:>6}/{k.spill_load_bytes:<6}"
            )
        return "\n".join(rows)

    def raise_for_status(self) -> CompileReport:
        """Return self when the compile succeeded, else raise RuntimeError with the log tail."""
        if not self.success:
            tail = "\n".join(self.log.splitlines()[-40:])
            raise RuntimeError(f"nvcc failed on {self.source} (exit {self.returncode}):\n{tail}")
        return self


def find_nvcc() -> Path | None:
    """Path of nvcc: ``$CUDA_HOME/bin``, ``$CUDA_PATH/bin``, PATH, then /usr/local/cuda/bin."""
    for env in ("CUDA_HOME", "CUDA_PATH"):
        root = os.environ.get(env)
        if root and (Path(root) / "bin" / "nvcc").is_file():
            return Path(root) / "bin" / "nvcc"
    found = shutil.which("nvcc")
    if found:
        return Path(found)
    default = Path("/usr/local/cuda/bin/nvcc")
    return default if default.is_file() else None


def _require_nvcc() -> Path:
    nvcc = find_nvcc()
    if nvcc is None:
        raise NvccNotFoundError(
            "nvcc not found (looked in $CUDA_HOME/bin, $CUDA_PATH/bin, PATH, /usr/local/cuda/bin); "
            "install the CUDA toolkit or set CUDA_HOME to its root"
        )
    return nvcc


def nvcc_flags(arch: str = "sm_90", include_dirs: tuple[str | Path, ...] = ()) -> list[str]:
    """The flags compile_check passes to nvcc (without source/output), torch's where it matters.

    ``-std=c++20`` (torch >= 2.10 headers need it), ``-O3``, ``-arch=<arch>`` (PTX + SASS for
    that target), ``-Xptxas -v``, torch's COMMON_NVCC_FLAGS (no implicit half conversions,
    relaxed constexpr), no ``--use_fast_math`` (the Philox uniform float must be exact), and the
    torch include folders so sources that include ATen/c10 headers compile too. The CPU wheel of
    torch lacks the generated ``c10/cuda/impl/cuda_cmake_macros.h``; when it is absent,
    ``-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE`` skips that include (it only sets an export macro).
    """
    from torch.utils import cpp_extension

    if not _ARCH_RE.match(arch):
        raise ValueError(f"arch must look like 'sm_90' or 'sm_90a', got {arch!r}")
    torch_includes = cpp_extension.include_paths()  # CPU variant: needs no CUDA_HOME
    flags = ["-std=c++20", "-O3", f"-arch={arch}", "-Xptxas", "-v", "-Xcompiler", "-fPIC"]
    flags += list(cpp_extension.COMMON_NVCC_FLAGS)
    if not any((Path(d) / "c10/cuda/impl/cuda_cmake_macros.h").is_file() for d in torch_includes):
        flags.append("-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE")
    for d in (*include_dirs, *torch_includes):
        flags += ["-I", str(d)]
    return flags


def _demangle(names: list[str]) -> dict[str, str]:
    """Mangled -> demangled through c++filt (binutils), identity when it is absent."""
    tool = shutil.which("c++filt") or shutil.which("cu++filt")
    if not tool or not names:
        return {n: n for n in names}
    out = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True, check=False)
    lines = out.stdout.splitlines()
    if out.returncode != 0 or len(lines) != len(names):
        return {n: n for n in names}
    return dict(zip(names, lines))


def parse_ptxas(log: str) -> tuple[KernelResources, ...]:
    """Kernels and their resources from ``-Xptxas -v`` output (one entry per kernel and arch).

    Device functions that ptxas reports without a "Compiling entry function" line are skipped.
    """
    entries: list[dict] = []
    props: dict[str, tuple[int, int, int]] = {}
    current: dict | None = None
    pending_props: str | None = None
    for line in log.splitlines():
        if m := _ENTRY_RE.search(line):
            current = {"mangled": m["name"], "arch": m["arch"]}
            entries.append(current)
            continue
        if m := _PROPS_RE.search(line):
            pending_props = m["name"]
            continue
        if (m := _STACK_RE.search(line)) and pending_props is not None:
            props[pending_props] = (int(m["stack"]), int(m["st"]), int(m["ld"]))
            pending_props = None
            continue
        if (m := _USED_RE.search(line)) and current is not None:
            current["registers"] = int(m["regs"])
            if b := _BARRIERS_RE.search(line):
                current["barriers"] = int(b["n"])
            if s := _SMEM_RE.search(line):
                current["shared_bytes"] = int(s["n"])
            for c in _CMEM_RE.finditer(line):
                if c["bank"] == "0":
                    current["constant_bytes"] = int(c["n"])
            current = None  # the "Used" line closes an entry
    names = _demangle(sorted({e["mangled"] for e in entries}))
    kernels = []
    for e in entries:
        stack, st, ld = props.get(e["mangled"], (0, 0, 0))
        kernels.append(
            KernelResources(
                name=names[e["mangled"]],
                mangled=e["mangled"],
                arch=e["arch"],
                registers=e.get("registers", 0),
                shared_bytes=e.get("shared_bytes", 0),
                stack_frame_bytes=stack,
                spill_store_bytes=st,
                spill_load_bytes=ld,
                barriers=e.get("barriers", 0),
                constant_bytes=e.get("constant_bytes", 0),
            )
        )
    return tuple(kernels)


def compile_check(
    source: str | Path,
    arch: str = "sm_90",
    *,
    extra_flags: tuple[str, ...] = (),
    timeout_s: float = 600.0,
) -> CompileReport:
    """Compile ``source`` with ``nvcc -c -arch=<arch> -Xptxas -v`` and parse ptxas' report.

    Args:
        source: a .cu file. Its folder is on the include path (quoted includes work).
        arch: target such as ``sm_90`` (H100/H200), ``sm_80`` (A100), ``sm_90a``.
        extra_flags: appended to :func:`nvcc_flags` (e.g. ``("-DFOO=1",)``).
        timeout_s: wall-clock limit of the nvcc run.

    Returns:
        A :class:`CompileReport`; ``success`` is False (not an exception) when the source does
        not compile, with the errors in ``log``; ``raise_for_status()`` turns that into one.
        The object file goes to a temporary folder and is deleted.

    Raises:
        NvccNotFoundError: no nvcc on this machine.
        FileNotFoundError: ``source`` does not exist.
        ValueError: malformed ``arch``.
        TimeoutError: nvcc ran longer than ``timeout_s``.
    """
    src = Path(source).resolve()
    if not src.is_file():
        raise FileNotFoundError(f"CUDA source not found: {src}")
    nvcc = _require_nvcc()
    flags = nvcc_flags(arch, include_dirs=(src.parent,)) + list(extra_flags)
    with tempfile.TemporaryDirectory(prefix="td_nvcc_") as tmp:
        cmd = [str(nvcc), "-c", str(src), "-o", str(Path(tmp) / (src.stem + ".o")), *flags]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TimeoutError(f"nvcc on {src.name} ran past {timeout_s:.0f} s") from exc
        seconds = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    return CompileReport(
        source=src,
        arch=arch,
        success=proc.returncode == 0,
        returncode=proc.returncode,
        command=tuple(cmd),
        seconds=seconds,
        kernels=parse_ptxas(log),
        log=log,
    )
