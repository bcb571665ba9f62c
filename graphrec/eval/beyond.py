"""Beyond-accuracy metrics of top-K lists: coverage, popularity, novelty, diversity,
and accuracy per user-activity bucket and on cold-start items."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from graphrec.eval.evaluator import Evaluator, RankingResult


def coverage(top_items: np.ndarray, num_items: int) -> float:
    """Fraction of the catalogue that appears in at least one list."""
    return int(np.count_nonzero(np.bincount(top_items.ravel(), minlength=num_items))) / num_items if top_items.size else 0.0


def mean_popularity(top_items: np.ndarray, popularity: np.ndarray) -> float:
    """Mean train-interaction count of the recommended items."""
    return float(popularity[top_items].mean()) if top_items.size else float("nan")


def novelty(top_items: np.ndarray, popularity: np.ndarray, num_users: int) -> float:
    """Mean self-information ``-log2(p_i)`` of recommended items, ``p_i = (count_i + 1) / (num_users + 1)``."""
    p = (popularity[top_items] + 1.0) / (num_users + 1.0)
    return float((-np.log2(p)).mean()) if top_items.size else float("nan")


def intra_list_diversity(top_items: np.ndarray, features: torch.Tensor, batch_size: int = 1024) -> float:
    """Mean pairwise cosine distance ``1 - cos(x_i, x_j)`` within each list, averaged over lists.

    ``batch_size`` lists at a time: memory ``O(batch_size · K · F)``, whatever the number of lists.
    """
    if top_items.shape[1] < 2 or not top_items.size:
        return float("nan")
    x_all = torch.nn.functional.normalize(features.float(), dim=1)
    k = top_items.shape[1]
    total = 0.0
    for start in range(0, len(top_items), batch_size):
        x = x_all[torch.from_numpy(top_items[start : start + batch_size])]  # [B, K, F]
        sim = x @ x.transpose(1, 2)  # [B, K, K]
        off_diag = (sim.sum((1, 2)) - sim.diagonal(dim1=1, dim2=2).sum(1)) / (k * (k - 1))
        total += float((1.0 - off_diag).double().sum())
    return total / len(top_items)


def beyond_accuracy(result: RankingResult, ev: Evaluator, k: int | None = None) -> dict[str, float]:
    """Beyond-accuracy metrics at cut-off ``k`` (default the largest of ``ev.ks``)."""
    from graphrec.eval.evaluator import RankingResult, accuracy

    k = k or max(ev.ks)
    top = result.top_items[:, :k]
    listed = result.listed[:, :k] if result.listed is not None else np.ones(top.shape, dtype=bool)
    whole = listed.all(1)  # lists without -inf filler (every list, unless fewer than k items could be ranked)
    num_users, num_items = ev.truth.shape
    shown = top[listed]  # the items listed, filler left out
    out = {f"coverage@{k}": coverage(shown, num_items)}
    if ev.item_popularity is not None:
        out[f"popularity@{k}"] = mean_popularity(shown, ev.item_popularity)
        out[f"novelty@{k}"] = novelty(shown, ev.item_popularity, num_users)
    if ev.item_features is not None:  # over whole lists (a pair of listed items needs both)
        out[f"diversity@{k}"] = intra_list_diversity(top[whole], ev.item_features, ev.batch_size)
    if ev.user_activity is not None and len(result.users):
        activity = ev.user_activity[result.users]
        # low: at most the 1/3 quantile of activity, mid: at most the 2/3 one, high: above it (ties go to the
        # lower bucket: users without a train interaction are low however many there are)
        edges = np.quantile(activity, [1 / 3, 2 / 3])
        bucket = np.searchsorted(edges, activity, side="left")
        for b, name in enumerate(("low", "mid", "high")):
            sel = bucket == b
            if sel.any():
                part = RankingResult(result.users[sel], result.top_items[sel], result.hits[sel], result.n_relevant[sel],
                                     None if result.listed is None else result.listed[sel])
                acc = accuracy(part, (k,), ("recall", "ndcg"))
                out[f"recall@{k}[{name}-activity]"] = acc[f"recall@{k}"]
                out[f"ndcg@{k}[{name}-activity]"] = acc[f"ndcg@{k}"]
    if ev.item_popularity is not None:
        cold = ev.item_popularity == 0
        cold_truth = ev.truth[result.users].tocsr(copy=True)
        cold_truth.data = cold_truth.data * cold[cold_truth.indices]
        cold_truth.eliminate_zeros()
        n_cold = np.diff(cold_truth.indptr)
        sel = n_cold > 0
        out["cold_items_in_truth"] = float(n_cold.sum())
        if sel.any():
            top_sel = result.top_items[sel][:, :k]
            rows = np.repeat(np.arange(sel.sum()), k)
            cold_hit = (np.asarray(cold_truth[np.flatnonzero(sel)][rows, top_sel.ravel()]).reshape(-1, k) > 0) & \
                listed[sel]
            out[f"recall@{k}[cold-items]"] = float((cold_hit.sum(1) / n_cold[sel]).mean())
    return out
