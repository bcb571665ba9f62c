"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it replaces ``dest``.

    On an exception the temporary file is removed and ``dest`` is untouched.
    ``dest`` gets the mode any new file would (the umask's), also where the
    writer replaced the temporary file with one of its own.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    mode = 0o666 & ~_umask()  # mkstemp makes 0600
    os.chmod(tmp, mode)
    try:
        yield tmp
        os.chmod(tmp, mode)  # a writer that recreates the file (safetensors' save_file) makes it 0600 again
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(dest: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def atomic_write_text(dest: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``dest`` atomically."""
    return atomic_write_bytes(dest, text.encode(encoding))


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def json_safe(x: Any) -> Any:
    """``x`` with NaN and infinities replaced by None (JSON has no NaN), recursively through dicts and lists."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


def atomic_write_json(dest: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented, strictly valid JSON (NaN → null) to ``dest`` atomically."""
    return atomic_write_text(dest, json.dumps(json_safe(obj), indent=1, allow_nan=False))


def default_cache_dir() -> Path:
    """``$GRAPHREC_CACHE_DIR``, else ``$XDG_CACHE_HOME/graphrec``, else ``~/.cache/graphrec``."""
    env = os.environ.get("GRAPHREC_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "graphrec"


#: bytes read at a time when hashing a file
CHUNK = 1 << 20


def file_digest(path: str | Path, algorithm: str = "md5") -> str:
    """Hex digest of a file, read in 1 MiB chunks: any :mod:`hashlib` algorithm (``md5``, ``sha256``...), or
    ``git_blob_sha1``, git's object id of the file (what ``git hash-object`` prints)."""
    path = Path(path)
    if algorithm == "git_blob_sha1":
        h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    else:
        h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
