"""The serving contract every server is checked against, and the load bench they share.

:func:`check_contract` (used by 9.03 FastAPI, 9.06 REST API and 9.07 Flask, one call per
running server):

1. predictions equal in-process inference: the classes exactly, the logits within float32
   tolerance, for a batch of real digits;
2. each bad payload of :func:`bad_payloads` gets a 4xx (the expected code) and a JSON body
   ``{"error", "detail"}`` whose detail names the problem (checked by a keyword);
3. the server is still up afterwards and, under concurrent clients, every answer is right.

:func:`bench_server` records requests/s and p50/p99 latency at each client count, and
:func:`bench_floor` the in-process latency of the same one-row request, the floor no server
can beat (its overhead is what the server adds: parsing, HTTP, scheduling).
:data:`TINY`, :data:`CPU`, :func:`server_metrics` and :func:`server_claims` are the presets,
metric declarations and claims the three tasks share.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import torch

from harness.claims import Claim, metric
from harness.serving import Server, group_members, processes_tagged, request, run_load, serve_command
from harness.train import record_samples
from kernels.serve.limits import MAX_BODY_BYTES, N_FEATURES
from kernels.serve.model import ServedModel, digits_data, train_digits


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """Sizes of a serving check and bench."""

    train_steps: int = 150
    """full-batch Adam steps training each model version on digits"""
    check_rows: int = 32
    """real digits sent in the equality check (one request)"""
    check_clients: int = 8
    """concurrent clients in the under-load check"""
    check_requests: int = 48
    """requests sent in the under-load check (bounded)"""
    clients: tuple[int, ...] = (1, 4, 16)
    """client counts the bench sweeps"""
    bench_requests: int = 200
    """requests per client count in the bench (bounded)"""
    bench_seconds: float = 5.0
    """wall-clock cap per client count, seconds"""
    fuzz_examples: int = 5
    """schemathesis examples per API operation (REST API only)"""
    fuzz_seconds: float = 20.0
    """wall-clock cap of the fuzz run, seconds"""

    def label(self) -> str:
        return f"clients={'/'.join(map(str, self.clients))},n={self.bench_requests}"


#: the check preset of the server tasks: a few seconds of training and load on a CPU
TINY = ServeConfig(
    train_steps=60, check_rows=16, check_clients=4, check_requests=24, bench_requests=48, bench_seconds=3.0
)
#: the bench preset on a CPU
CPU = ServeConfig(bench_requests=400, bench_seconds=10.0)


def server_metrics(*servers: str, clients: tuple[int, ...] = (1, 4, 16)) -> dict[str, str]:
    """Metric name -> meaning of what :func:`check_contract` and :func:`bench_server` record for ``servers``."""
    per = ", per server" if len(servers) > 1 else ""
    out = {"bad_payloads_rejected": f"bad payloads answered with the expected 4xx and a JSON error (count{per})"}
    for s in servers:
        out[f"{s}_overhead_ms_c1"] = (
            f"median ms a one-row request over loopback to {s} adds to in-process inference, 1 client"
        )
    for s in servers:
        out |= {f"{s}_rps_c{c}": f"{s}: requests/s at {c} concurrent clients" for c in clients}
    for s in servers:
        out |= {f"{s}_p99_ms_c{c}": f"{s}: 99th-percentile latency (ms) at {c} concurrent clients" for c in clients}
    return out


def server_claims(server: str, *, named: bool = False) -> tuple[Claim, Claim]:
    """Every bad payload of :func:`bad_payloads` rejected; ``server`` adds <= 20 ms at 1 client.

    ``named`` starts the second claim's text with the server's name (a task with several servers).
    """
    who = f"{server}: " if named else ""
    return (
        metric(
            "bad_payloads_rejected", ">=", 8, text="all 8 bad payloads get a 4xx with a JSON error naming the problem"
        ),
        metric(
            f"{server}_overhead_ms_c1",
            "<=",
            20.0,
            measured_by=server,
            text=f"{who}a one-row request over loopback adds <= 20 ms to in-process inference at 1 client",
        ),
    )


def bad_payloads(model: str) -> list[tuple[str, str, bytes | dict, int, str]]:
    """``(label, path, body, expected status, keyword the error detail must contain)``."""
    row = [0.0] * N_FEATURES
    path = f"/v1/models/{model}/predict"
    big = {"inputs": [row] * (MAX_BODY_BYTES // (N_FEATURES * 5) + 8)}  # ~5 bytes per "0.0, "
    return [
        ("malformed JSON", path, b'{"inputs": [[1, 2', 400, "JSON"),
        ("wrong field", path, {"pixels": [row]}, 422, "inputs"),
        ("extra field", path, {"inputs": [row], "debug": True}, 422, "debug"),
        ("wrong shape (3 values in a row)", path, {"inputs": [[1.0, 2.0, 3.0]]}, 422, "64"),
        ("wrong dtype (strings)", path, {"inputs": [["0"] * N_FEATURES]}, 422, "number"),
        ("NaN value", path, b'{"inputs": [[NaN' + b", 0.0" * (N_FEATURES - 1) + b"]]}", 422, "finite"),
        (f"oversized body (> {MAX_BODY_BYTES} bytes)", path, big, 413, str(MAX_BODY_BYTES)),
        ("unknown model", "/v1/models/no_such_model/predict", {"inputs": [row]}, 404, "no_such_model"),
    ]


def digits_batch(n: int, offset: int = 0) -> torch.Tensor:
    """``n`` real digits (n, 64) float32 raw pixels, from row ``offset`` on."""
    return digits_data()[0][offset : offset + n]


def expect_same(ctx, body: dict[str, Any], model: ServedModel, x: torch.Tensor, where: str) -> None:
    """The server's answer equals in-process inference on ``x`` (classes exact, logits close)."""
    classes, logits = model.predict(x)
    got = torch.tensor(body["predictions"])
    wrong = int((got != classes).sum())
    ctx.expect(
        wrong == 0,
        f"{where}: {wrong} of {len(classes)} classes differ from in-process inference",
        name="predictions = in-process",
    )
    ctx.assert_close(torch.tensor(body["logits"], dtype=torch.float32), logits, name="logits = in-process", where=where)


