"""Leak-free train / valid / test splits.

A :class:`Split` holds disjoint positions into a dataset's interactions. Every
method keeps each (user, item) pair on one side only (datasets with repeated
pairs must go through :func:`~graphrec.data.preprocess.drop_duplicates` first),
and users or items seen only in valid/test are counted in
:meth:`Split.stats` (cold start), never silently dropped.

Per-user ratio sizes follow RecBole's rule so that both systems split alike:
``n_valid = floor(r_valid * n)``, ``n_test = floor(r_test * n)``, the rest in
train; a user whose share would round to zero but has more than one train
interaction gives one interaction to that part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from graphrec.data.dataset import Dataset, Interactions
from graphrec.data.io import Source, read_table
from graphrec.errors import DataFormatError, GraphrecError
from graphrec.fs import atomic_path
from graphrec.matrices import count_repeats, in_sorted, stable_argsort

PARTS = ("train", "valid", "test")
TimeCutoff = Literal["none", "global", "per-user"]
SplitMethod = Literal["random", "temporal", "user-temporal", "leave-one-out", "fixed", "cold-items"]
#: how :func:`random_split` draws each user's order (see there)
Shuffle = Literal["grouped", "global"]
SHUFFLES: tuple[Shuffle, ...] = ("grouped", "global")


@dataclass(frozen=True)
class SplitStats:
    """Sizes of a split and its cold-start counts.

    Attributes:
        sizes: Interactions per part.
        cold_users: Per valid/test, users with no train interaction.
        cold_items: Per valid/test, items with no train interaction.
        cold_interactions: Per valid/test, interactions of a cold user or item.
    """

    sizes: dict[str, int]
    cold_users: dict[str, int]
    cold_items: dict[str, int]
    cold_interactions: dict[str, int]


@dataclass(frozen=True, eq=False)
class Split:
    """Disjoint positions of a dataset's interactions in train, valid and test.

    Attributes:
        dataset: The dataset split.
        train, valid, test: ``int64`` positions into ``dataset.interactions``.
        method: How it was made (``"random 0.8/0.1/0.1 seed=2020"``).
        time_cutoff: Whether train is cut at a point in time: ``"global"``
            (the whole log, :func:`temporal_split`), ``"per-user"`` (each
            user's history, ``user-temporal`` and ``leave-one-out``) or
            ``"none"``. :meth:`train_view` then also drops side information
            recorded after the cut.
    """

    dataset: Dataset
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    method: str
    time_cutoff: TimeCutoff = "none"

    def __post_init__(self) -> None:
        n = len(self.dataset)
        seen = np.zeros(n, dtype=bool)
        for name in PARTS:
            pos = np.ascontiguousarray(getattr(self, name), dtype=np.int64)
            object.__setattr__(self, name, pos)
            if len(pos) and (pos.min() < 0 or pos.max() >= n):
                raise ValueError(f"split part '{name}' has positions outside [0, {n})")
            seen[pos] = True
        if int(np.count_nonzero(seen)) < sum(len(getattr(self, name)) for name in PARTS):  # a position given twice
            counts = np.bincount(np.concatenate([getattr(self, name) for name in PARTS]), minlength=n)
            raise ValueError(f"split parts overlap at {int(np.count_nonzero(counts > 1))} interactions")
        keys = self.dataset.interactions.pair_keys(self.dataset.num_items)
        train_keys = np.sort(keys[self.train])
        for name in ("valid", "test"):
            leaked = in_sorted(keys[getattr(self, name)], train_keys)
            if leaked.any():
                raise ValueError(f"{int(leaked.sum())} (user, item) pairs of '{name}' are also in train")

    def __repr__(self) -> str:
        return f"Split({self.dataset.name!r}, {self.method}, train={len(self.train)}, valid={len(self.valid)}, test={len(self.test)})"

    def part(self, name: str) -> Interactions:
        """The interactions of ``"train"``, ``"valid"`` or ``"test"``."""
        if name not in PARTS:
            raise ValueError(f"split part must be one of {PARTS}, got {name!r}")
        return self.dataset.interactions.take(getattr(self, name))

    def train_view(self) -> Dataset:
        """The dataset with only the side information that train could know.

        Features derived from user activity must not carry valid/test
        information: a tag that a user applied to a held-out item is a
        user-specific channel to the answer. The view keeps a tag application
        ``(user, item, time)`` only if

        * ``(user, item)`` is not a valid or test pair,
        * the item has at least one train interaction (a new item has no
          user-applied tags yet),
        * for a temporal split, it was applied no later than the cut-off: the
          last train timestamp of the whole log (``time_cutoff="global"``) or
          of that user (``"per-user"``; a user without train interactions
          keeps none).

        ``item_info["tags"]`` is rebuilt from the kept applications; users,
        items and interactions are the dataset's own. Item texts, tag nodes
        and anything else built from side information must start from this
        view (:class:`~graphrec.graph.GraphBuilder` and the experiment
        pipeline do).
        """
        return self._train_view

    @cached_property
    def _train_view(self) -> Dataset:
        ds = self.dataset
        tags = ds.tag_assignments
        if tags is None:
            return ds
        inter = ds.interactions
        held = np.concatenate([self.valid, self.test])
        user, item = tags["user"].to_numpy(np.int64), tags["item"].to_numpy(np.int64)
        keep = ~in_sorted(user * np.int64(ds.num_items) + item, np.sort(inter.pair_keys(ds.num_items)[held]))
        keep &= np.bincount(inter.item[self.train], minlength=ds.num_items)[item] > 0
        if self.time_cutoff != "none" and len(self.train):
            when = tags["timestamp"].to_numpy(np.int64)
            train_ts = _timestamps(ds)[self.train]
            if self.time_cutoff == "global":
                keep &= when <= train_ts.max()
            else:
                last = np.full(ds.num_users, np.iinfo(np.int64).min)
                np.maximum.at(last, inter.user[self.train], train_ts)
                keep &= when <= last[user]
        return ds.with_tags(tags[keep])

    def stats(self) -> SplitStats:
        inter = self.dataset.interactions
        train_u = np.zeros(self.dataset.num_users, dtype=bool)
        train_u[inter.user[self.train]] = True
        train_i = np.zeros(self.dataset.num_items, dtype=bool)
        train_i[inter.item[self.train]] = True
        cold_u, cold_i, cold_n = {}, {}, {}
        for name in ("valid", "test"):
            pos = getattr(self, name)
            u, i = inter.user[pos], inter.item[pos]
            cold_u[name] = len(np.unique(u[~train_u[u]]))
            cold_i[name] = len(np.unique(i[~train_i[i]]))
            cold_n[name] = int((~train_u[u] | ~train_i[i]).sum())
        return SplitStats({p: len(getattr(self, p)) for p in PARTS}, cold_u, cold_i, cold_n)

    def export_tsv(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``train.tsv``, ``valid.tsv``, ``test.tsv`` (``user``, ``item``, ``timestamp``; raw ids).

        Each file is written atomically. Peers such as RecBole read the same
        files, so both systems train on identical data.
        """
        out = Path(out_dir)
        paths = {}
        for name in PARTS:
            frame = self.dataset.frame(getattr(self, name)).drop(columns=["rating"])
            path = out / f"{name}.tsv"
            with atomic_path(path) as tmp:
                frame.to_csv(tmp, sep="\t", index=False)
            paths[name] = path
        return paths


def _require_unique_pairs(dataset: Dataset) -> None:
    repeated = count_repeats(dataset.interactions.pair_keys(dataset.num_items))
    if repeated:
        raise GraphrecError(
            f"{dataset.name}: {repeated} repeated (user, item) pairs; "
            "a pair could land in train and test. Apply graphrec.data.drop_duplicates first."
        )


def _check_ratios(ratios: Sequence[float]) -> np.ndarray:
    r = np.asarray(ratios, dtype=np.float64)
    if r.shape != (3,) or (r < 0).any() or r[0] <= 0:
        raise ValueError(f"ratios must be three non-negative numbers (train, valid, test) with train > 0, got {list(ratios)}")
    return r / r.sum()


def _part_sizes(n: np.ndarray, ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RecBole's per-group sizes (``_calcu_split_ids``), vectorised over groups."""
    n = n.astype(np.int64)
    valid = np.floor(ratios[1] * n).astype(np.int64)
    test = np.floor(ratios[2] * n).astype(np.int64)
    train = n - valid - test
    for part, r in ((test, ratios[2]), (valid, ratios[1])):
        bump = (train > 1) & (r * n > 0) & (r * n < 1)
        part += bump
        train -= bump
    return train, valid, test


def _assign_by_rank(order: np.ndarray, counts: np.ndarray, size: int, ratios: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cut each group of ``order`` into train/valid/test.

    ``order`` holds positions (into a log of ``size``) grouped: the first
    ``counts[0]`` are group 0's, in the order they are cut, and so on. Each
    group's first share goes to train, the next to valid, the rest to test.
    """
    parts = np.column_stack(_part_sizes(counts, ratios)).ravel()  # train, valid, test sizes of group 0, then 1...
    label = np.repeat(np.tile(np.arange(3, dtype=np.int8), len(counts)), parts)
    at = np.full(size, -1, dtype=np.int8)  # each position's part, in position order: no sort of the parts
    at[order] = label
    return tuple(np.flatnonzero(at == k) for k in range(3))


def _grouped(perm: np.ndarray, group: np.ndarray, num_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """``perm`` (positions) regrouped by ``group``, keeping ``perm``'s order within a group, and the group sizes."""
    g = group[perm]
    return perm[stable_argsort(g)], np.bincount(g, minlength=num_groups)


def _shuffled_within(group: np.ndarray, num_groups: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Positions grouped by ``group`` (one sort), each group in a uniformly random order, and the group sizes.

    Within its group each position gets a uniform random integer key below the group's own key range, so one
    stable argsort of ``group << s | random`` over the grouped positions orders every group at random while
    moving entries only inside it: its memory accesses stay local (a permutation of the whole log is a random
    access per entry, which grows faster than the log once it leaves the CPU's cache). Ties of the random keys
    (``s`` >= 32 bits for up to 2^31 groups) keep the log's order.
    """
    by_group = stable_argsort(group)
    counts = np.bincount(group, minlength=num_groups)
    shift = 63 - max(1, int(num_groups - 1).bit_length())
    key = np.repeat(np.arange(num_groups, dtype=np.int64) << shift, counts)
    key |= rng.integers(0, 1 << shift, size=len(group), dtype=np.int64)
    return by_group[np.argsort(key, kind="stable")], counts


def _per_user_order(positions: np.ndarray | None, user: np.ndarray, num_users: int, rng: np.random.Generator,
                    shuffle: Shuffle) -> tuple[np.ndarray, np.ndarray]:
    """``positions`` (None: the whole log) grouped by user, each user's in a random order drawn by ``shuffle``
    (:func:`random_split`), and the users' counts."""
    if shuffle == "global":
        perm = rng.permutation(len(user) if positions is None else len(positions))
        return _grouped(perm if positions is None else positions[perm], user, num_users)
    if shuffle == "grouped":
        if positions is None:
            return _shuffled_within(user, num_users, rng)
        order, counts = _shuffled_within(user[positions], num_users, rng)
        return positions[order], counts
    raise ValueError(f"shuffle must be one of {list(SHUFFLES)}, got {shuffle!r}")


def random_split(dataset: Dataset, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 2020,
                 shuffle: Shuffle = "grouped") -> Split:
    """Per-user random split: each user's interactions in a uniformly random order, cut by ``ratios``.

    Args:
        shuffle: How that order is drawn. Both give every user a uniformly random order, but not the same one
            for a seed. ``"grouped"`` groups each user's interactions, then shuffles inside each group (two
            sorts whose memory accesses stay local). ``"global"`` permutes the whole log, then regroups it by user:
            the split of every figure graphrec recorded before 2026-12-07 (the experiment files that hold them
            say ``shuffle: global``); its random accesses over the whole log grow faster than the log once it
            leaves the CPU's cache (``python experiments/bench_split.py`` times both).
    """
    _require_unique_pairs(dataset)
    r = _check_ratios(ratios)
    user = dataset.interactions.user
    order, counts = _per_user_order(None, user, dataset.num_users, np.random.default_rng(seed), shuffle)
    train, valid, test = _assign_by_rank(order, counts, len(user), r)
    return Split(dataset, train, valid, test, f"random {_fmt(r)} seed={seed}" + _shuffle_name(shuffle))


def _shuffle_name(shuffle: Shuffle) -> str:
    """The method name's suffix: the global shuffle's splits were recorded as "random ... seed=S", which keeps
    that meaning."""
    return " shuffle=grouped" if shuffle == "grouped" else ""


def temporal_split(dataset: Dataset, ratios: Sequence[float] = (0.8, 0.1, 0.1), per_user: bool = False) -> Split:
    """Temporal split: the oldest interactions train, the newest test.

    Args:
        per_user: Cut each user's history by time (``True``), or the whole log
            at two global time points (``False``). Ties keep file order.
    """
    _require_unique_pairs(dataset)
    ts = _timestamps(dataset)
    r = _check_ratios(ratios)
    pos = np.arange(len(ts))
    if per_user:
        user = dataset.interactions.user
        order = np.lexsort((pos, ts, user))
        counts = np.bincount(user, minlength=dataset.num_users)
        train, valid, test = _assign_by_rank(order, counts, len(ts), r)
        return Split(dataset, train, valid, test, f"user-temporal {_fmt(r)}", time_cutoff="per-user")
    order = np.lexsort((pos, ts))
    train, valid, test = _assign_by_rank(order, np.array([len(ts)]), len(ts), r)
    return Split(dataset, train, valid, test, f"temporal {_fmt(r)}", time_cutoff="global")


def leave_one_out(dataset: Dataset, valid: bool = True) -> Split:
    """Each user's last interaction is test, the one before it valid, the rest train.

    Users with one interaction keep it in train; with two (and ``valid``), the
    last goes to test and none to valid.
    """
    _require_unique_pairs(dataset)
    ts = _timestamps(dataset)
    user = dataset.interactions.user
    order = np.lexsort((np.arange(len(ts)), ts, user))
    g = user[order]
    counts = np.bincount(g, minlength=dataset.num_users)
    ends = np.cumsum(counts)
    from_end = ends[g] - np.arange(len(order))  # 1 for a user's last interaction
    n = counts[g]
    is_test = (from_end == 1) & (n >= 2)
    is_valid = valid & (from_end == 2) & (n >= 3)
    return Split(dataset, np.sort(order[~is_test & ~is_valid]), np.sort(order[is_valid]), np.sort(order[is_test]),
                 "leave-one-out" + ("" if valid else " (no valid)"), time_cutoff="per-user")


def fixed_split(dataset: Dataset, name: str) -> Split:
    """An official split that the dataset ships (ML-100K ``u1``-``u5``, ``ua``, ``ub``;
    LightGCN-format ``official``), read from the dataset's source files.

    Pairs in the split files that the dataset no longer holds (after filtering)
    are left out; an id unknown to the dataset is a format error.
    """
    if name not in dataset.fixed_splits:
        offered = ", ".join(dataset.fixed_splits) or "none"
        raise GraphrecError(f"{dataset.name} has no fixed split {name!r}; it offers: {offered}")
    if dataset.source is None:
        raise GraphrecError(f"{dataset.name}: fixed splits need the source files, but the dataset has no source")
    if dataset.name == "ml-100k":
        from graphrec.data.movielens import ML100K_RATING_FIELDS, DatasetFiles, get_spec

        files = DatasetFiles(get_spec("ml-100k"), dataset.source, archive=dataset.source.suffix == ".zip")
        parts = {}
        for suffix, part in (("base", "train"), ("test", "test")):
            src = files.source(f"{name}.{suffix}")
            frame = read_table(src, ML100K_RATING_FIELDS, "\t", encoding="ISO-8859-1")
            parts[part] = _positions_of_pairs(dataset, src, frame["user"].to_numpy(), frame["item"].to_numpy())
        return Split(dataset, parts["train"], np.empty(0, dtype=np.int64), parts["test"], f"fixed {name}")
    from graphrec.data.formats import read_lightgcn_file

    parts = {}
    for part in ("train", "test"):
        src = Source(dataset.source / f"{part}.txt")
        users, items, _ = read_lightgcn_file(src)
        parts[part] = _positions_of_pairs(dataset, src, users, items)
    return Split(dataset, parts["train"], np.empty(0, dtype=np.int64), parts["test"], f"fixed {name}")


def _positions_of_pairs(dataset: Dataset, src: Source, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    u = dataset.users.encode(users, unknown="mask")
    i = dataset.items.encode(items, unknown="mask")
    for kind, idx, raw in (("user", u, users), ("item", i, items)):
        if (idx < 0).any():
            row = int(np.argmax(idx < 0))
            raise DataFormatError(src, f"{kind} id {raw[row]} is not in dataset {dataset.name}", line=row + 1)
    keys = dataset.interactions.pair_keys(dataset.num_items)
    index = pd.Index(keys)
    if not index.is_unique:
        _require_unique_pairs(dataset)
    pos = index.get_indexer(u * np.int64(dataset.num_items) + i)
    return np.sort(pos[pos >= 0])


def _timestamps(dataset: Dataset) -> np.ndarray:
    ts = dataset.interactions.timestamp
    if ts is None:
        raise GraphrecError(f"{dataset.name} has no timestamps; use a random split instead of a temporal one")
    return ts


def _fmt(r: np.ndarray) -> str:
    return "/".join(f"{x:g}" for x in np.round(r, 6))


def cold_item_split(dataset: Dataset, item_fraction: float = 0.1, ratios: Sequence[float] = (0.8, 0.1, 0.1),
                    seed: int = 2020, shuffle: Shuffle = "grouped") -> Split:
    """Cold-start items: a random ``item_fraction`` of the items with interactions is held out entirely.

    Every interaction with a held-out item goes to test, so the model never
    sees them in train; the other interactions are split per user by
    ``ratios`` (RecBole's rule, each user's order drawn as ``shuffle`` says:
    :func:`random_split`), their test part also going to test. Which
    items are cold: :meth:`Split.stats` (``cold_items["test"]``), or the items
    of test without train interactions.
    """
    if not 0 < item_fraction < 1:
        raise ValueError(f"item_fraction must be in (0, 1), got {item_fraction}")
    _require_unique_pairs(dataset)
    r = _check_ratios(ratios)
    inter = dataset.interactions
    rng = np.random.default_rng(seed)
    active = np.flatnonzero(np.bincount(inter.item, minlength=dataset.num_items))
    cold = rng.choice(active, size=max(1, round(item_fraction * len(active))), replace=False)
    is_cold = np.isin(inter.item, cold)
    warm = np.flatnonzero(~is_cold)
    order, counts = _per_user_order(warm, inter.user, dataset.num_users, rng, shuffle)
    train, valid, test = _assign_by_rank(order, counts, len(inter), r)
    test = np.sort(np.concatenate([test, np.flatnonzero(is_cold)]))
    method = f"cold-items {item_fraction:g} + random {_fmt(r)} seed={seed}" + _shuffle_name(shuffle)
    return Split(dataset, train, valid, test, method)


def make_split(dataset: Dataset, method: str, *, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 2020,
               fixed: str | None = None, cold_fraction: float = 0.1, shuffle: Shuffle = "grouped") -> Split:
    """Dispatch by method name: ``random``, ``temporal``, ``user-temporal``, ``leave-one-out``, ``fixed``, ``cold-items``
    (``shuffle``: :func:`random_split`'s, also read by ``cold-items``)."""
    if method == "random":
        return random_split(dataset, ratios, seed, shuffle)
    if method == "cold-items":
        return cold_item_split(dataset, cold_fraction, ratios, seed, shuffle)
    if method == "temporal":
        return temporal_split(dataset, ratios, per_user=False)
    if method == "user-temporal":
        return temporal_split(dataset, ratios, per_user=True)
    if method == "leave-one-out":
        return leave_one_out(dataset)
    if method == "fixed":
        if fixed is None:
            raise GraphrecError(f"method 'fixed' needs a split name; {dataset.name} offers: {', '.join(dataset.fixed_splits) or 'none'}")
        return fixed_split(dataset, fixed)
    raise GraphrecError(f"unknown split method {method!r}; expected random, temporal, user-temporal, leave-one-out, "
                        "fixed or cold-items")


__all__ = ["Split", "SplitStats", "fixed_split", "leave_one_out", "make_split", "random_split", "temporal_split"]
