"""Run records for the report tests, written in the run-record schema (harness.results).

``report_case`` (conftest.py) writes a main run holding every kind of content a task
can record, two earlier runs of the same machine (the history; the newest run's
``loop`` is slower), a run of another machine and a truncated file in the history
folder. ``EXPECTED_FIGURES`` counts the charts the page must draw for it, one term
per chart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.results import RECORD_KIND, SCHEMA_VERSION, atomic_write_json

MACHINE = "test-cpu-2c"
PEAK = {"matmul_gflops": 100.0, "copy_gbps": 20.0, "device": "cpu"}
XSS = "<script>alert('x')</script> & <b>bold</b>"
MATMUL = "fundamentals.manual_matmul"  # registered: its lesson comes from the registry

EXPECTED_FIGURES = (
    1  # summary: tasks by area and status
    + 3  # manual_matmul: implementations, scaling over 3 configs, % of peak
    + 1  # nn_basics.fake_train: implementations (one config: no scaling; no flops: no % of peak)
    + 2  # nn_basics.fake_train: curves "loss" (train + val series) and "accuracy"
    + 1  # fundamentals.cpu_vs_gpu_speed: implementations (one config)
    + 0  # research.all_nan: an all-None curve gives a sentence, not a chart
    + 1  # cnn.pictures: one heatmap (the two PNG images are <img>, not charts)
    + 1  # history: manual_matmul is in all three runs of the machine
)
#: The machine line a claim shows: machine_id (CPU model).
MACHINE_LABEL = "test-cpu-2c (Test CPU <v2>)"


def fingerprint(machine: str = MACHINE, commit: str = "abcdef12", dirty: bool = False) -> dict[str, Any]:
    return {
        "cpu_model": "Test CPU <v2>",
        "cpu_cores": 2,
        "cpu_affinity": 2,
        "torch_threads": 2,
        "ram_gib": 8.0,
        "python": "3.11.7",
        "torch": "2.13.0+cpu",
        "cuda": None,
        "triton": "3.9.0",
        "gpus": [],
        "git": {"commit": commit * 5, "short": commit, "dirty": dirty},
        "machine_id": machine,
    }


def meas(
    impl: str,
    config: str,
    median: float | None,
    *,
    iqr: float = 0.01,
    flops: float | None = None,
    nbytes: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A measurement row as Context.measure writes it (median/IQR in ms, derived rates)."""
    row: dict[str, Any] = {
        "impl": impl,
        "config": config,
        "dtype": "float32",
        "median_ms": median,
        "iqr_ms": None if median is None else iqr * median,
        "min_ms": median,
        "n_samples": 5,
        "number_per_sample": 10,
        "mode": "cpu",
        "noisy": iqr > 0.1,
        "samples_ms": [median] * 5,
    }
    if flops and median:
        row["gflops"] = flops / (median / 1e3) / 1e9
        row["pct_peak_flops"] = 100 * row["gflops"] / PEAK["matmul_gflops"]
    if nbytes and median:
        row["gbps"] = nbytes / (median / 1e3) / 1e9
        row["pct_peak_bw"] = 100 * row["gbps"] / PEAK["copy_gbps"]
    row.update(extra)
    return row


def png_b64(pixels: list[list[Any]]) -> str:
    """A PNG (8-bit grey for int pixels, RGB for (r, g, b) tuples) as base64 text, written by hand.

    PNG layout (ISO/IEC 15948): signature, IHDR, one zlib-compressed IDAT of rows each
    preceded by filter byte 0, IEND; every chunk carries a CRC-32 of its type and data.
    """
    import base64
    import struct
    import zlib

    h, w = len(pixels), len(pixels[0])
    rgb = isinstance(pixels[0][0], tuple)
    raw = b"".join(
        b"\x00" + bytes(c for px in row for c in (px if rgb else (px,))) for row in pixels
    )  # (H, 1 + W*C) bytes

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2 if rgb else 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


def digit_png() -> dict[str, Any]:
    """An 8x8 grey picture (a ring, like a zero of scikit-learn's digits)."""
    px = [[255 if 2 <= abs(r - 3.5) + abs(c - 3.5) <= 4 else 0 for c in range(8)] for r in range(8)]
    return {
        "name": "digit",
        "caption": "an 8x8 zero " + XSS,
        "kind": "image",
        "png_b64": png_b64(px),
        "width": 8,
        "height": 8,
    }


def gradient_png() -> dict[str, Any]:
    """A 32x24 RGB picture: red grows left to right, blue top to bottom."""
    px = [[(c * 8, 64, r * 10) for c in range(32)] for r in range(24)]
    return {
        "name": "overlay",
        "caption": "Grad-CAM map over its input",
        "kind": "image",
        "png_b64": png_b64(px),
        "width": 32,
        "height": 24,
    }


