"""Server entry point: ``python -m kernels.serve.main --server uvicorn --app MOD:FACTORY ...``.

Started by :class:`harness.serving.Server` as the leader of its own process group. It
imports neither torch nor the model: the app factory (``MOD:FACTORY(settings)``) runs in
the process that serves, which for gunicorn is each forked worker (``preload_app`` off),
so every worker reads the model once, after the fork, and sets its own intra-op threads
(a torch thread pool created before ``fork`` is not usable in the child).

* ``uvicorn``: one process, the ASGI app on an asyncio loop (sync routes in its thread pool);
* ``waitress``: one process, ``--http-threads`` WSGI threads;
* ``gunicorn``: a master and ``--workers`` forked sync workers.

A thread in this process watches its parent: if the harness process dies without stopping
the server (SIGKILL, a runner's time limit), the server kills its whole process group
within a second, so no server outlives the run that started it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import threading
import time
from typing import Any

SERVERS = ("uvicorn", "waitress", "gunicorn")


def load_factory(spec: str):
    """``"package.module:function"`` -> the function. Raises ValueError for a malformed spec."""
    mod, sep, attr = spec.partition(":")
    if not sep or not mod or not attr:
        raise ValueError(f"--app {spec!r}: expected 'package.module:factory'")
    return getattr(importlib.import_module(mod), attr)


def watch_parent(ppid: int, period_s: float = 0.2) -> None:
    """Kill this process group once ``ppid`` is no longer our parent (it died)."""

    def loop() -> None:
        while os.getppid() == ppid:
            time.sleep(period_s)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=loop, name="serve-parent-watch", daemon=True).start()


def serve(args: argparse.Namespace) -> None:
    settings: dict[str, Any] = json.loads(args.settings)
    if args.server == "uvicorn":
        import uvicorn

        app = load_factory(args.app)(settings)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    elif args.server == "waitress":
        import waitress

        app = load_factory(args.app)(settings)
        waitress.serve(app, host=args.host, port=args.port, threads=args.http_threads, _quiet=True)
    else:
        from gunicorn.app.base import BaseApplication

        class App(BaseApplication):
            def load_config(self) -> None:
                opts = {"bind": f"{args.host}:{args.port}", "workers": args.workers, "worker_class": "sync"}
                for k, v in {**opts, "preload_app": False, "loglevel": "warning", "graceful_timeout": 5}.items():
                    self.cfg.set(k, v)

            def load(self):  # runs in each worker after the fork (preload_app is off)
                return load_factory(args.app)(settings)

        App().run()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m kernels.serve.main", description=__doc__.splitlines()[0])
    p.add_argument("--server", choices=SERVERS, required=True)
    p.add_argument("--app", required=True, help="package.module:factory taking the settings dict")
    p.add_argument("--settings", default="{}", help="JSON passed to the factory")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    p.add_argument("--http-threads", type=int, default=4, help="waitress request threads")
    p.add_argument("--tag", default="", help="a marker in argv so leftover processes can be found")
    args = p.parse_args(argv)
    watch_parent(os.getppid())
    serve(args)


if __name__ == "__main__":
    main()
