"""Top-K ranking metrics on hit matrices, with RecBole's definitions.

Every function takes ``hits``: a ``[U, K]`` 0/1 tensor whose entry ``(u, j)``
says whether the item ranked ``j + 1`` for user ``u`` is relevant, and
``n_relevant``: ``[U]`` the number of relevant items of each user (at least
1). Each returns the per-user values ``[U]`` at cut-off ``k``; average them
over users for the reported figure.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _cut(hits: Tensor, k: int) -> Tensor:
    if k < 1 or k > hits.shape[1]:
        raise ValueError(f"k must be in [1, {hits.shape[1]}], got {k}")
    return hits[:, :k].float()


def recall(hits: Tensor, n_relevant: Tensor, k: int) -> Tensor:
    """``|top-k ∩ relevant| / |relevant|``."""
    return _cut(hits, k).sum(1) / n_relevant.float()


def precision(hits: Tensor, n_relevant: Tensor, k: int) -> Tensor:
    """``|top-k ∩ relevant| / k``."""
    return _cut(hits, k).sum(1) / k


def hit_rate(hits: Tensor, n_relevant: Tensor, k: int) -> Tensor:
    """1 if any of the top k is relevant."""
    return (_cut(hits, k).sum(1) > 0).float()


def mrr(hits: Tensor, n_relevant: Tensor, k: int) -> Tensor:
    """``1 / rank`` of the first relevant item in the top k (0 if none)."""
    h = _cut(hits, k)
    first = h.argmax(1)
    return torch.where(h.sum(1) > 0, 1.0 / (first.float() + 1.0), torch.zeros_like(first, dtype=torch.float))


def ndcg(hits: Tensor, n_relevant: Tensor, k: int) -> Tensor:
    """``DCG@k / IDCG@k`` with binary gains and ``1 / log2(rank + 1)`` discounts;
    the ideal list holds ``min(|relevant|, k)`` relevant items."""
    h = _cut(hits, k)
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, device=hits.device, dtype=torch.float))  # [k]
    dcg = (h * discount).sum(1)
    ideal = torch.cumsum(discount, 0)[(n_relevant.clamp(max=k) - 1).long()]
    return dcg / ideal


def average_precision(hits: Tensor, n_relevant: Tensor, k: int) -> Tensor:
    """``Σ_j rel_j · precision@j / min(|relevant|, k)`` (RecBole's MAP@k)."""
    h = _cut(hits, k)
    prec_at = torch.cumsum(h, 1) / torch.arange(1, k + 1, device=hits.device, dtype=torch.float)
    return (prec_at * h).sum(1) / n_relevant.clamp(max=k).float()


METRICS = {
    "recall": recall,
    "precision": precision,
    "hit": hit_rate,
    "mrr": mrr,
    "ndcg": ndcg,
    "map": average_precision,
}