def check_contract(
    ctx, port: int, name: str, model: ServedModel, cfg: ServeConfig, server: str
) -> list[dict[str, Any]]:
    """Steps 1-3 of the module docstring against a running server; returns the bad-payload table."""
    x = digits_batch(cfg.check_rows)
    status, body = request(port, "POST", f"/v1/models/{name}/predict", {"inputs": x.tolist()})
    ctx.expect(status == 200, f"{server}: a valid request got {status}: {body}", name="valid request answered")
    expect_same(ctx, body, model, x, f"{server}, {cfg.check_rows} digits")
    rows = []
    for label, path, payload, code, keyword in bad_payloads(name):
        status, body = request(port, "POST", path, payload)
        rows.append({"server": server, "payload": label, "status": status, "body": json.dumps(body)[:160]})
        is_json = isinstance(body, dict) and {"error", "detail"} <= set(body)
        ctx.expect(
            400 <= status < 500 and status == code,
            f"{server}: bad payload ({label}) got status {status}, expected {code}: {str(body)[:200]}",
            name="bad payload -> 4xx",
        )
        ctx.expect(
            is_json,
            f"{server}: bad payload ({label}): error body is not JSON {{error, detail}}: {str(body)[:200]}",
            name="error body is JSON",
        )
        ctx.expect(
            keyword.lower() in body["detail"].lower(),
            f"{server}: bad payload ({label}): the error {body['detail']!r} does not name the problem ({keyword!r})",
            name="error names the problem",
        )
    ctx.metric("bad_payloads_rejected", len(rows))
    status, _ = request(port, "GET", "/health")
    ctx.expect(
        status == 200, f"{server}: not answering after the bad payloads (health {status})", name="server stays up"
    )
    bodies, expected = _one_row_bodies(model, 16)

    def verify(i: int, status: int, body: dict) -> str | None:
        ok = body["predictions"] == [expected[i % len(expected)]]
        return None if ok else f"request {i}: got {body['predictions']}, in-process {expected[i % len(expected)]}"

    res = run_load(
        port,
        f"/v1/models/{name}/predict",
        bodies,
        clients=cfg.check_clients,
        max_requests=cfg.check_requests,
        max_seconds=30.0,
        verify=verify,
    )
    ctx.expect(
        not res.errors and res.requests == cfg.check_requests,
        f"{server}: under {cfg.check_clients} concurrent clients {len(res.errors)} of {cfg.check_requests} "
        f"answers wrong or failed, e.g. {res.errors[:2]}",
        name="right answers under concurrent clients",
    )
    return rows


