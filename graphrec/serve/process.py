"""``graphrec serve`` in a child process, for tests, benchmarks and notebooks: start, wait until healthy, stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from graphrec.errors import GraphrecError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``graphrec serve RUN_DIR`` on 127.0.0.1 as a child process.

    Args:
        run_dir: The run to serve.
        port: Its port (default: a free one).
        options: More ``graphrec serve`` options (``["--no-text"]``, ``["--workers", "2"]``).
        env: Extra environment variables (``GRAPHREC_API_TOKEN``).
        timeout: Seconds to wait for ``/health``.

    Use as a context manager; :meth:`kill` sends SIGKILL (a crash), :meth:`stop` SIGTERM.
    """

    def __init__(self, run_dir: str | Path, port: int | None = None, options: list[str] | None = None,
                 env: dict[str, str] | None = None, timeout: float = 120.0, log: str | Path | None = None) -> None:
        self.run_dir, self.port = Path(run_dir), port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.options, self.timeout = list(options or []), timeout
        self.env = {**os.environ, **(env or {})}
        self.log_path = Path(log) if log else self.run_dir / "serving" / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # closed in stop() and kill()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "graphrec", "serve", str(self.run_dir), "--port", str(self.port), *self.options],
            stdout=self._log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        workers = int(self.options[self.options.index("--workers") + 1]) if "--workers" in self.options else 1
        pids: set[int] = set()
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise GraphrecError(f"graphrec serve exited with status {self.proc.returncode}: "
                                    f"{self.log_path.read_text()[-2000:]}")
            try:  # a new connection each time: with several workers, until every one has answered
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    pids.add(int(json.loads(r.read())["pid"]))
                    if len(pids) >= workers:
                        return self
            except OSError:
                time.sleep(0.2)
        self.kill()
        raise GraphrecError(f"graphrec serve did not answer /health within {self.timeout:.0f} s: "
                            f"{self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the server and its workers (a crash: nothing is flushed or closed)."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if hasattr(self, "_log"):
            self._log.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
