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
    e0 = model.layer0_all()  # [N, D]
    user_final, item_final = model.get_embedding()
    e_i = item_final[item]
    nodes = torch.nonzero(weight).view(-1)
    values = weight[nodes] * (e0[nodes] @ e_i)
    order = torch.argsort(values.abs(), descending=True)
    score = float((user_final[user] * e_i).sum())
    return Contributions(score, nodes[order].cpu(), values[order].cpu())


@dataclass(frozen=True)
class WalkTerms:
    """What the exact decomposition of one (user, item) score needs, computed once.

    Attributes:
        forward: ``[L, N]``: row ``s`` is ``Â^s 1_u`` (where ``s``-step walks from the user land).
        backward: ``[L, N]``: row ``j`` is ``Â^j c`` with ``c = E⁰ e_i`` (the score a node
            passes on over ``j`` more steps).
        weight: ``[N]``: ``P_u· = Σ_k α_k Â^k 1_u``.
        values: ``[N]``: per-node contributions ``P_uv c_v`` (sum: the score).
        score: ``e_u · e_i``.
    """

    forward: Tensor
    backward: Tensor
    weight: Tensor
    values: Tensor
    score: float


@torch.no_grad()
def walk_terms(model: LightGCN, user: int, item: int, e0: Tensor | None = None,
               final: tuple[Tensor, Tensor] | None = None) -> WalkTerms:
    """Forward and backward walk vectors of a LightGCN score (2L sparse mat-vecs).

    ``e0`` (``[N, D]`` layer-0 embeddings) and ``final`` (the propagated
    ``([U, D], [I, D])`` of :meth:`LightGCN.get_embedding`) may be passed in
    to reuse them across pairs.
    """
    adj, alphas = model.adj, model.alphas.tolist()
    if e0 is None:
        e0 = model.layer0_all()
    users_final, item_final = model.get_embedding() if final is None else final
    n, num_layers = adj.shape[0], len(alphas) - 1
    e_i = item_final[item]
    c = e0 @ e_i  # [N]
    f = torch.zeros(n, device=adj.device, dtype=e0.dtype)
    f[user] = 1.0
    forward, backward = [f], [c]
    for _ in range(max(num_layers - 1, 0)):
        forward.append((adj @ forward[-1].unsqueeze(1)).squeeze(1))
        backward.append((adj @ backward[-1].unsqueeze(1)).squeeze(1))
    weight = f * alphas[0]
    walk = f
    for a in alphas[1:]:
        walk = (adj @ walk.unsqueeze(1)).squeeze(1)
        weight = weight + a * walk
    values = weight * c
    score = float(users_final[user] @ e_i)  # the model's own score, not the sum it is checked against
    return WalkTerms(torch.stack(forward), torch.stack(backward), weight, values, score)


_KEYS: list[tuple[Tensor, Tensor, Tensor]] = []  # (adj, keys, values) of the last adjacency seen


def _entry_keys(adj: Tensor) -> tuple[Tensor, Tensor]:
    """Sorted ``row * N + col`` keys of a CSR matrix's entries, and its values (cached for the last matrix)."""
    if _KEYS and _KEYS[0][0] is adj:
        return _KEYS[0][1], _KEYS[0][2]
    crow, col = adj.crow_indices().long(), adj.col_indices().long()
    rows = torch.repeat_interleave(torch.arange(adj.shape[0], device=col.device), crow.diff())
    keys = rows * adj.shape[0] + col
    _KEYS[:] = [(adj, keys, adj.values())]
    return keys, adj.values()


def edge_flows(model: LightGCN, terms: WalkTerms, src: Tensor, dst: Tensor) -> Tensor:
    """The part of the score carried by the walks from the user that cross each edge ``src → dst``.

    A walk ``u = x_0, …, x_k = v`` contributes ``α_k Π Â_{x_{t-1} x_t} c_v``
    to the score; summing over the walks through ``a → b`` at step ``t``
    gives

    .. math:: \\mathrm{flow}(a \\to b) = \\hat A_{ab} \\sum_{s + j \\le L - 1}
        \\alpha_{s + j + 1} \\, (\\hat A^s 1_u)_a \\, (\\hat A^j c)_b

    A walk that crosses several of the edges counts for each, so flows do not
    add up to the score; they rank edges by how much score passes through
    them. Use ``flow(a → b) + flow(b → a)`` for an undirected edge.

    Args:
        src, dst: ``[E]`` global node indices (users, then items).

    Returns:
        ``[E]`` flows (0 for pairs that are not edges).
    """
    adj = model.adj
    n = adj.shape[0]
    keys, val = _entry_keys(adj)
    want = src.long() * n + dst.long()
    pos = torch.searchsorted(keys, want).clamp(max=max(len(keys) - 1, 0))
    found = keys[pos] == want if len(keys) else torch.zeros(len(want), dtype=torch.bool, device=keys.device)
    a_ab = torch.where(found, val[pos], torch.zeros((), dtype=val.dtype, device=val.device))
    alphas = model.alphas.tolist()
    num_layers = len(alphas) - 1
    total = torch.zeros(len(src), dtype=val.dtype, device=val.device)
    for s in range(num_layers):
        for j in range(num_layers - s):
            total += alphas[s + j + 1] * terms.forward[s, src] * terms.backward[j, dst]
    return a_ab * total
