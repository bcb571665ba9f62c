"""What every benchmark shares: printing each line and keeping it for ``experiments/results/``, and finding a
peer's virtual environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from graphrec.fs import atomic_write_text


class Report:
    """Prints lines and keeps them; :meth:`save` writes them to a file atomically."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def save(self, path: Path) -> Path:
        return atomic_write_text(path, "\n".join(self.lines) + "\n")


PEERS = Path(__file__).resolve().parent / "peers"


def peer_venv(script: str, venv: str | None = None) -> str:
    """The venv a peer's ``experiments/peers/<script>`` builds (or finds), which it prints as its last line;
    ``venv`` is passed on as the folder to use. Exits with the script's error output when it fails."""
    cmd = ["bash", str(PEERS / script)] + ([venv] if venv else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1]
