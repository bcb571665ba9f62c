"""Maximal marginal relevance (Carbonell and Goldstein, SIGIR 1998)."""

from __future__ import annotations

import torch
from torch import Tensor


def mmr(scores: Tensor, features: Tensor, k: int, diversity: float) -> Tensor:
    """Pick ``k`` of the candidates greedily by relevance minus redundancy.

    .. math:: \\arg\\max_{i \\notin S} \\; (1 - \\lambda)\\, \\hat r_i - \\lambda \\max_{j \\in S} \\cos(x_i, x_j)

    where ``r̂`` is the score min-max scaled to [0, 1] over the candidates and
    ``λ = diversity``. ``λ = 0`` keeps the score order.

    Args:
        scores: ``[P]`` candidate scores (finite).
        features: ``[P, F]`` candidate vectors (text embeddings).
        k: How many to pick (at most P).
        diversity: λ in [0, 1].

    Returns:
        ``[k]`` positions into the candidates, in pick order.
    """
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be in [0, 1], got {diversity}")
    p = scores.shape[0]
    k = min(k, p)
    span = (scores.max() - scores.min()).clamp(min=1e-12)
    rel = (scores - scores.min()) / span  # [P]
    x = torch.nn.functional.normalize(features.float(), dim=1)
    sim = x @ x.t()  # [P, P]
    chosen: list[int] = []
    redundancy = torch.full((p,), -torch.inf if p else 0.0, dtype=rel.dtype)
    taken = torch.zeros(p, dtype=torch.bool)
    for _ in range(k):
        red = torch.where(torch.isfinite(redundancy), redundancy, torch.zeros_like(redundancy))
        value = (1 - diversity) * rel - diversity * red
        value[taken] = -torch.inf
        best = int(torch.argmax(value))
        chosen.append(best)
        taken[best] = True
        redundancy = torch.maximum(redundancy, sim[best])
    return torch.tensor(chosen, dtype=torch.long)