def attention_heatmap() -> dict[str, Any]:
    """A causal attention map: 5 query tokens (rows) x 5 key tokens, each row sums to 1."""
    toks = ["the", "cat", "<sat>", "on", "mat"]
    z = [[round(1.0 / (i + 1), 3) if j <= i else 0.0 for j in range(5)] for i in range(5)]
    return {
        "name": "attention",
        "caption": "layer 0, head 0: causal",
        "kind": "heatmap",
        "z": z,
        "x": toks,
        "y": toks,
        "x_label": "key",
        "y_label": "query",
    }


def claim(text: str, status: str, value: float | None, op: str = ">=", threshold: float = 1.0, **kw: Any) -> dict:
    return {
        "text": text,
        "status": status,
        "value": value,
        "op": op,
        "threshold": threshold,
        "unit": "x",
        "why": "",
        "device": None,
        **kw,
    }


MATMUL_CLAIMS = [
    claim("blocked within 8x of torch.matmul", "holds", 4.0, "<=", 8.0),
    claim("loop at most 100x slower than torch.matmul", "fails", 500.0, "<=", 100.0),
    claim(
        "blocked >= 2x torch.matmul on cuda", "not measured", None, ">=", 2.0, why="a cuda claim; this run was on cpu"
    ),
]
MATMUL_MUTANTS = [
    {"name": "transposed_b", "what": "multiplies by B^T", "caught": True, "how": "loop: max abs err 3.1 > atol"},
    {"name": "off_by_one_k", "what": "drops the last k", "caught": True, "how": "blocked: max abs err 0.9"},
    {"name": "fp16_accumulate", "what": "accumulates in half", "caught": False, "how": "the check passed"},
]


def matmul_task(loop_factor: float = 1.0, verdicts: bool = False) -> dict[str, Any]:
    """An operator task: 3 implementations x 3 configs, speedups, % of peak, one noisy row.

    verdicts: also claims, mutant results and the timing helper's fields (a current
    record; one contended row, one suspect % of peak); without, a record of older schema.
    """
    rows = []
    for n in (32, 64, 128):
        cfg = f"m={n},k={n},n={n},batch=0"
        flops, nbytes = 2.0 * n**3, 12.0 * n * n
        base = 1e-5 * n**2
        for impl, f, iqr in (
            ("torch_matmul", 1.0, 0.01),
            ("loop", 500.0 * loop_factor, 0.01),
            ("blocked", 4.0, 0.3 if n == 64 else 0.02),
        ):
            m = meas(impl, cfg, base * f, iqr=iqr, flops=flops, nbytes=nbytes)
            m["speedup_vs_baseline"] = 1.0 / f
            if verdicts:
                busy = impl == "loop" and n == 128
                m |= {
                    "n_preempted": 3 if busy else 0,
                    "cpu_wall_ratio": 0.41 if busy else 0.99,
                    "contended": busy,
                    "waits": False,
                    "pct_peak_suspect": impl == "torch_matmul" and n == 128,
                }
            rows.append(m)
    extra = {"claims": MATMUL_CLAIMS, "mutants": MATMUL_MUTANTS} if verdicts else {}
    return {
        **extra,
        "id": MATMUL,
        "status": "pass",
        "area": "fundamentals",
        "seed": "1.01",
        "title": "matrix multiplication without torch.mm/matmul/@",
        "kind": "operator",
        "duration_s": 4.2,
        "size": "cpu",
        "dtype": "float32",
        "checks": [
            {
                "name": n,
                "passed": True,
                "n": 9,
                "max_abs_err": 7.6e-06,
                "max_rel_err": 2.1e-4,
                "rtol": 1.3e-06,
                "atol": 1e-05,
            }
            for n in ("torch_matmul", "loop", "blocked")
        ],
        "measurements": rows,
        "warnings": ["blocked [m=64,k=64,n=64,batch=0]: noisy measurement: IQR/median = 30% (> 10%)"],
    }


