"""nvcc compile checks of kernels/cuda/*.cu for sm_90 (no GPU needed) and the ptxas parser.

Skipped with "needs nvcc" only where the CUDA toolkit is absent. The two real sources compile in
parallel once per session (about 5 s and 2.5 s on 2 idle cores).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kernels import cuda
from kernels.cuda import nvcc

pytestmark = pytest.mark.skipif(nvcc.find_nvcc() is None, reason="needs nvcc")

DTYPES = ("float", "double", "__half", "__nv_bfloat16")


@pytest.fixture(scope="session")
def reports() -> dict[str, nvcc.CompileReport]:
    with ThreadPoolExecutor(max_workers=len(cuda.KERNEL_SOURCES)) as pool:
        done = pool.map(lambda s: cuda.compile_check(s, arch="sm_90"), cuda.KERNEL_SOURCES)
        return {r.source.name: r for r in done}


def check_report(report: nvcc.CompileReport) -> None:
    """What the task demands of a compile: success, kernels found, real register counts."""
    assert report.success, report.log[-2000:]
    assert report.kernels, f"no kernels parsed from {report.source.name}"
    for k in report.kernels:
        assert k.arch == "sm_90"
        assert k.registers > 0, f"{k.short_name}: registers not parsed"


@pytest.mark.parametrize("name", ["layernorm_dropout.cu", "reduction.cu"])
def test_source_compiles_and_reports_registers(reports, name):
    check_report(reports[name])


def test_every_kernel_instantiation_is_present(reports):
    ln = {k.short_name for k in reports["layernorm_dropout.cu"].kernels}
    red = {k.short_name for k in reports["reduction.cu"].kernels}
    assert "philox_uniform_kernel" in ln
    for t in DTYPES:
        acc = "double" if t == "double" else "float"
        vec = {"float": 4, "double": 2, "__half": 8, "__nv_bfloat16": 8}[t]
        for v in (1, vec):
            assert f"layer_norm_dropout_forward_kernel<{t}, {acc}, {v}>" in ln
            assert f"layer_norm_dropout_backward_dx_kernel<{t}, {acc}, {v}>" in ln
            assert f"sum_lastdim_kernel<{t}, {acc}, {v}>" in red
            assert f"sum_partials_kernel<{t}, {acc}, {acc}, {v}>" in red  # stage 1
        assert f"layer_norm_dropout_backward_gamma_beta_kernel<{t}, {acc}>" in ln
        assert f"sum_gamma_beta_partials_kernel<{t}, {acc}>" in ln
        assert f"sum_partials_kernel<{acc}, {t}, {acc}, 1>" in red  # stage 2


def test_static_shared_memory_matches_the_source(reports):
    """smem parsed from ptxas equals what the __shared__ declarations add up to."""
    ln, red = reports["layernorm_dropout.cu"], reports["reduction.cu"]
    # Welford<acc_t> (3 acc_t) per warp slot, 32 slots.
    assert ln.kernel("layer_norm_dropout_forward_kernel<float, float, 4>").shared_bytes == 32 * 12
    assert ln.kernel("layer_norm_dropout_forward_kernel<double, double, 2>").shared_bytes == 32 * 24
    # two sums per warp slot.
    assert ln.kernel("layer_norm_dropout_backward_dx_kernel<float, float, 4>").shared_bytes == 2 * 32 * 4
    # two 16 x (32 + 1) tiles.
    assert ln.kernel("layer_norm_dropout_backward_gamma_beta_kernel<float").shared_bytes == 2 * 16 * 33 * 4
    assert red.kernel("sum_partials_kernel<float, float, float, 4>").shared_bytes == 32 * 4
    assert red.kernel("sum_lastdim_kernel<float, float, 4>").shared_bytes == 0  # shuffles only


def test_no_register_spills_or_stack(reports):
    for r in reports.values():
        for k in r.kernels:
            assert (k.spill_store_bytes, k.spill_load_bytes, k.stack_frame_bytes) == (0, 0, 0), k


def test_kernels_that_sync_use_a_barrier(reports):
    assert reports["reduction.cu"].kernel("sum_partials_kernel<float, float, float, 4>").barriers == 1
    assert reports["reduction.cu"].kernel("sum_lastdim_kernel<float, float, 4>").barriers == 0


def test_report_table_lists_every_kernel(reports):
    r = reports["reduction.cu"]
    assert len(r.table().splitlines()) == 2 + len(r.kernels)


# ---- real nvcc on small sources: failures, stack frames ------------------------------------


def test_stack_frame_and_include_paths_parsed_from_real_output(tmp_path: Path):
    """A local array indexed at run time lives in local memory: ptxas reports a stack frame.
    The c10 include checks that the torch include folders are on nvcc's path."""
    src = tmp_path / "local_array.cu"
    src.write_text(
        "#include <c10/macros/Macros.h>\n"
        "__global__ void local_array(float* out, int i) {\n"
        "  float a[64];\n"
        "  for (int k = 0; k < 64; ++k) a[k] = out[k];\n"
        "  for (int k = 0; k < 64; ++k) a[(k * 7 + i) & 63] += a[k];  // run-time indices\n"
        "  out[0] = a[i & 63];\n"
        "}\n"
    )
    report = cuda.compile_check(src)
    check_report(report)
    assert report.kernel("local_array").stack_frame_bytes >= 64 * 4


