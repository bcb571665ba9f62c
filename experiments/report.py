"""What every benchmark does with its output: print each line and keep it for ``experiments/results/``."""

from __future__ import annotations

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