def main_tasks() -> dict[str, dict[str, Any]]:
    train = {
        "id": "nn_basics.fake_train",
        "status": "pass",
        "area": "nn_basics",
        "seed": "3.02",
        "title": "a training run " + XSS,
        "kind": "training",
        "duration_s": 12.0,
        "checks": [{"name": "loss falls", "passed": True, "n": 1}],
        "measurements": [meas("train_step", "B=32 lr=0.1", 2.5, samples_per_s=12800.0)],
        "metrics": {"final_loss": 0.12, "test_accuracy": 0.97},
        "curves": [
            {
                "name": "loss",
                "series": "train",
                "x_label": "step",
                "y_label": "loss",
                "x": [0, 1, 2, 3],
                "y": [2.3, 1.1, 0.5, 0.2],
                "log_x": False,
                "log_y": True,
            },
            {
                "name": "loss",
                "series": "val",
                "x_label": "step",
                "y_label": "loss",
                "x": [0, 2],
                "y": [2.2, 0.6],
                "log_x": False,
                "log_y": True,
            },
            {
                "name": "accuracy",
                "series": "test",
                "x_label": "epoch",
                "y_label": "accuracy",
                "x": [1, 2, 3],
                "y": [0.8, 0.9, 0.97],
                "log_x": False,
                "log_y": False,
            },
        ],
        "tables": [
            {
                "name": "confusion (first rows)",
                "rows": [{"label": 0, "pred_0": 40, "pred_1": 1}, {"label": 1, "pred_0": 2, "pred_1": 37}],
            }
        ],
        "notes": ["synthetic data: scikit-learn digits " + XSS],
    }
    fail = {
        "id": "autograd.bad_grad",
        "status": "fail",
        "area": "autograd",
        "seed": "2.02",
        "title": "a failing check",
        "kind": "operator",
        "reason": "manual [n=3, seed 0]: max abs err 0.5 > atol & rtol <tensor>",
        "checks": [
            {
                "name": "manual",
                "passed": False,
                "n": 1,
                "max_abs_err": 0.5,
                "max_rel_err": 1.0,
                "rtol": 1.3e-06,
                "atol": 1e-05,
                "message": "manual [n=3, seed 0]: max abs err 0.5 > atol & rtol <tensor>",
            }
        ],
    }
    error = {
        "id": "cnn.crashes",
        "status": "error",
        "area": "cnn",
        "seed": "4.01",
        "title": "a task that raises",
        "kind": "operator",
        "reason": "RuntimeError: shape <1, 2> & <3>",
        "error": 'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
        "RuntimeError: shape <1, 2> & <3>",
    }
    skip = {
        "id": "m4.triton_matmul",
        "status": "skip",
        "area": "m4",
        "seed": "m4",
        "title": "a Triton matmul kernel",
        "kind": "operator",
        "reason": "needs cuda: a CUDA GPU visible to torch",
    }
    partial = {
        "id": "fundamentals.cpu_vs_gpu_speed",
        "status": "pass",
        "area": "fundamentals",
        "seed": "1.10",
        "title": "CPU vs GPU speed",
        "kind": "comparison",
        "skipped_parts": [{"part": "timing of cuda", "reason": "needs cuda: a CUDA GPU visible to torch"}],
        "measurements": [meas("cpu", "n=1024", 3.0)],
    }
    nan = {
        "id": "research.all_nan",
        "status": "pass",
        "area": "research",
        "seed": "10.01",
        "title": "nothing to draw",
        "kind": "comparison",
        "curves": [
            {
                "name": "empty",
                "series": "s",
                "x_label": "step",
                "y_label": "v",
                "x": [0, 1],
                "y": [None, None],
                "log_x": False,
                "log_y": False,
            }
        ],
    }
    pictures = {
        "id": "cnn.pictures",
        "status": "pass",
        "area": "cnn",
        "seed": "4.05",
        "title": "pictures in a card",
        "kind": "operator",
        "claims": [claim("maps highlight the planted region", "holds", 0.92, ">=", 0.5, unit="")],
        "mutants": [{"name": "no_relu", "what": "keeps negative evidence", "caught": True, "how": "map differs"}],
        "images": [digit_png(), gradient_png(), attention_heatmap()],
    }
    tasks = (matmul_task(loop_factor=1.5, verdicts=True), train, fail, error, skip, partial, nan, pictures)
    return {t["id"]: t for t in tasks}


def write_run(
    runs_dir: Path,
    run_id: str,
    started: str,
    tasks: dict[str, dict[str, Any]],
    *,
    machine: str = MACHINE,
    commit: str = "abcdef12",
    **extra: Any,
) -> Path:
    data = {
        "schema": SCHEMA_VERSION,
        "kind": RECORD_KIND,
        "run_id": run_id,
        "started_utc": started,
        "finished_utc": started,
        "status": "complete",
        "mode": "run",
        "argv": ["run"],
        "device": "cpu",
        "size": None,
        "fingerprint": fingerprint(machine, commit),
        "peak": PEAK,
        "tasks": tasks,
        **extra,
    }
    path = runs_dir / machine / f"{run_id}.json"
    atomic_write_json(path, data)
    return path
