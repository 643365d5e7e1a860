"""9.06 REST API for serving models.

Compared: a model registry behind a REST API (``kernels.serve.fastapi_app`` on uvicorn, a
real process group on loopback started and stopped by the task) against the same models
called in-process. Two versions of the digits classifier (64-32-10 MLPs trained with
different seeds on scikit-learn's digits) are files in the server's store; the API
registers, lists, activates and deletes versions and serves them by name and version.

The routes: ``GET /v1/models``, ``POST .../versions`` (201), ``PUT .../active``, ``DELETE
.../versions/{v}``, ``POST .../predict`` (the active version) and ``POST
.../versions/{v}/predict``; 404 for an unknown model or version, 409 for registering a version
twice or deleting the active one, 422 for a payload or store file that does not fit, every
error a JSON ``{"error", "detail"}``.

The check walks the registry through the API, reading each step back; each version's route
must answer with that version's in-process logits, also after another is registered; while
clients hammer the active route and the active version is swapped back and forth, every
answer must carry exactly the logits of the version it names. Then the shared contract of
9.03 (``kernels.serve.contract``) and a bounded schemathesis fuzz of the OpenAPI spec
FastAPI generates: no request may get a 5xx. The bench loads the active version at 1, 4
and 16 concurrent clients, beside the in-process floor.

Lesson: a registry is shared mutable state under concurrent readers, and the rule that keeps
it right is the one of any concurrent map: a reader takes one consistent snapshot (version
label and weights together, under the lock) and works outside the lock, and a writer
publishes a fully loaded model in one step. Swapping a version is then atomic for every
request: it gets the old model or the new, never a blend; this is what TorchServe's
management API (``PUT /models/{name}/{version}/set-default``) and KServe's canary rollouts
promise. Loading stays outside the lock so that registering a model never stalls
predictions. And the API's contract is testable from its own description: FastAPI
generates OpenAPI 3.1 from the pydantic models, and schemathesis generates requests from it
(Hatfield-Dodds & Dygalo, "Deriving Semantics-Aware Fuzzers from Web API Schemas",
arXiv:2112.10328, ICSE 2022 companion: against 16 open-source services it found 1.4x to
4.5x more unique defects than the second-best of 8 fuzzers on each); a 5xx for any input
is a server bug, since a client error must be answered with a 4xx (RFC 9110,
section 15.5: "the client seems to have erred").
"""

from __future__ import annotations

import dataclasses
import functools

from harness import System, task
from harness.claims import metric
from harness.mutants import Mutant
from kernels.serve.contract import (
    CPU,
    TINY,
    bench_floor,
    bench_server,
    check_contract,
    digits_batch,
    expect_same,
    make_store,
    server_claims,
    server_metrics,
    serving,
)
from kernels.serve.rest import expect_answer, fuzz_openapi, swap_under_load

R = "/v1/models/digits"
#: the listing with digits v1 alone registered, and active
ONLY_V1 = {"models": [{"name": "digits", "versions": ["v1"], "active": "v1"}]}


@task("deployment.rest_api", seed="9.06", title="REST API for serving models")
class RestApi(System):
    __doc__ = __doc__
    requires = ("fastapi",)
    variants = ("uvicorn", "in_process")
    sizes = {
        "tiny": dataclasses.replace(TINY, check_requests=64),
        "cpu": dataclasses.replace(CPU, fuzz_examples=25, fuzz_seconds=120.0),
    }
    metrics = {
        **server_metrics("uvicorn"),
        "swaps_under_load": "active-version swaps made while clients were sending requests (count)",
        "fuzz_cases": "requests schemathesis generated from the OpenAPI spec, none answered 5xx (count)",
    }
    claims = (
        *server_claims("uvicorn"),
        metric(
            "swaps_under_load", ">=", 2, text="the active version is swapped >= 2 times under load, answers consistent"
        ),
    )
    #: the app factory the server runs (``module:function``); mutants swap in a wrong one
    app = "kernels.serve.fastapi_app:create_app"
    mutants = (
        Mutant(
            "leaky_versions",
            "the registry keeps one module per model name: registering v2 overwrites v1's weights",
            {"app": "kernels.serve.wrong:fastapi_leaky_versions"},
            match="v1 after v2",
        ),
        Mutant(
            "whole_pixels_only",
            "raises (HTTP 500) on a fractional pixel value; every check but the fuzzer sends whole ones",
            {"app": "kernels.serve.wrong:fastapi_whole_pixels"},
            match="schemathesis",
        ),
        Mutant(
            "unvalidated",
            "parses predict bodies by hand: bad payloads raise, HTTP 500",
            {"app": "kernels.serve.wrong:fastapi_unvalidated"},
            match="bad payload",
        ),
    )

    def check(self, ctx) -> None:
        cfg = ctx.configs[0]
        models = make_store(ctx.workdir, {"v1": ctx.rng_seed, "v2": ctx.rng_seed + 1}, cfg.train_steps)
        x = digits_batch(cfg.check_rows)  # (rows, 64) raw pixels
        rows = {"inputs": x.tolist()}
        with serving(ctx, "uvicorn", self.app, ctx.workdir, [["digits", "v1", "digits-v1.pt"]]) as srv:
            call = functools.partial(expect_answer, ctx, srv.port)  # (what, method, path, body, status)
            call("list models at start", "GET", "/v1/models", want=ONLY_V1)
            v2 = {"version": "v2", "file": "digits-v2.pt"}
            call("register", "POST", f"{R}/versions", v2, 201)
            call("register twice", "POST", f"{R}/versions", v2, 409)
            call("register a missing file", "POST", f"{R}/versions", {"version": "v3", "file": "nope.pt"}, 422)
            # a registry sharing weights between versions answers v1's route with v2's logits
            for v, where in (("v1", "route v1 after v2 was registered"), ("v2", "route v2")):
                body = call("versioned predict", "POST", f"{R}/versions/{v}/predict", rows)
                expect_same(ctx, body, models[v], x, where)
            call("unknown version", "POST", f"{R}/versions/v9/predict", rows, 404)
            call("activate unknown", "PUT", f"{R}/active", {"version": "v9"}, 404)
            call("activate", "PUT", f"{R}/active", {"version": "v2"})
            body = call("active predict", "POST", f"{R}/predict", rows)
            expect_same(ctx, body, models["v2"], x, "the active route after activating v2")
            ctx.metric("swaps_under_load", swap_under_load(ctx, srv.port, R, models, cfg))
            call("activate", "PUT", f"{R}/active", {"version": "v1"})
            call("delete the active version", "DELETE", f"{R}/versions/v1", status=409)
            call("delete", "DELETE", f"{R}/versions/v2")
            call("deleted version", "POST", f"{R}/versions/v2/predict", rows, 404)
            call("list models after deleting v2", "GET", "/v1/models", want=ONLY_V1)
            table = check_contract(ctx, srv.port, "digits", models["v1"], cfg, "uvicorn")
            fuzz_openapi(ctx, srv.port, cfg, {"path.name": "digits", "path.version": "v1"})
        ctx.table("bad payloads and the answers they got", table)

    def bench(self, ctx) -> None:
        cfg = ctx.configs[0]
        models = make_store(ctx.workdir, {"v1": ctx.rng_seed}, cfg.train_steps)
        floor = bench_floor(ctx, models["v1"], cfg)
        with serving(ctx, "uvicorn", self.app, ctx.workdir, [["digits", "v1", "digits-v1.pt"]]) as srv:
            rows = bench_server(ctx, "uvicorn", srv.port, "digits", models["v1"], cfg, floor)
        ctx.table("requests/s and latency by client count (floor: in-process ms)", rows)
