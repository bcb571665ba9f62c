"""Top-K with ties broken at random: the one ranking step of evaluation, the ranker and the explainer.

``torch.topk`` breaks ties in an implementation order, which follows item
indices; in MovieLens low indices are old, popular films, so a model that
gives many items the same score (MostPopular's equal counts, a constant model)
would be credited with hits it did not earn. Here equal scores are ordered by
a uniform random key instead (the trec_eval alternative, fractional credit,
gives the same expectation), so a constant model scores exactly as chance in
expectation.
"""

from __future__ import annotations

import torch
from torch import Tensor


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
