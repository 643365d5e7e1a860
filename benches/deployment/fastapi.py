"""9.03 Serve with FastAPI.

Compared: a digits classifier (a 64-32-10 MLP trained on scikit-learn's 1,797 real 8 x 8
digits, ``kernels.serve.model``) answered by a real uvicorn server on loopback, against the
same model called in-process. The server is ``kernels.serve.fastapi_app``: pydantic models
define the payloads (``kernels.serve.schemas``), the predict route is a plain ``def`` so
FastAPI runs it in its thread pool, and an ASGI middleware refuses bodies over 64 KiB
before reading them. The task starts the server as its own process group on a free port
(``harness.serving``), waits until ``/health`` answers, and stops the whole group at the end,
also on a failure or Ctrl-C; if the harness itself is killed the server notices its parent
is gone and ends its group.

Check (``kernels.serve.contract``): the server's classes equal in-process inference exactly
and its logits to float32 tolerance; malformed JSON (400), a wrong or extra field, a wrong
shape, a wrong dtype, a NaN (422), an oversized body (413) and an unknown model (404) each get a
4xx whose JSON body ``{"error", "detail"}`` names the problem; the server is still up after
them and answers every request right under 4-8 concurrent clients; the model was read once
in the serving process and the intra-op thread count is the one asked for; nothing is left
running afterwards. The run record keeps each bad payload with the status and body it got.

Bench: requests/s and p50/p99 latency of one-row requests at 1, 4 and 16 concurrent
clients (each a keep-alive HTTP/1.1 connection; load bounded in count and time), beside the
in-process latency of the same request: the floor no server can go below.

Lesson: for a small model the server, not the model, is the cost. The forward pass of
2,410 parameters takes microseconds; parsing JSON, validating 64 floats per row with
pydantic, the HTTP round trip and the hop to a worker thread take far longer, so batching
rows per request pays more than any model optimisation. Concurrency does not come free
either: with one worker serving requests one at a time, Little's law (L = lambda W; J. D. C.
Little, "A proof for the queuing formula L = lambda W", Operations Research 9(3):383-387,
1961) says that once the worker is saturated, requests/s stay flat while latency grows in
proportion to the number of clients: 16 clients wait about 16 service times. More
throughput needs more workers, and then each worker's intra-op threads must be set so that
workers x threads does not exceed the cores (PyTorch's "CPU threading and TorchScript
inference" note: oversubscription slows every process down); FastAPI's docs point to one
uvicorn process per core behind a process manager, and AnyIO's thread pool that runs sync
routes defaults to 40 threads (AnyIO docs, "Working with threads"), far more than the cores
of a small machine. And the contract matters as much as the speed: a server that answers
bad input with a 500 (the ``unvalidated`` mutant) tells the client nothing, and one that
forgets the training-time scaling (``raw_pixels``) answers 200 with wrong classes: only the
comparison with in-process inference catches it.
"""

from __future__ import annotations

from harness import System, task
from harness.mutants import Mutant
from harness.serving import request
from kernels.serve.contract import (
    CPU,
    TINY,
    bench_floor,
    bench_server,
    check_contract,
    make_store,
    server_claims,
    server_metrics,
    serving,
)

MODELS = [["digits", "v1", "digits-v1.pt"]]


@task("deployment.fastapi", seed="9.03", title="serve with FastAPI")
class ServeWithFastAPI(System):
    __doc__ = __doc__
    requires = ("fastapi",)
    variants = ("uvicorn", "in_process")
    sizes = {"tiny": TINY, "cpu": CPU}
    metrics = server_metrics("uvicorn")
    claims = server_claims("uvicorn")
    #: the app factory the server runs (``module:function``); mutants swap in a wrong one
    app = "kernels.serve.fastapi_app:create_app"
    #: torch intra-op threads in the server process
    threads = 1
    mutants = (
        Mutant(
            "unvalidated",
            "parses the body by hand: bad payloads raise, HTTP 500",
            {"app": "kernels.serve.wrong:fastapi_unvalidated"},
            match="bad payload",
        ),
        Mutant(
            "raw_pixels",
            "skips the x / 16 input scaling the model was trained with",
            {"app": "kernels.serve.wrong:fastapi_raw_pixels"},
            match="in-process",
        ),
    )

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        models = make_store(ctx.workdir, {"v1": ctx.rng_seed}, cfg.train_steps)
        if ctx.is_cuda:
            ctx.note("the server runs the model on the CPU: a 2,410-parameter MLP gains nothing from a GPU")
        with serving(ctx, "uvicorn", self.app, ctx.workdir, MODELS, threads=self.threads) as srv:
            _, health = request(srv.port, "GET", "/health")
            ctx.expect(
                health.get("loads") == 1 and health.get("threads") == self.threads,
                f"uvicorn: expected the model read once and {self.threads} intra-op thread(s), got {health}",
                name="model loaded once, threads set",
            )
            rows = check_contract(ctx, srv.port, "digits", models["v1"], cfg, "uvicorn")
        ctx.table("bad payloads and the answers they got", rows)

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        models = make_store(ctx.workdir, {"v1": ctx.rng_seed}, cfg.train_steps)
        floor = bench_floor(ctx, models["v1"], cfg)
        with serving(ctx, "uvicorn", self.app, ctx.workdir, MODELS, threads=self.threads) as srv:
            rows = bench_server(ctx, "uvicorn", srv.port, "digits", models["v1"], cfg, floor)
        ctx.table("requests/s and latency by client count (floor: in-process ms)", rows)
