"""Exact decomposition of a LightGCN score into per-node contributions.

LightGCN's final embeddings are linear in the layer-0 ones:
``e = P E⁰`` with ``P = Σ_k α_k Â^k``. So a score splits exactly over the
nodes ``v`` that reach the user within L hops:

.. math:: \\hat y_{ui} = e_u^\\top e_i = \\sum_v P_{uv} \\, (e^0_v)^\\top e_i

Each term is one node's contribution (the user's own embedding, the items in
their history, co-interacting users, further items); they sum to the score up
to floating-point rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from graphrec.nn.lightgcn import LightGCN


@dataclass(frozen=True)
class Contributions:
    """Per-node contributions to one (user, item) score.

    Attributes:
        score: The model's score ``e_u · e_i``.
        nodes: ``[M]`` global node indices (users ``0..U-1``, then items ``U..``)
            with a non-zero weight ``P_uv``, by decreasing ``|contribution|``.
        values: ``[M]`` their contributions; ``values.sum() == score``.
    """

    score: float
    nodes: Tensor
    values: Tensor


@torch.no_grad()
def lightgcn_contributions(model: LightGCN, user: int, item: int) -> Contributions:
    """Decompose ``model``'s score of ``(user, item)`` over the nodes within L hops of the user.

    Costs L sparse matrix-vector products: ``P_u·`` is row ``u`` of
    ``Σ_k α_k Â^k``, and ``Â`` is symmetric, so it is ``Σ_k α_k Â^k`` applied
    to the indicator of ``u``.
    """
    adj, alphas = model.adj, model.alphas.tolist()
    n = adj.shape[0]
    r = torch.zeros(n, 1, device=adj.device, dtype=adj.dtype)
    r[user] = 1.0
    weight = r * alphas[0]
    for a in alphas[1:]:
        r = adj @ r
        weight = weight + a * r
    weight = weight.view(-1)  # [N] = P_u·
    users0, items0 = model.layer0()
    e0 = torch.cat([users0, items0])  # [N, D]
    user_final, item_final = model.get_embedding()
    e_i = item_final[item]
    nodes = torch.nonzero(weight).view(-1)
    values = weight[nodes] * (e0[nodes] @ e_i)
    order = torch.argsort(values.abs(), descending=True)
    score = float((user_final[user] * e_i).sum())
    return Contributions(score, nodes[order].cpu(), values[order].cpu())
