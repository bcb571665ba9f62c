"""Scoring a user's unseen items and taking the top K, ties broken at random: the one ranking step of
evaluation, the ranker, the explainer and the benchmarks.

``torch.topk`` breaks ties in an implementation order, which follows item
indices; in MovieLens low indices are old, popular films, so a model that
gives many items the same score (MostPopular's equal counts, a constant model)
would be credited with hits it did not earn. Here equal scores are ordered by
a uniform random key instead (the trec_eval alternative, fractional credit,
gives the same expectation), so a constant model scores exactly as chance in
expectation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

if TYPE_CHECKING:
    from graphrec.nn.base import ScoringModel


@torch.no_grad()
def unseen_scores(model: ScoringModel, users: np.ndarray | Tensor, seen: sp.csr_matrix | None,
                  embedding: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Scores of every item for ``users`` (indices), with the items each has seen set to ``-inf``.

    Args:
        model: Any :class:`~graphrec.nn.ScoringModel` (scored as it is: call ``eval()`` first).
        users: ``[B]`` user indices.
        seen: ``num_users × num_items`` matrix whose non-zeros are excluded
            (train, or train + valid); None excludes nothing.
        embedding: ``model.get_embedding()`` computed once by a caller that
            scores many batches (dot-product models), to propagate once.

    Returns:
        ``[B, num_items]`` float32 scores on the model's device (a fresh tensor).
    """
    device = model.device
    idx = users.to(device) if isinstance(users, Tensor) else torch.from_numpy(np.asarray(users, dtype=np.int64)).to(device)
    scores = embedding[0][idx] @ embedding[1].t() if embedding is not None else model.score_all(idx)
    scores = scores.float().clone()
    return mask_seen(scores, idx.cpu().numpy(), seen) if seen is not None else scores


def mask_seen(scores: Tensor, users: np.ndarray, seen: sp.csr_matrix) -> Tensor:
    """Set ``scores[b, i] = -inf`` (in place) for the items ``seen[users[b]]`` holds; returns ``scores``.

    Shapes: ``scores [B, num_items]``, ``users [B]``.
    """
    ex = seen[users].tocoo()
    dev = scores.device
    scores[torch.from_numpy(ex.row).to(dev), torch.from_numpy(ex.col).to(dev)] = -torch.inf
    return scores


def topk(scores: Tensor, k: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The ``k`` largest scores of each row and their columns, equal scores in random order.

    Distinct scores keep their order exactly. Rows without ties among their
    top ``k`` (nor at its boundary) take ``torch.topk``'s result as it is;
    the others are ranked again on ``score + u · gap / 2`` in float64, where
    ``gap`` is the distance from the float32 score to the next larger float32
    and ``u ~ U[0, 1)``: a key that cannot pass the next distinct score, so
    only ties are reordered. ``-inf`` (excluded items) stays ``-inf``.

    Args:
        scores: ``[B, N]`` scores (any float dtype; compared as float32).
        k: How many per row, ``1 <= k <= N``.
        generator: Random generator on ``scores``' device (seed it for
            reproducible results); None draws from the global generator.

    Returns:
        ``(values [B, k], indices [B, k])`` in descending order of score.
    """
    scores = scores.float()
    values, indices = torch.topk(scores, k, dim=1)
    if scores.shape[0] == 0:
        return values, indices
    kth = values[:, -1:]  # [B, 1]
    tied_inside = (values[:, 1:] == values[:, :-1]) & torch.isfinite(values[:, 1:])  # [B, k-1]
    at_boundary = ((scores == kth).sum(1) > (values == kth).sum(1)) & torch.isfinite(kth[:, 0])  # [B]
    rows = torch.nonzero(tied_inside.any(1) | at_boundary).view(-1)
    if len(rows) == 0:
        return values, indices
    sub = scores[rows]  # [R, N]
    gap = (torch.nextafter(sub, torch.full_like(sub, torch.inf)) - sub).double()
    noise = torch.rand(sub.shape, generator=generator, device=sub.device, dtype=torch.float64)
    key = sub.double() + torch.where(torch.isfinite(sub) & torch.isfinite(gap), noise * gap / 2, 0.0)
    sub_idx = torch.topk(key, k, dim=1).indices  # [R, k]
    indices = indices.clone()
    values = values.clone()
    indices[rows] = sub_idx
    values[rows] = sub.gather(1, sub_idx)
    return values, indices