def _one_row_bodies(model: ServedModel, n: int) -> tuple[list[bytes], list[int]]:
    x = digits_batch(n, offset=100)
    bodies = [json.dumps({"inputs": [r]}).encode() for r in x.tolist()]
    return bodies, model.predict(x)[0].tolist()


def bench_floor(ctx, model: ServedModel, cfg: ServeConfig) -> float:
    """In-process latency of one one-row prediction (ms), recorded as impl ``in_process``."""
    x = digits_batch(1)
    m = ctx.measure("in_process", lambda: model.predict(x), config=cfg)
    return m.median_ms


def bench_server(
    ctx, impl: str, port: int, name: str, model: ServedModel, cfg: ServeConfig, floor_ms: float
) -> list[dict[str, Any]]:
    """Requests/s and p50/p99 at each client count of ``cfg`` (one-row requests); rows for a table."""
    bodies, expected = _one_row_bodies(model, 16)
    rows = []
    for c in cfg.clients:
        res = run_load(
            port,
            f"/v1/models/{name}/predict",
            bodies,
            clients=c,
            max_requests=cfg.bench_requests,
            max_seconds=cfg.bench_seconds,
        )
        if res.errors:
            raise RuntimeError(f"{impl} at {c} clients: {len(res.errors)} failed requests, e.g. {res.errors[:2]}")
        s = res.summary()
        record_samples(
            ctx,
            impl,
            res.latencies_ms,
            config=f"clients={c}",
            mode="loopback HTTP round trip",
            rps=s["rps"],
            p99_ms=s["p99_ms"],
        )
        ctx.metric(f"{impl}_rps_c{c}", s["rps"])
        ctx.metric(f"{impl}_p99_ms_c{c}", s["p99_ms"])
        if c == 1:
            ctx.metric(f"{impl}_overhead_ms_c1", s["p50_ms"] - floor_ms)
        rows.append({"server": impl, **s, "floor_ms": round(floor_ms, 4)})
    return rows


def make_store(workdir: Path, versions: dict[str, int], steps: int) -> dict[str, ServedModel]:
    """Train one digits MLP per version (``{version: seed}``) and save ``digits-<version>.pt`` in ``workdir``."""
    models = {}
    for version, seed in versions.items():
        models[version] = trained(seed, steps)
        models[version].save(Path(workdir) / f"digits-{version}.pt")
    return models


@functools.lru_cache(maxsize=8)
def trained(seed: int, steps: int) -> ServedModel:
    """:func:`kernels.serve.model.train_digits`, once per process for each (seed, steps)."""
    return train_digits(seed, steps=steps)[0]


@contextlib.contextmanager
def serving(ctx, kind: str, app: str, store: Path, models: list[list[str]], *, threads: int = 1, workers: int = 2):
    """Run ``kind`` (uvicorn, waitress, gunicorn) serving ``app`` with ``models`` registered.

    Yields the ready :class:`harness.serving.Server`; on exit stops its process group and
    checks (``ctx.expect``) that no process of it is left, by group id and by argv tag.
    """
    settings = {"store": str(store), "models": models, "threads": threads}
    opts = {"workers": workers} if kind == "gunicorn" else {}
    srv = Server(serve_command(kind, app, settings, **opts), name=kind)
    srv.start()
    pgid, tag = srv.pgid, srv.tag
    try:
        yield srv
    finally:
        srv.stop()
    left = sorted(set(group_members(pgid or 0)) | set(processes_tagged(tag)))
    ctx.expect(not left, f"{kind}: processes {left} outlived stop()", name="nothing left running")
