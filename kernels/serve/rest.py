"""Checks of the registry REST API (9.06) beyond the shared contract.

* :func:`expect_answer`: one request whose status (and, if given, whole JSON answer) is checked.
* :func:`swap_under_load`: clients send to the active-version route while a thread swaps the
  active version back and forth; every answer must carry exactly the logits of the version
  it names (an answer mixing one version's label with another's weights is the bug).
* :func:`fuzz_openapi`: schemathesis generates requests from the served OpenAPI spec; no
  answer may be a 5xx. Bounded by an example count per operation and a timeout; skipped,
  with the reason recorded, where schemathesis is not installed (it is a dev extra).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import torch

from harness.serving import LOOPBACK, request, run_load
from kernels.serve.contract import ServeConfig, digits_batch
from kernels.serve.model import ServedModel


def expect_answer(
    ctx, port: int, what: str, method: str, path: str, body: dict | None = None, status: int = 200, want=None
) -> dict:
    """Send one request to ``port`` and check its HTTP status (and its JSON answer, if ``want``).

    Fails (``ctx.expect``, named ``what``) when the status is not ``status`` or, with ``want``
    given, the decoded answer is not equal to ``want``. Returns the JSON answer ({} if none).
    """
    got, answer = request(port, method, path, body)
    ctx.expect(got == status, f"{what}: expected HTTP {status}, got {got}: {str(answer)[:200]}", name=what)
    if want is not None:
        ctx.expect(answer == want, f"{what}: expected {want}, got {answer}", name=what)
    return answer if isinstance(answer, dict) else {}


def swap_under_load(ctx, port: int, route: str, models: dict[str, ServedModel], cfg: ServeConfig) -> int:
    """Load ``route/predict`` while ``route/active`` alternates between ``models``' versions.

    Fails (``ctx.expect``) on any failed or inconsistent answer, or when not every version
    answered during the load. Returns the number of swaps made.
    """
    versions = sorted(models)
    xs = digits_batch(16, offset=200)  # (16, 64): one row per request, cycled
    bodies = [f'{{"inputs": [{r}]}}'.encode() for r in xs.tolist()]
    expected = {v: m.predict(xs)[1] for v, m in models.items()}  # (16, 10) logits per version
    seen: set[str] = set()
    done, swaps = threading.Event(), [0]

    def swapper() -> None:
        while not done.is_set():
            request(port, "PUT", f"{route}/active", {"version": versions[swaps[0] % len(versions)]})
            swaps[0] += 1

    def verify(i: int, status: int, body: dict[str, Any]) -> str | None:
        v = body.get("version")
        seen.add(str(v))
        if v not in expected:
            return f"request {i}: answered by unknown version {v!r}"
        ok = torch.allclose(torch.tensor(body["logits"][0]), expected[v][i % 16], rtol=1e-5, atol=1e-5)
        return None if ok else f"request {i}: labelled {v} but its logits are not {v}'s"

    t = threading.Thread(target=swapper, name="version-swapper", daemon=True)
    t.start()
    try:
        res = run_load(
            port,
            f"{route}/predict",
            bodies,
            clients=cfg.check_clients,
            max_requests=cfg.check_requests,
            max_seconds=30.0,
            verify=verify,
        )
    finally:
        done.set()
        t.join(15.0)
    ctx.expect(
        not res.errors and seen == set(versions),
        f"swap under load: {len(res.errors)} inconsistent or failed answers (e.g. {res.errors[:2]}), "
        f"versions seen {sorted(seen)} over {swaps[0]} swaps",
        name="consistent answers while swapping",
    )
    return swaps[0]


def fuzz_openapi(ctx, port: int, cfg: ServeConfig, parameters: dict[str, str]) -> None:
    """Run schemathesis on ``http://127.0.0.1:port/openapi.json``; no request may get a 5xx.

    Args:
        parameters: fixed values for path parameters (``{"path.name": "digits"}``), so the
            fuzzer reaches a model that exists instead of meeting only 404s.
    """
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    if exe is None:
        ctx.skip_part("schemathesis fuzz of the OpenAPI spec", "needs schemathesis (pip install 'torchdrills[dev]')")
        return
    conf = ctx.workdir / "schemathesis.toml"
    conf.write_text("[parameters]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in parameters.items()))
    phases = "fuzzing" if cfg.fuzz_examples < 10 else "examples,coverage,fuzzing"
    cmd = [exe, "--config-file", str(conf), "run", f"http://{LOOPBACK}:{port}/openapi.json"]
    cmd += ["--checks", "not_a_server_error", "--max-examples", str(cfg.fuzz_examples), "--seed", str(ctx.rng_seed)]
    cmd += ["--phases", phases, "--workers", "1", "--no-shrink", "--generation-database", "none"]
    cmd += ["--request-timeout", "10", "--no-color"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=cfg.fuzz_seconds, cwd=ctx.workdir)
    except subprocess.TimeoutExpired:  # subprocess.run has killed it
        ctx.note(f"schemathesis cut off at {cfg.fuzz_seconds:.0f} s (its bound); no 5xx seen before that")
        return
    tail = "\n".join(out.stdout.strip().splitlines()[-12:])
    ctx.expect(out.returncode == 0, f"schemathesis found server errors (5xx) or failed:\n{tail}", name="fuzz: no 5xx")
    cases = [ln.split()[0] for ln in out.stdout.splitlines() if " generated," in ln]
    if cases and cases[-1].isdigit():
        ctx.metric("fuzz_cases", float(cases[-1]))
