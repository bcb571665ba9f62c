"""A dataset plus what its served run received: the events and items of a serving log (``graphrec retrain``).

An event becomes an interaction (rating: the dataset's highest, so that an
``implicit_threshold`` keeps it; its timestamp as logged); a user or item
the dataset does not have is appended to its vocabulary, an item with its
title and text (``item_info["title"]``, ``["text"]``) and no attributes.
A pair seen again (an event repeating one, or a client's retry) stays one
interaction, as the splits require: its first positive occurrence, in
dataset-then-log order, where positive is rated at least the dataset's
``implicit_threshold`` (any, without one). So the dataset's own interaction
keeps its rating and timestamp, unless the threshold drops it (a low
rating): then the event, a positive, takes its place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from graphrec.data.dataset import Dataset, Interactions
from graphrec.data.preprocess import one_per_key
from graphrec.data.vocab import Vocabulary
from graphrec.data.wal import EventLog
from graphrec.errors import DataFormatError


def with_served_log(ds: Dataset, path: str | Path, implicit_threshold: float | None = None) -> Dataset:
    """``ds`` with the events and items of the serving log at ``path`` appended (log order), one interaction
    per (user, item) pair (the first that ``implicit_threshold`` keeps; the first, without one).

    Raises:
        DataFormatError: a missing log, or an event naming an item that neither the dataset nor the log has.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "no such serving log (dataset.added names a run's serving/events.log)")
    with EventLog(path) as wal:
        records = wal.replay()
    int_users, int_items = ds.users.ids.dtype.kind in "iu", ds.items.ids.dtype.kind in "iu"
    new_items: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    for r in records:
        if r.get("op") == "items":
            new_items.extend(r["items"])
        elif r.get("op") == "events":
            events.extend(r["events"])
    item_ids = list(ds.items.ids) + [int(x["item"]) if int_items else str(x["item"]) for x in new_items]  # type: ignore[call-overload]
    items = Vocabulary(np.asarray(item_ids) if int_items else item_ids, name=ds.items.name)
    known_users = set(ds.users.ids.tolist())
    added_users = list(dict.fromkeys(e["user"] for e in events if e["user"] not in known_users))
    users = Vocabulary(np.concatenate([ds.users.ids, np.asarray(added_users, dtype=ds.users.ids.dtype)])
                       if int_users else list(ds.users.ids) + [str(u) for u in added_users], name=ds.users.name)
    try:
        item_idx = items.encode([e["item"] for e in events])
    except KeyError as exc:
        raise DataFormatError(path, f"an event names an item neither the dataset nor the log has ({exc})") from None
    user_idx = users.encode([e["user"] for e in events])
    stamps = [float(e.get("timestamp") or 0) for e in events]  # type: ignore[arg-type]
    bad = [t for t in stamps if not 0 <= t < 1e11]
    if bad:
        raise DataFormatError(path, f"an event's timestamp {bad[0]!r} is not seconds since the epoch")
    inter = ds.interactions
    top = float(inter.rating.max()) if len(inter) else 1.0
    ts = None if inter.timestamp is None else np.concatenate(
        [inter.timestamp, np.asarray([int(t) for t in stamps], dtype=np.int64)])
    merged = _first_positive(Interactions(
        np.concatenate([inter.user, user_idx]), np.concatenate([inter.item, item_idx]),
        np.concatenate([inter.rating, np.full(len(events), top, dtype=np.float32)]), ts), len(items),
        implicit_threshold)
    item_info = ds.item_info
    if new_items:
        extra = pd.DataFrame({"title": [str(x.get("title") or x["text"]) for x in new_items],
                              "text": [str(x["text"]) for x in new_items]})
        for col in item_info.columns:
            if col not in extra:
                extra[col] = [[] for _ in new_items] if col in ("genres", "tags") else pd.NA
        item_info = pd.concat([item_info, extra[list(item_info.columns) + [c for c in extra if c not in item_info]]],
                              ignore_index=True)
    user_info = ds.user_info
    if added_users:
        user_info = pd.concat([user_info, pd.DataFrame(index=range(len(added_users)), columns=user_info.columns)],
                              ignore_index=True)
    from dataclasses import replace

    repeats = len(inter) + len(events) - len(merged)
    return replace(ds, interactions=merged, users=users, items=items, item_info=item_info, user_info=user_info,
                   fixed_splits=(), repeats_dropped=ds.repeats_dropped + repeats)


def _first_positive(inter: Interactions, num_items: int, threshold: float | None) -> Interactions:
    """One interaction per (user, item) pair: of its occurrences, the first (in dataset-then-log order) that
    is rated at least ``threshold`` (every one is, without it), else the first; the kept ones in their order."""
    keys = inter.pair_keys(num_items)
    dropped = np.zeros(len(keys), dtype=bool) if threshold is None else inter.rating < threshold
    kept = one_per_key(keys, dropped)
    return inter if len(kept) == len(keys) else inter.take(kept)
