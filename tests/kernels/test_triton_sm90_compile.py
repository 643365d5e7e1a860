"""Compile every Triton kernel for an H100/H200 (sm_90) without a GPU.

The interpreter checks what the kernels compute; it cannot see what the GPU compiler
makes of them.  Triton compiles ahead of time for any target with its bundled ptxas,
so this test builds each kernel at a representative configuration for
``GPUTarget("cuda", 90, 32)`` with the specialization a real launch gets (16-byte
aligned pointers, sizes and strides divisible by 16, unit strides as constants) and
checks what matters for speed: the fp16 matmul uses Hopper's wgmma with the full
software pipeline in shared memory, the bandwidth-bound kernels issue 16-byte vector
loads, and no kernel spills registers (cuobjdump's STACK is 0).

It runs this file as a script in a subprocess, because the test process imported
triton with TRITON_INTERPRET=1 and Triton reads that once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

triton = pytest.importorskip("triton")

_BIN = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
_ROOT = Path(__file__).resolve().parents[2]


def _compile_all() -> list[dict]:
    """Compile the kernels for sm_90 (no interpreter in this process); one record each."""
    import importlib
    import tempfile

    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    common = importlib.import_module("kernels.triton._common")
    assert not common.INTERPRETER, "run without TRITON_INTERPRET"
    mm = importlib.import_module("kernels.triton.matmul")
    ln = importlib.import_module("kernels.triton.layernorm_dropout")
    red = importlib.import_module("kernels.triton.reduction")
    sm = importlib.import_module("kernels.triton.softmax")

    div16 = {"M", "N", "K", "chunk"}
    records = []

    def build(label, fn, sig, consts, num_warps, num_stages=3, aligned=True):
        full = {name: ("constexpr" if name in consts else sig[name]) for name in fn.arg_names}
        attrs = {
            (i,): [["tt.divisibility", 16]]
            for i, name in enumerate(fn.arg_names)
            if aligned
            and name not in consts
            and (full[name].startswith("*") or name in div16 or name.startswith("stride"))
        }
        k = triton.compile(
            ASTSource(fn, full, consts, attrs=attrs),
            target=GPUTarget("cuda", 90, 32),
            options={"num_warps": num_warps, "num_stages": num_stages},
        )
        with tempfile.NamedTemporaryFile("wb", suffix=".cubin", delete=False) as f:
            f.write(k.asm["cubin"])
        usage = subprocess.run([str(_BIN / "cuobjdump"), "-res-usage", f.name], capture_output=True, text=True).stdout
        os.unlink(f.name)
        fields = dict(tok.split(":") for line in usage.splitlines() if "REG:" in line for tok in line.split())
        records.append(
            {
                "label": label,
                "regs": int(fields["REG"]),
                "stack": int(fields["STACK"]),
                "shared": k.metadata.shared,
                "wgmma": "wgmma" in k.asm["ptx"],
                "v4_loads": k.asm["ptx"].count("ld.global.v4"),
            }
        )

    i32 = "i32"
    mm_sig = {n: i32 for n in mm._matmul_kernel.arg_names}
    for dt in ("fp16",):  # bf16 takes the same wgmma path; one half type keeps this fast
        c = mm.MATMUL_CONFIGS["h_128x256x64_s3"]
        consts = dict(
            INPUT_PRECISION="ieee",
            DOT_IN_FP32=False,
            BLOCK_M=c.block_m,
            BLOCK_N=c.block_n,
            BLOCK_K=c.block_k,
            GROUP_M=c.group_m,
            stride_ak=1,
            stride_bn=1,
            stride_cn=1,
        )
        sig = dict(mm_sig, a_ptr="*" + dt, b_ptr="*" + dt, c_ptr="*" + dt)
        build(f"matmul-{dt}-128x256x64", mm._matmul_kernel, sig, consts, c.num_warps, c.num_stages)
    c = mm.MATMUL_CONFIGS["h_64x128x32_s4"]
    consts = dict(
        INPUT_PRECISION="tf32",
        DOT_IN_FP32=False,
        BLOCK_M=c.block_m,
        BLOCK_N=c.block_n,
        BLOCK_K=c.block_k,
        GROUP_M=c.group_m,
        stride_ak=1,
        stride_bn=1,
        stride_cn=1,
    )
    build(
        "matmul-fp32-tf32-64x128x32",
        mm._matmul_kernel,
        dict(mm_sig, a_ptr="*fp32", b_ptr="*fp32", c_ptr="*fp32"),
        consts,
        c.num_warps,
        c.num_stages,
    )

    block_m, block_n, warps = common.row_tile(4096)
    sig = dict(
        X="*fp16",
        Y="*fp16",
        W="*fp16",
        B="*fp16",
        MEAN="*fp32",
        RSTD="*fp32",
        M=i32,
        N=i32,
        stride_xm=i32,
        stride_ym=i32,
        eps="fp32",
        p="fp32",
        scale="fp32",
        seed="i32",
    )
    consts = dict(HAS_DROPOUT=True, ACC=tl.float32, BLOCK_M=block_m, BLOCK_N=block_n)
    build("ln-dropout-fwd-N4096", ln._ln_dropout_fwd_kernel, sig, consts, warps)
    sig = dict(
        X="*fp16",
        DY="*fp16",
        DX="*fp16",
        W="*fp16",
        MEAN="*fp32",
        RSTD="*fp32",
        DW_PART="*fp32",
        DB_PART="*fp32",
        M=i32,
        N=i32,
        stride_xm=i32,
        stride_dym=i32,
        stride_dxm=i32,
        p="fp32",
        scale="fp32",
        seed="i32",
    )
    build("ln-dropout-bwd-N4096", ln._ln_dropout_bwd_kernel, sig, consts, warps)
    build(
        "ln-dwdb",
        ln._ln_dwdb_kernel,
        dict(DW_PART="*fp32", DB_PART="*fp32", DW="*fp16", DB="*fp16", P=i32, N=i32),
        dict(BLOCK_P=32, BLOCK_N=128),
        4,
    )

    sig = dict(X="*bf16", OUT="*fp32", M=i32, N=i32, stride_xm=i32, stride_xn=i32, stride_om=i32, chunk=i32)
    build("sum-rows-1x4096", red._sum_rows_kernel, sig, dict(BLOCK_M=1, BLOCK_N=4096, stride_xn=1), 8)
    # planted: the checks below must see these two fail (no alignment -> scalar loads;
    # a 16k row in the backward -> spills)
    build(
        "planted-sum-unaligned", red._sum_rows_kernel, sig, dict(BLOCK_M=1, BLOCK_N=4096, stride_xn=1), 8, aligned=False
    )
    block_m, block_n, warps = common.row_tile(16384)
    build(
        "planted-ln-dropout-bwd-N16384",
        ln._ln_dropout_bwd_kernel,
        dict(
            X="*fp16",
            DY="*fp16",
            DX="*fp16",
            W="*fp16",
            MEAN="*fp32",
            RSTD="*fp32",
            DW_PART="*fp32",
            DB_PART="*fp32",
            M=i32,
            N=i32,
            stride_xm=i32,
            stride_dym=i32,
            stride_dxm=i32,
            p="fp32",
            scale="fp32",
            seed="i32",
        ),
        dict(HAS_DROPOUT=True, ACC=tl.float32, BLOCK_M=block_m, BLOCK_N=block_n),
        warps,
    )

    block_m, block_n, warps = common.row_tile(1000)
    build(
        "softmax-fwd-N1000",
        sm._softmax_fwd_kernel,
        dict(X="*fp16", Y="*fp16", M=i32, N=i32, stride_xm=i32, stride_ym=i32),
        dict(BLOCK_M=block_m, BLOCK_N=block_n),
        warps,
    )
    build(
        "softmax-bwd-N1000",
        sm._softmax_bwd_kernel,
        dict(Y="*fp16", DY="*fp16", DX="*fp16", M=i32, N=i32, stride_ym=i32, stride_dym=i32, stride_dxm=i32),
        dict(BLOCK_M=block_m, BLOCK_N=block_n),
        warps,
    )
    return records


@pytest.fixture(scope="module")
def records():
    if not (_BIN / "ptxas").exists() or not (_BIN / "cuobjdump").exists():
        pytest.skip("triton's NVIDIA backend (ptxas, cuobjdump) is not installed")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's default; silences its warning
    env["PYTHONPATH"] = os.pathsep.join([str(_ROOT), env.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, __file__], capture_output=True, text=True, env=env, cwd=_ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return {rec["label"]: rec for rec in json.loads(r.stdout.strip().splitlines()[-1])}


def _real(records):
    return {label: rec for label, rec in records.items() if not label.startswith("planted")}


def test_all_kernels_compile_for_sm90(records):
    assert sorted(_real(records)) == sorted(
        [
            "matmul-fp16-128x256x64",
            "matmul-fp32-tf32-64x128x32",
            "ln-dropout-fwd-N4096",
            "ln-dropout-bwd-N4096",
            "ln-dwdb",
            "sum-rows-1x4096",
            "softmax-fwd-N1000",
            "softmax-bwd-N1000",
        ]
    )


def test_matmul_uses_wgmma_and_the_full_pipeline(records):
    rec = records["matmul-fp16-128x256x64"]
    assert rec["wgmma"], rec
    # 3 stages of (128 + 256) x 64 fp16 tiles: the loads are software-pipelined
    assert rec["shared"] >= 3 * (128 + 256) * 64 * 2, rec
    assert records["matmul-fp32-tf32-64x128x32"]["wgmma"]


def test_bandwidth_bound_kernels_load_16_bytes_at_a_time(records):
    # ld.global.v4.b32: one 16-byte load a thread, what saturates HBM; a lost
    # contiguity/alignment hint would silently fall back to 4-byte loads
    scalar = {
        label: rec for label, rec in _real(records).items() if not label.startswith("matmul") and not rec["v4_loads"]
    }
    assert not scalar, scalar
    assert records["planted-sum-unaligned"]["v4_loads"] == 0  # the check can fail


def test_no_register_spills(records):
    spilled = {label: rec for label, rec in _real(records).items() if rec["stack"]}
    assert not spilled, spilled
    assert records["planted-ln-dropout-bwd-N16384"]["stack"] > 0  # the check can fail (known limit)


if __name__ == "__main__":
    print(json.dumps(_compile_all()))