def test_broken_source_reports_failure(tmp_path: Path):
    src = tmp_path / "broken.cu"
    src.write_text("__global__ void broken(float* x) { x[0] = undeclared_name; }\n")
    report = cuda.compile_check(src)
    assert not report.success and report.returncode != 0
    assert "undeclared_name" in report.log
    with pytest.raises(RuntimeError, match="nvcc failed"):
        report.raise_for_status()
    with pytest.raises(AssertionError):
        check_report(report)


def test_missing_nvcc_raises_clear_error(monkeypatch):
    monkeypatch.setattr(nvcc, "find_nvcc", lambda: None)
    with pytest.raises(nvcc.NvccNotFoundError, match="install the CUDA toolkit"):
        cuda.compile_check(cuda.KERNEL_SOURCES[0])


def test_find_nvcc_prefers_cuda_home(monkeypatch, tmp_path: Path):
    fake = tmp_path / "bin" / "nvcc"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    assert nvcc.find_nvcc() == fake


def test_bad_arguments():
    with pytest.raises(ValueError, match="sm_90"):
        cuda.compile_check(cuda.KERNEL_SOURCES[0], arch="hopper")
    with pytest.raises(FileNotFoundError):
        cuda.compile_check("does/not/exist.cu")


# ---- parser on canned ptxas output ----------------------------------------------------------

CANNED = """\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_Z6spillyPfi' for 'sm_90'
ptxas info    : Function properties for _Z6spillyPfi
    96 bytes stack frame, 40 bytes spill stores, 44 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 1024 bytes smem, 380 bytes cmem[0], 8 bytes cmem[2]
ptxas info    : Function properties for _Z6helperv
    16 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Compiling entry function '_Z5tinyPf' for 'sm_80'
ptxas info    : Function properties for _Z5tinyPf
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 8 registers, 360 bytes cmem[0]
"""


def test_parse_canned_log():
    spilly, tiny = nvcc.parse_ptxas(CANNED)
    assert (spilly.registers, spilly.shared_bytes, spilly.constant_bytes, spilly.barriers) == (255, 1024, 380, 1)
    assert (spilly.stack_frame_bytes, spilly.spill_store_bytes, spilly.spill_load_bytes) == (96, 40, 44)
    assert spilly.short_name == "spilly" and spilly.arch == "sm_90"
    assert (tiny.registers, tiny.shared_bytes, tiny.barriers, tiny.arch) == (8, 0, 0, "sm_80")


def test_planted_truncated_log_fails_the_check():
    """A log cut before the "Used ... registers" line leaves registers at 0: caught."""
    truncated = CANNED.split("ptxas info    : Used 255")[0]
    report = nvcc.CompileReport(
        source=Path("x.cu"),
        arch="sm_90",
        success=True,
        returncode=0,
        command=(),
        seconds=0.0,
        kernels=nvcc.parse_ptxas(truncated),
        log=truncated,
    )
    with pytest.raises(AssertionError, match="registers not parsed"):
        check_report(report)


def test_short_name_strips_namespaces_and_parameters():
    k = nvcc.KernelResources(
        name="void td::cuda::(anonymous namespace)::k<float, td::X<2>, 4>(float const*, int (*)[3])",
        mangled="_Z1k",
        arch="sm_90",
        registers=1,
    )
    assert k.short_name == "k<float, td::X<2>, 4>"
