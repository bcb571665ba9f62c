"""Fetching dataset archives: checksummed, atomic, never half-written."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from graphrec.errors import DatasetNotFoundError, GraphrecError
from graphrec.fs import CHUNK


class ChecksumError(GraphrecError):
    """A downloaded file's checksum differs from the published one."""


def fetch_text(url: str, timeout: float = 30.0) -> str:
    """A small text resource (such as a published ``.md5`` file)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bytes(resp.read(1 << 16)).decode("ascii", errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        raise DatasetNotFoundError(f"could not fetch {url}: {exc}") from exc


def download(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    timeout: float = 60.0,
    attempts: int = 2,
    progress: bool = False,
) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying a checksum.

    The bytes go to a temporary file beside ``dest``, which is renamed onto
    ``dest`` only once the checksum matches. An interrupted download leaves no
    ``dest``; a corrupt one is deleted and fetched again, up to ``attempts``
    times.

    Raises:
        DatasetNotFoundError: the URL cannot be reached.
        ChecksumError: every attempt gave the wrong bytes.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    last: ChecksumError | None = None
    for _ in range(attempts):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        h_md5, h_sha = hashlib.md5(), hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                total = int(resp.headers.get("Content-Length") or 0)
                bar = _progress(total, dest.name) if progress else None
                for chunk in iter(lambda: resp.read(CHUNK), b""):
                    out.write(chunk)
                    h_md5.update(chunk)
                    h_sha.update(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                if bar is not None:
                    bar.close()
                out.flush()
                os.fsync(out.fileno())
            got_md5, got_sha = h_md5.hexdigest(), h_sha.hexdigest()
            if md5 and got_md5 != md5.lower():
                raise ChecksumError(f"{url}: md5 {got_md5} differs from the published {md5}")
            if sha256 and got_sha != sha256.lower():
                raise ChecksumError(f"{url}: sha256 {got_sha} differs from the expected {sha256}")
            os.replace(tmp, dest)
            return dest
        except ChecksumError as exc:
            last = exc
        except (urllib.error.URLError, OSError) as exc:
            raise DatasetNotFoundError(f"could not download {url}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
    assert last is not None
    raise last


def _progress(total: int, name: str):  # type: ignore[no-untyped-def]
    from tqdm.auto import tqdm

    return tqdm(total=total or None, unit="B", unit_scale=True, desc=name)
