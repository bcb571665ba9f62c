"""The write-ahead log of a served run (`<run>/serving/events.log`): every accepted write, appended and fsync'd before it is acknowledged.

One record per line: ``<crc32 of the JSON, 8 hex digits> <JSON>\\n``. A
record is complete only with its newline and a matching checksum, so a
write cut off by a crash (a *torn* last record) is recognised: on opening,
:meth:`EventLog.replay` drops it with a warning and truncates the file back
to the last complete record before anything new is appended. A damaged
record *before* the last one is not a torn write but a corrupted file, and
is an error naming the file and line (nothing is silently skipped).

Several server processes may share one log (``graphrec serve --workers
N``): appends take an exclusive ``flock`` and every process reads the
records the others appended (:meth:`EventLog.read_new`) before it answers,
so a write acknowledged by one worker is seen by the next request whichever
worker takes it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from graphrec.errors import GraphrecError

log = logging.getLogger(__name__)


def encode_record(record: dict[str, Any]) -> bytes:
    """One log line: ``crc32 JSON\\n`` (compact JSON, UTF-8)."""
    body = json.dumps(record, separators=(",", ":")).encode()  # ASCII: escapes every non-ASCII character
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode_record(line: bytes) -> dict[str, Any] | None:
    """The record of a complete line (with its newline), or None where the checksum or JSON is wrong."""
    if len(line) < 11 or not line.endswith(b"\n") or line[8:9] != b" ":
        return None
    body = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        record = json.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


class EventLog:
    """An append-only, checksummed, fsync'd log of JSON records (see the module's docstring).

    Args:
        path: The log file (created with its folder where missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self.offset = 0  # bytes of the file this process has read and applied
        self.records = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the log's exclusive lock (between processes) for a read-then-append."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def replay(self) -> list[dict[str, Any]]:
        """Every record from the start, for a server starting up; a torn last record is dropped and cut off.

        Raises:
            GraphrecError: a damaged record followed by complete ones (the file is corrupted), naming the line.
        """
        with self.locked():
            data = _read_from(self._fd, 0)
            records, good_end = [], 0
            lines = data.splitlines(keepends=True)
            for number, line in enumerate(lines, start=1):
                record = decode_record(line)
                if record is None:
                    if number == len(lines):  # the last record: a write cut off by a crash
                        log.warning("%s: dropped a torn last record (line %d, %d bytes); it was never acknowledged",
                                    self.path, number, len(line))
                        os.ftruncate(self._fd, good_end)
                        os.fsync(self._fd)
                        break
                    raise GraphrecError(f"{self.path} line {number}: damaged record (checksum or JSON does not match) "
                                        "followed by complete ones; the log is corrupted, not torn: restore it from "
                                        "a backup or move it aside")
                records.append(record)
                good_end += len(line)
            self.offset, self.records = good_end, len(records)
        return records

    def has_new(self) -> bool:
        """Whether the file holds bytes this process has not read (one ``fstat``)."""
        return os.fstat(self._fd).st_size != self.offset

    def read_new(self) -> list[dict[str, Any]]:
        """Complete records other processes appended since this one last read (an incomplete tail waits)."""
        if os.fstat(self._fd).st_size == self.offset:
            return []
        return self._take(_read_from(self._fd, self.offset))

    def _take(self, data: bytes) -> list[dict[str, Any]]:
        out = []
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # being written by another process right now
            record = decode_record(line)
            if record is None:
                raise GraphrecError(f"{self.path}: damaged record at byte {self.offset}")
            out.append(record)
            self.offset += len(line)
        self.records += len(out)
        return out

    def append(self, record: dict[str, Any]) -> None:
        """Append one record and fsync it. Call inside :meth:`locked`, after :meth:`read_new`.

        Bytes past what :meth:`read_new` could read are an incomplete record of a writer that died holding the
        lock (a live one would still hold it): they are cut off first, so the new record starts on a line of
        its own and never merges with them.
        """
        size = os.fstat(self._fd).st_size
        if size != self.offset:
            log.warning("%s: dropped an incomplete record of %d bytes left by a writer that died; it was never "
                        "acknowledged", self.path, size - self.offset)
            os.ftruncate(self._fd, self.offset)
        line = encode_record(record)
        written = os.write(self._fd, line)
        if written != len(line):  # a full disk: cut the partial record off so the log stays readable
            os.ftruncate(self._fd, self.offset)
            raise OSError(f"{self.path}: wrote {written} of {len(line)} bytes (disk full?)")
        os.fsync(self._fd)
        self.offset += len(line)
        self.records += 1


def _read_from(fd: int, offset: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)
