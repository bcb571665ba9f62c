"""Summary statistics of a dataset (``graphrec datasets info``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from graphrec.data.dataset import Dataset

QUANTILES = (0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)


def dataset_info(dataset: Dataset) -> dict[str, Any]:
    """Counts, density, per-user/per-item interaction quantiles and rating histogram."""
    inter = dataset.interactions
    per_user = np.bincount(inter.user, minlength=dataset.num_users)
    per_item = np.bincount(inter.item, minlength=dataset.num_items)
    values, counts = np.unique(inter.rating, return_counts=True)
    info: dict[str, Any] = {
        "name": dataset.name,
        "users": dataset.num_users,
        "items": dataset.num_items,
        "interactions": len(inter),
        "density": len(inter) / max(1, dataset.num_users * dataset.num_items),
        "users_without_interactions": int((per_user == 0).sum()),
        "items_without_interactions": int((per_item == 0).sum()),
        "per_user_quantiles": {f"{q:g}": float(np.quantile(per_user, q)) for q in QUANTILES},
        "per_item_quantiles": {f"{q:g}": float(np.quantile(per_item, q)) for q in QUANTILES},
        "rating_histogram": {f"{v:g}": int(c) for v, c in zip(values, counts, strict=False)},
    }
    if inter.timestamp is not None and len(inter):
        info["time_range"] = [int(inter.timestamp.min()), int(inter.timestamp.max())]
    if dataset.tag_assignments is not None:
        info["tags"] = len(dataset.tag_assignments)
    if dataset.fixed_splits:
        info["fixed_splits"] = list(dataset.fixed_splits)
    if dataset.repeats_dropped:
        info["repeats_dropped"] = dataset.repeats_dropped
    return info
