"""Mapping between raw ids (as in the data files) and contiguous indices."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np
import pandas as pd

from graphrec.errors import UnknownIdError

UnknownPolicy = Literal["raise", "mask"]


class Vocabulary:
    """Raw ids of one entity type (users, items, genres, ...) and their indices.

    Index ``i`` belongs to ``ids[i]``; ids are unique. Lookups are vectorised
    through a :class:`pandas.Index`.

    Unknown ids follow an explicit policy, chosen per call:

    * ``"raise"`` (default): :class:`~graphrec.errors.UnknownIdError` naming
      up to five of the unknown ids;
    * ``"mask"``: unknown ids get index ``-1``, for the caller to handle.

    Args:
        ids: The raw ids, in index order. Integers stay integers; anything else
            is stored as strings.
        name: What the ids are ("user", "item", ...), used in messages.
    """

    def __init__(self, ids: Iterable[object] | np.ndarray | pd.Index, name: str = "entity") -> None:
        index = pd.Index(ids)
        if index.dtype.kind not in "iu":
            index = pd.Index(index.astype(str), dtype=object)
        if not index.is_unique:
            dup = index[index.duplicated()].unique()[:5].tolist()
            raise ValueError(f"{name} vocabulary: ids must be unique, found duplicates {dup}")
        self._index = index
        self.name = name

    @classmethod
    def from_values(cls, values: np.ndarray | pd.Series, name: str = "entity") -> Vocabulary:
        """The vocabulary of the distinct values in ``values``, sorted."""
        return cls(np.sort(pd.unique(np.asarray(values))), name=name)

    @property
    def ids(self) -> np.ndarray:
        """Raw ids in index order (a read-only view)."""
        arr = self._index.to_numpy()
        arr.flags.writeable = False
        return arr

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, raw: object) -> bool:
        return self._coerce_scalar(raw) in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._index.equals(other._index)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Vocabulary(name={self.name!r}, size={len(self)})"

    def _coerce_scalar(self, raw: object) -> object:
        if self._index.dtype.kind in "iu":
            return raw
        return str(raw)

    def index(self, raw: object) -> int:
        """Index of one raw id; raises :class:`UnknownIdError` if absent."""
        return int(self.encode([raw])[0])

    def encode(self, raw: Iterable[object] | np.ndarray, unknown: UnknownPolicy = "raise") -> np.ndarray:
        """Indices (``int64``) of raw ids.

        Args:
            raw: Raw ids.
            unknown: ``"raise"`` or ``"mask"`` (unknown ids become ``-1``).
        """
        values = np.asarray(list(raw) if not isinstance(raw, (np.ndarray, pd.Series, pd.Index)) else raw)
        if self._index.dtype.kind not in "iu" and values.dtype.kind != "O":
            values = values.astype(str)
        out = self._index.get_indexer(pd.Index(values)).astype(np.int64)
        if unknown == "raise":
            missing = out < 0
            if missing.any():
                bad = pd.unique(values[missing])
                shown = ", ".join(repr(x.item() if hasattr(x, "item") else x) for x in bad[:5])
                more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
                raise UnknownIdError(f"unknown {self.name} id(s): {shown}{more} ({len(self)} known)")
        elif unknown != "mask":
            raise ValueError(f"unknown-id policy must be 'raise' or 'mask', got {unknown!r}")
        return out

    def decode(self, index: Iterable[int] | np.ndarray) -> np.ndarray:
        """Raw ids of indices; raises :class:`IndexError` for out-of-range indices."""
        idx = np.asarray(index, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"{self.name} index out of range [0, {len(self)}): {idx[(idx < 0) | (idx >= len(self))][:5].tolist()}")
        return self._index.to_numpy()[idx]

    def subset(self, keep: np.ndarray) -> Vocabulary:
        """A vocabulary of the ids at the (sorted) indices ``keep``."""
        return Vocabulary(self._index[np.asarray(keep, dtype=np.int64)], name=self.name)
