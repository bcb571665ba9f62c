"""An on-disk store of text embeddings, keyed by the sha256 of each text.

One file per encoder configuration (model identity, pooling, max length,
normalisation, and the dtype the model computed in: vectors from a bf16 run on
a GPU are never served to an fp32 run, nor the other way round; see
:meth:`graphrec.text.TextEncoder.config_key`). Vectors are stored as float32
whatever the compute dtype. The file holds the text keys, the vectors and a
checksum of both; it is written atomically, and a file that is truncated,
unreadable or whose checksum fails is reported with a warning and rebuilt,
never used.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from pathlib import Path

import numpy as np

from graphrec.fs import atomic_path


def text_key(text: str) -> bytes:
    """sha256 digest (32 bytes) of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class CacheCorruptWarning(UserWarning):
    """An embedding cache file was unreadable or failed its checksum and is rebuilt."""


class EmbeddingCache:
    """Vectors of one encoder configuration, in ``<folder>/<config_key>.npz``.

    Args:
        path: The cache file.
        dim: Vector size; a file with another size is treated as corrupt.
    """

    def __init__(self, path: str | Path, dim: int | None = None) -> None:
        self.path = Path(path)
        self.dim = dim
        self._keys: dict[bytes, int] = {}
        self._vectors = np.zeros((0, dim or 0), dtype=np.float32)
        self._load()

    def __len__(self) -> int:
        return len(self._keys)

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            with np.load(self.path, allow_pickle=False) as f:
                keys, vectors, checksum = f["keys"], f["vectors"], bytes(f["checksum"])
            if keys.ndim != 2 or keys.shape[1] != 32 or vectors.ndim != 2 or len(keys) != len(vectors):
                raise ValueError("inconsistent shapes")
            if self.dim is not None and vectors.shape[1] != self.dim:
                raise ValueError(f"vectors have {vectors.shape[1]} dimensions, expected {self.dim}")
            if _checksum(keys, vectors) != checksum:
                raise ValueError("checksum mismatch")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            warnings.warn(f"embedding cache {self.path} is unreadable ({exc}); rebuilding it", CacheCorruptWarning, stacklevel=3)
            return
        self._vectors = vectors.astype(np.float32, copy=False)
        self._keys = {k.tobytes(): i for i, k in enumerate(keys)}
        self.dim = vectors.shape[1]

    def lookup(self, keys: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Positions of ``keys`` in the store (-1 where missing) and a hit mask."""
        pos = np.fromiter((self._keys.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        return pos, pos >= 0

    def vectors(self, positions: np.ndarray) -> np.ndarray:
        return self._vectors[positions]

    def add(self, keys: list[bytes], vectors: np.ndarray) -> None:
        """Add vectors for new keys (in memory; :meth:`save` writes them)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.dim is None or len(self._keys) == 0:
            self.dim = vectors.shape[1]
            self._vectors = np.zeros((0, self.dim), dtype=np.float32)
        fresh = [i for i, k in enumerate(keys) if k not in self._keys]
        start = len(self._vectors)
        for j, i in enumerate(fresh):
            self._keys[keys[i]] = start + j
        self._vectors = np.concatenate([self._vectors, vectors[fresh]])

    def save(self) -> None:
        keys = np.frombuffer(b"".join(self._keys), dtype=np.uint8).reshape(-1, 32)
        order = np.fromiter(self._keys.values(), dtype=np.int64, count=len(self._keys))
        vectors = self._vectors[order]
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, keys=keys, vectors=vectors, checksum=np.frombuffer(_checksum(keys, vectors), dtype=np.uint8))


def _checksum(keys: np.ndarray, vectors: np.ndarray) -> bytes:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(keys).tobytes())
    h.update(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    return h.digest()
