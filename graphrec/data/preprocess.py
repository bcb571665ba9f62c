"""Turning raw interactions into training data: duplicates, implicit feedback, k-cores.

Duplicate policy: a (user, item) pair may occur several times in a log. Splits
assume each pair occurs once, so that no pair can be in train and test at the
same time; :func:`drop_duplicates` enforces that. The default, ``"last"``,
keeps the most recent occurrence (by timestamp, then by file order), as a
re-rating replaces the earlier one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np

from graphrec.data.dataset import Dataset, Interactions
from graphrec.matrices import count_repeats

DuplicatePolicy = Literal["last", "first", "max", "error"]


def duplicate_mask(dataset: Dataset) -> np.ndarray:
    """Boolean ``[n]``: True where the (user, item) pair occurred earlier in the file."""
    keys = dataset.interactions.pair_keys(dataset.num_items)
    _, first = np.unique(keys, return_index=True)
    mask = np.ones(len(keys), dtype=bool)
    mask[first] = False
    return mask


def one_per_key(keys: np.ndarray, *ties: np.ndarray, last: bool = False) -> np.ndarray:
    """Positions of one entry per distinct key, in their original order: of each key's entries ordered by
    ``ties`` (most significant first), then by position, the first (``last``: the last)."""
    order = np.lexsort((np.arange(len(keys)), *reversed(ties), keys))
    ordered = keys[order]
    pick = np.r_[ordered[1:] != ordered[:-1], True] if last else np.r_[True, ordered[1:] != ordered[:-1]]
    return np.sort(order[pick])


def drop_duplicates(dataset: Dataset, policy: DuplicatePolicy = "last") -> Dataset:
    """Keep one interaction per (user, item) pair.

    Args:
        policy: ``"last"`` keeps the latest (by timestamp, ties by file order),
            ``"first"`` the earliest, ``"max"`` the highest rating, and
            ``"error"`` raises ``ValueError`` naming a duplicated pair.

    Returns:
        The dataset with the kept interactions in their original order.
    """
    inter = dataset.interactions
    n = len(inter)
    keys = inter.pair_keys(dataset.num_items)
    ts = inter.timestamp if inter.timestamp is not None else np.zeros(n, dtype=np.int64)
    if policy not in ("last", "first", "max", "error"):
        raise ValueError(f"duplicate policy must be 'last', 'first', 'max' or 'error', got {policy!r}")
    if not count_repeats(keys):  # the usual case, one sort instead of a 3-key lexsort
        return dataset
    if policy == "error":
        dup = duplicate_mask(dataset)
        if dup.any():
            p = int(np.argmax(dup))
            raw_u, raw_i = dataset.users.decode([inter.user[p]])[0], dataset.items.decode([inter.item[p]])[0]
            raise ValueError(f"{dataset.name}: (user {raw_u}, item {raw_i}) occurs more than once "
                             f"(first repeat at row {p + 1}); {int(dup.sum())} repeats in all")
        return dataset
    if policy == "max":
        kept = one_per_key(keys, inter.rating, ts, last=True)
    else:
        kept = one_per_key(keys, ts, last=policy == "last")
    if len(kept) == n:
        return dataset
    return replace(dataset.with_interactions(inter.take(kept)), repeats_dropped=dataset.repeats_dropped + n - len(kept))


def to_implicit(dataset: Dataset, threshold: float | None = None) -> Dataset:
    """Implicit feedback: every interaction, or those rated at least ``threshold``, with weight 1.

    Args:
        threshold: Minimum rating kept (``4.0`` keeps 4 and 5 stars);
            ``None`` keeps every interaction.
    """
    inter = dataset.interactions
    keep = np.ones(len(inter), dtype=bool) if threshold is None else inter.rating >= threshold
    kept = inter.take(keep)
    ones = np.ones(len(kept), dtype=np.float32)
    return dataset.with_interactions(Interactions(kept.user, kept.item, ones, kept.timestamp), implicit=True)


def k_core(dataset: Dataset, k: int = 5, user_k: int | None = None, item_k: int | None = None) -> Dataset:
    """The k-core: repeatedly drop users and items with fewer than k interactions.

    Args:
        k: Minimum interactions per user and per item.
        user_k, item_k: Separate minima (default ``k``).

    Returns:
        A compacted dataset (vocabularies renumbered) in which every user has
        at least ``user_k`` and every item at least ``item_k`` interactions.
    """
    uk = k if user_k is None else user_k
    ik = k if item_k is None else item_k
    if uk < 1 or ik < 1:
        raise ValueError(f"k-core minima must be >= 1, got user_k={uk}, item_k={ik}")
    inter = dataset.interactions
    keep = np.ones(len(inter), dtype=bool)
    while True:
        u_cnt = np.bincount(inter.user[keep], minlength=dataset.num_users)
        i_cnt = np.bincount(inter.item[keep], minlength=dataset.num_items)
        new_keep = keep & (u_cnt[inter.user] >= uk) & (i_cnt[inter.item] >= ik)
        if new_keep.sum() == keep.sum():
            break
        keep = new_keep
    return dataset.with_interactions(inter.take(keep)).compact()
