"""9.07 Deploy with Flask.

Compared: the same digits classifier and the same contract as 9.03, served by a Flask app
(``kernels.serve.flask_app``) under the two usual WSGI servers, each a real process group on
loopback started and stopped by the task (``harness.serving``):

* waitress: one process, a pool of request threads (4 here, its default);
* gunicorn: a master and 2 forked sync workers, each handling one request at a time.

Flask has no request validation of its own: the app reads the body as bytes and validates it
with the same pydantic model as the FastAPI app, caps it with ``MAX_CONTENT_LENGTH`` (werkzeug
refuses a longer body before reading it: 413) and turns every HTTP error into the JSON error
body, so a client never parses an HTML error page. Under gunicorn the app factory runs in each
worker after the fork (``preload_app`` off): every worker reads the model itself and sets its
own intra-op threads, since a torch thread pool created before ``fork`` does not survive it.

Check, for each server (``kernels.serve.contract``): classes equal in-process inference
exactly, logits to float32 tolerance; malformed JSON (400), wrong or extra field, wrong shape,
wrong dtype, a NaN (422), oversized body (413) and unknown model (404) each get a 4xx with a JSON
``{"error", "detail"}`` naming the problem; the server stays up and answers right under
concurrent clients; under gunicorn the answering processes are workers, not the master, and
each read the model exactly once; nothing is left running afterwards.

Bench: requests/s and p50/p99 latency of one-row requests at 1, 4 and 16 concurrent clients
for waitress and gunicorn, beside the in-process latency of the same request (the floor).

Lesson: the WSGI server decides how requests share the CPU, and the model decides little.
Waitress runs requests in threads of one process: the GIL serialises the Python parts, but
torch releases it inside its kernels. Gunicorn's sync workers are separate processes with no
shared GIL; its docs recommend (2 x cores) + 1 workers as a starting point ("How Many
Workers?", docs.gunicorn.org, design page), and every worker holds its own copy of the model
and its own thread pool, so workers x intra-op threads must stay within the cores (PyTorch's
"CPU threading and TorchScript inference" note). A sync worker also closes the connection
after each response (no keep-alive), so every request pays a new TCP handshake; and with 16
clients on 2 workers, Little's law (Little 1961, Operations Research 9(3):383-387) puts about
8 requests in each worker's queue, so latency grows with clients while requests/s stay flat.
Flask's built-in development server is for development only (Flask docs, "Deploying to
Production"), which is why the task never uses it.
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
SERVERS = ("waitress", "gunicorn")


@task("deployment.flask", seed="9.07", title="deploy with Flask")
class DeployWithFlask(System):
    __doc__ = __doc__
    requires = ("flask",)
    variants = (*SERVERS, "in_process")
    sizes = {"tiny": TINY, "cpu": CPU}
    metrics = server_metrics(*SERVERS)
    claims = server_claims("waitress", named=True)
    #: the Flask app factory both servers run (``module:function``); mutants swap in a wrong one
    app = "kernels.serve.flask_app:create_app"
    #: torch intra-op threads per serving process (each gunicorn worker sets its own)
    threads = 1
    #: gunicorn worker processes
    workers = 2
    mutants = (
        Mutant(
            "unvalidated",
            "reads request JSON by hand: a wrong field, shape or dtype raises, HTTP 500",
            {"app": "kernels.serve.wrong:flask_unvalidated"},
            match="bad payload",
        ),
        Mutant(
            "raw_pixels",
            "skips the x / 16 input scaling the model was trained with",
            {"app": "kernels.serve.wrong:flask_raw_pixels"},
            match="in-process",
        ),
    )

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        models = make_store(ctx.workdir, {"v1": ctx.rng_seed}, cfg.train_steps)
        rows = []
        for kind in SERVERS:
            with serving(ctx, kind, self.app, ctx.workdir, MODELS, threads=self.threads, workers=self.workers) as srv:
                # a fresh connection per call: gunicorn's workers take turns accepting them
                healths = [request(srv.port, "GET", "/health")[1] for _ in range(4 * self.workers)]
                pids = {h["pid"] for h in healths}
                ctx.expect(
                    all(h["loads"] == 1 and h["threads"] == self.threads for h in healths)
                    and (kind != "gunicorn" or srv.pgid not in pids),
                    f"{kind}: every serving process must have read the model once, with {self.threads} intra-op "
                    f"thread(s), and (gunicorn) none may be the master (pid {srv.pgid}); got {healths}",
                    name="model loaded once per worker, threads set",
                )
                rows += check_contract(ctx, srv.port, "digits", models["v1"], cfg, kind)
        ctx.table("bad payloads and the answers they got", rows)

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        models = make_store(ctx.workdir, {"v1": ctx.rng_seed}, cfg.train_steps)
        floor = bench_floor(ctx, models["v1"], cfg)
        rows = []
        for kind in SERVERS:
            with serving(ctx, kind, self.app, ctx.workdir, MODELS, threads=self.threads, workers=self.workers) as srv:
                rows += bench_server(ctx, kind, srv.port, "digits", models["v1"], cfg, floor)
        ctx.table("requests/s and latency by server and client count (floor: in-process ms)", rows)
