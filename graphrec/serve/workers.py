"""``graphrec serve --workers N``: N server processes, each with its own listening socket on the same port.

Each worker binds with ``SO_REUSEPORT``, so the kernel spreads new
connections over the workers by their addresses. (uvicorn's own ``--workers``
shares one socket, and whichever worker wakes first accepts: a few
keep-alive connections opened together often all land on one worker, which
then serves alone.) The workers share the run's event log
(:mod:`graphrec.data.wal`), so a write acknowledged by one is seen by the next
read on any other, and Prometheus metrics add up across them
(``prometheus_client``'s multiprocess mode).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from graphrec.errors import GraphrecError


def _listen(host: str, port: int, share: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if share:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


#: how often a worker checks that the process that started it is still there
PARENT_CHECK_SECONDS = 0.5
#: how long a worker whose parent is gone may take to stop gracefully before it exits
ORPHAN_GRACE_SECONDS = 30.0


def _stop_with_parent(parent: int) -> None:
    """Stop this worker once ``parent`` is gone: a SIGKILLed ``graphrec serve`` cannot stop its workers, which
    would keep the port (a restart: "address already in use") and keep writing to the log unsupervised.

    SIGTERM first (uvicorn finishes the requests in flight), then exit after :data:`ORPHAN_GRACE_SECONDS`.
    """
    def watch() -> None:
        while os.getppid() == parent:  # re-parented (to init or a subreaper) once the parent dies
            time.sleep(PARENT_CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(ORPHAN_GRACE_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="graphrec-parent-watch", daemon=True).start()


def _worker(host: str, port: int, log_level: str, uvicorn_options: dict[str, Any], parent: int) -> None:
    import uvicorn

    from graphrec.serve.app import app_from_env

    _stop_with_parent(parent)
    app = app_from_env()  # the model first: a worker takes connections only once it can answer them
    sock = _listen(host, port)
    config = uvicorn.Config(app, log_level=log_level, **uvicorn_options)
    uvicorn.Server(config).run(sockets=[sock])


def serve_workers(run_dir: str | Path, host: str, port: int, workers: int, threads: int, text: bool, log_level: str,
                  uvicorn_options: dict[str, Any]) -> int:
    """Run ``workers`` server processes until SIGINT/SIGTERM (then stop them all); one dying stops the rest.

    Returns the exit status: 0 after a signal, 1 when a worker died on its own.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        raise GraphrecError("--workers > 1 needs SO_REUSEPORT (Linux, macOS, BSD); run one worker here")
    os.environ["GRAPHREC_SERVE_RUN_DIR"] = str(Path(run_dir).resolve())
    os.environ["GRAPHREC_SERVE_TEXT"] = "1" if text else "0"
    os.environ["GRAPHREC_SERVE_THREADS"] = str(threads)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="graphrec-metrics-"))
    try:
        # the port is free (not shared: another server's SO_REUSEPORT socket would take half the connections)
        _listen(host, port, share=False).close()
    except OSError as exc:
        raise GraphrecError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(host, port, log_level, uvicorn_options, os.getpid()), name=f"graphrec-worker-{i}")
             for i in range(workers)]
    stopping = []

    def stop(signum: int, _: Any) -> None:
        stopping.append(signum)

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for p in procs:
            p.start()
        while not stopping and all(p.is_alive() for p in procs):
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
        for s, handler in old.items():
            signal.signal(s, handler)
    return 0 if stopping else 1
