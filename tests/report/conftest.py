"""Fixtures of the report tests; the record builders are in report_records.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from report_records import MACHINE, MATMUL, main_tasks, matmul_task, write_run


@dataclasses.dataclass
class Case:
    runs_dir: Path
    main: Path
    older: list[Path]
    foreign: Path
    out: Path


@pytest.fixture
def report_case(tmp_path: Path) -> Case:
    runs = tmp_path / "runs"
    older = [
        write_run(
            runs, "20260101T000000Z_aaaa1111", "2026-01-01T00:00:00Z", {MATMUL: matmul_task()}, commit="aaaa1111"
        ),
        write_run(
            runs, "20260102T000000Z_bbbb2222", "2026-01-02T00:00:00Z", {MATMUL: matmul_task()}, commit="bbbb2222"
        ),
    ]
    main = write_run(
        runs,
        "20260103T000000Z_cccc3333",
        "2026-01-03T00:00:00Z",
        main_tasks(),
        commit="cccc3333",
        capabilities={"cuda": False, "triton": True},
    )
    foreign = write_run(
        runs, "20260102T120000Z_dddd4444", "2026-01-02T12:00:00Z", {MATMUL: matmul_task()}, machine="other-gpu"
    )
    (runs / MACHINE / "20260101T120000Z_broken00.json").write_text('{"kind": "torchdrills.run", "sch')  # truncated
    return Case(runs_dir=runs, main=main, older=older, foreign=foreign, out=tmp_path / "out" / "index.html")
