"""Typed, validated containers for a recommendation dataset."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from graphrec.data.vocab import Vocabulary


@dataclass(frozen=True, eq=False)
class Interactions:
    """User-item interactions as parallel arrays of contiguous indices.

    Attributes:
        user: ``int64 [n]`` user indices.
        item: ``int64 [n]`` item indices.
        rating: ``float32 [n]`` explicit rating, or the weight (1.0) of an
            implicit interaction.
        timestamp: ``int64 [n]`` seconds since the epoch, or ``None`` when the
            source has no times (the LightGCN text format).
    """

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "user", np.ascontiguousarray(self.user, dtype=np.int64))
        object.__setattr__(self, "item", np.ascontiguousarray(self.item, dtype=np.int64))
        object.__setattr__(self, "rating", np.ascontiguousarray(self.rating, dtype=np.float32))
        if self.timestamp is not None:
            object.__setattr__(self, "timestamp", np.ascontiguousarray(self.timestamp, dtype=np.int64))
        n = len(self.user)
        for name in ("item", "rating", "timestamp"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"Interactions: '{name}' has {len(arr)} entries, 'user' has {n}")
            if arr is not None and arr.ndim != 1:
                raise ValueError(f"Interactions: '{name}' must be one-dimensional, got shape {arr.shape}")

    def __len__(self) -> int:
        return len(self.user)

    def take(self, positions: np.ndarray) -> Interactions:
        """The interactions at ``positions`` (indices or a boolean mask)."""
        ts = self.timestamp[positions] if self.timestamp is not None else None
        return Interactions(self.user[positions], self.item[positions], self.rating[positions], ts)

    def pair_keys(self, num_items: int) -> np.ndarray:
        """``user * num_items + item``: one int64 key per (user, item) pair."""
        return self.user * np.int64(num_items) + self.item


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset: interactions plus the users' and items' vocabularies and tables.

    Attributes:
        name: Dataset name (``"ml-100k"``, or the file name for a generic log).
        interactions: The interactions, in the source file's order.
        users: User vocabulary; index ``u`` is row ``u`` of ``user_info``.
        items: Item vocabulary; index ``i`` is row ``i`` of ``item_info``.
        item_info: One row per item (index ``0..num_items-1``): text fields
            such as ``title`` (str), ``genres`` and ``tags`` (lists of str),
            ``year`` (nullable Int64). Absent fields are absent columns.
        user_info: One row per user: attributes such as ``age``, ``gender``,
            ``occupation``.
        tag_assignments: Raw tag applications (``user``, ``item`` indices,
            ``tag``, ``timestamp``) where the dataset has them.
        implicit: Whether ``rating`` holds weights of implicit feedback.
        source: Where the files were read from (folder or zip), for the
            dataset's official fixed splits.
        fixed_splits: The official splits the source ships.
        text_fields: ``item_info`` columns that make up an item's text by
            default, in order (an item table's text columns); None: the
            MovieLens template (title, genres, tags).
        attributes: ``item_info`` columns that become attribute nodes by
            default (an item table's attribute columns); None: ``genre``
            where the items have genres.
        repeats_dropped: Interactions the loader left out as repeats of a
            (user, item) pair it kept (:func:`~graphrec.data.preprocess.drop_duplicates`).
    """

    name: str
    interactions: Interactions
    users: Vocabulary
    items: Vocabulary
    item_info: pd.DataFrame = field(default_factory=pd.DataFrame)
    user_info: pd.DataFrame = field(default_factory=pd.DataFrame)
    tag_assignments: pd.DataFrame | None = None
    implicit: bool = False
    source: Path | None = None
    fixed_splits: tuple[str, ...] = ()
    text_fields: tuple[str, ...] | None = None
    attributes: tuple[str, ...] | None = None
    repeats_dropped: int = 0

    def __post_init__(self) -> None:
        if self.item_info.empty and len(self.item_info.columns) == 0:
            object.__setattr__(self, "item_info", pd.DataFrame(index=pd.RangeIndex(len(self.items))))
        if self.user_info.empty and len(self.user_info.columns) == 0:
            object.__setattr__(self, "user_info", pd.DataFrame(index=pd.RangeIndex(len(self.users))))
        self.validate()

    @property
    def num_users(self) -> int:
        return len(self.users)

    @property
    def num_items(self) -> int:
        return len(self.items)

    def __len__(self) -> int:
        return len(self.interactions)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, users={self.num_users}, items={self.num_items}, "
            f"interactions={len(self)}, implicit={self.implicit})"
        )

    def validate(self) -> None:
        """Check that indices are in range and tables line up with the vocabularies.

        Raises:
            ValueError: naming the first inconsistency.
        """
        inter = self.interactions
        for name, arr, size in (("user", inter.user, self.num_users), ("item", inter.item, self.num_items)):
            if len(arr) and (arr.min() < 0 or arr.max() >= size):
                bad = arr[(arr < 0) | (arr >= size)][:5].tolist()
                raise ValueError(f"{self.name}: {name} indices out of range [0, {size}): {bad}")
        for name, table, size in (("item_info", self.item_info, self.num_items), ("user_info", self.user_info, self.num_users)):
            if len(table) != size or not table.index.equals(pd.RangeIndex(size)):
                raise ValueError(f"{self.name}: {name} must have one row per index 0..{size - 1}, found {len(table)} rows")

    def frame(self, positions: np.ndarray | None = None) -> pd.DataFrame:
        """The interactions (or those at ``positions``) with raw ids, as a frame."""
        inter = self.interactions if positions is None else self.interactions.take(positions)
        data = {
            "user": self.users.decode(inter.user),
            "item": self.items.decode(inter.item),
            "rating": inter.rating,
        }
        if inter.timestamp is not None:
            data["timestamp"] = inter.timestamp
        return pd.DataFrame(data)

    def with_interactions(self, interactions: Interactions, *, implicit: bool | None = None) -> Dataset:
        """A copy with other interactions over the same vocabularies."""
        return replace(self, interactions=interactions, implicit=self.implicit if implicit is None else implicit)

    @property
    def default_item_attributes(self) -> tuple[str, ...]:
        """The attribute node types a graph of this dataset has unless ``graph.item_attributes`` says otherwise."""
        if self.attributes is not None:
            return self.attributes
        return ("genre",) if "genres" in self.item_info.columns else ()

    def with_item_info(self, item_info: pd.DataFrame, *, text_fields: tuple[str, ...] | None = None,
                       attributes: tuple[str, ...] | None = None) -> Dataset:
        """A copy with another item table (one row per item index), its text fields and attribute columns."""
        return replace(self, item_info=item_info.reset_index(drop=True), text_fields=text_fields, attributes=attributes)

    def with_tags(self, tags: pd.DataFrame | None) -> Dataset:
        """A copy whose tag applications are ``tags`` and whose ``item_info["tags"]`` is rebuilt from them."""
        if tags is None:
            return replace(self, tag_assignments=None)
        item_info = self.item_info.assign(tags=tags_per_item(tags, self.num_items))
        return replace(self, tag_assignments=tags.reset_index(drop=True), item_info=item_info)

    def compact(self) -> Dataset:
        """Drop users and items without interactions, renumbering the rest.

        Official fixed splits no longer apply and are dropped.
        """
        inter = self.interactions
        keep_u = np.flatnonzero(np.bincount(inter.user, minlength=self.num_users))
        keep_i = np.flatnonzero(np.bincount(inter.item, minlength=self.num_items))
        new_u = np.full(self.num_users, -1, dtype=np.int64)
        new_u[keep_u] = np.arange(len(keep_u))
        new_i = np.full(self.num_items, -1, dtype=np.int64)
        new_i[keep_i] = np.arange(len(keep_i))
        tags = self.tag_assignments
        if tags is not None:
            tags = tags.assign(user=new_u[tags["user"].to_numpy()], item=new_i[tags["item"].to_numpy()])
            tags = tags[(tags["user"] >= 0) & (tags["item"] >= 0)].reset_index(drop=True)
        return replace(
            self,
            interactions=Interactions(new_u[inter.user], new_i[inter.item], inter.rating, inter.timestamp),
            users=self.users.subset(keep_u),
            items=self.items.subset(keep_i),
            user_info=self.user_info.iloc[keep_u].reset_index(drop=True),
            item_info=self.item_info.iloc[keep_i].reset_index(drop=True),
            tag_assignments=tags,
            fixed_splits=(),
        )


def tags_per_item(tags: pd.DataFrame, num_items: int) -> np.ndarray:
    """Each item's distinct tags (case-folded), most applied first.

    Args:
        tags: Tag applications with ``item`` (index) and ``tag`` columns.
        num_items: Length of the result.

    Returns:
        ``object [num_items]``: a list of str per item (empty without tags).
    """
    norm = tags.assign(tag=tags["tag"].str.lower())
    counts = norm.groupby(["item", "tag"], sort=False).size().reset_index(name="n")
    counts = counts.sort_values(["item", "n", "tag"], ascending=[True, False, True])
    grouped = counts.groupby("item")["tag"].agg(list)
    out = np.empty(num_items, dtype=object)
    out[:] = [[] for _ in range(num_items)]
    out[grouped.index.to_numpy()] = grouped.to_numpy()
    return out
