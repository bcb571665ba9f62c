"""Exact decomposition of a LightGCN score, or of its difference from a reference, into per-node parts.

LightGCN's final embeddings are linear in the layer-0 ones:
``e = P E⁰`` with ``P = Σ_k w_k Â^k`` (``w``: the model's layer weights,
:meth:`~graphrec.nn.LightGCN.layer_weights`; SimGCL and XSimGCL propagate
the same way with other weights). So a score splits exactly over the nodes
``v`` that reach the user within L hops:

.. math:: \\hat y_{ui} = e_u^\\top e_i = \\sum_v P_{uv} \\, (e^0_v)^\\top e_i

and so does its difference from a reference ``e_u^T r`` (the mean score of
the user's candidate items, ``r`` the mean of their embeddings, or the next
item's score, ``r`` its embedding): replace ``e_i`` by ``e_i - r``. The parts
every candidate shares (much of the user's own embedding) cancel, which is
what "why this item rather than the others?" asks.

Every walk from the user leaves through one first edge, so the difference
also splits exactly by the user's edges (:func:`first_hop`): one part per
history item (everything that reaches the user through their interaction
with it) plus the user's own layer-0 term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.weak import WeakIdKeyDictionary

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
    to the indicator of ``u`` (see :func:`walk_terms`).
    """
    terms = walk_terms(model, user, item)
    nodes = torch.nonzero(terms.weight).view(-1)
    values = terms.values[nodes]
    order = torch.argsort(values.abs(), descending=True)
    return Contributions(terms.score, nodes[order].cpu(), values[order].cpu())


@dataclass(frozen=True)
class WalkTerms:
    """What the exact decomposition of one (user, item) score needs, computed once.

    Attributes:
        forward: ``[L, N]``: row ``s`` is ``Â^s 1_u`` (where ``s``-step walks from the user land).
        backward: ``[L, N]``: row ``j`` is ``Â^j c`` with ``c = E⁰ e_i`` (the score a node
            passes on over ``j`` more steps).
        weight: ``[N]``: ``P_u· = Σ_k w_k Â^k 1_u``.
        values: ``[N]``: per-node contributions ``P_uv c_v`` (sum: :attr:`difference`).
        score: ``e_u · e_i``.
        reference: ``e_u · r`` (0 without a reference: then the values sum to the score).
    """

    forward: Tensor
    backward: Tensor
    weight: Tensor
    values: Tensor
    score: float
    reference: float = 0.0

    @property
    def difference(self) -> float:
        """``score - reference``: what :attr:`values` sum to."""
        return self.score - self.reference


@torch.no_grad()
def walk_terms(model: LightGCN, user: int, item: int, e0: Tensor | None = None,
               final: tuple[Tensor, Tensor] | None = None, reference: Tensor | None = None) -> WalkTerms:
    """Forward and backward walk vectors of a LightGCN score (2L - 1 sparse mat-vecs).

    ``e0`` (``[N, D]`` layer-0 embeddings) and ``final`` (the propagated
    ``([U, D], [I, D])`` of :meth:`LightGCN.get_embedding`) may be passed in
    to reuse them across pairs. ``reference``: a ``[D]`` vector ``r`` in the
    item space; the terms then decompose ``e_u · (e_i - r)``.
    """
    adj, alphas = model.adj, model.layer_weights().tolist()
    if e0 is None:
        e0 = model.layer0_all()
    users_final, item_final = model.get_embedding() if final is None else final
    n, num_layers = adj.shape[0], len(alphas) - 1
    e_i = item_final[item]
    target = e_i if reference is None else e_i - reference
    c = e0 @ target  # [N]
    f = torch.zeros(n, device=adj.device, dtype=e0.dtype)
    f[user] = 1.0
    walks, backward = [f], [c]  # walks[k] = Â^k 1_u for k = 0..L; backward[j] = Â^j c for j = 0..L-1
    for k in range(num_layers):
        walks.append((adj @ walks[-1].unsqueeze(1)).squeeze(1))
        if k < num_layers - 1:
            backward.append((adj @ backward[-1].unsqueeze(1)).squeeze(1))
    weight = sum((a * w for a, w in zip(alphas, walks, strict=True)), torch.zeros_like(f))
    values = weight * c
    score = float((users_final[user] * e_i).sum())  # as the model computes it, not the sum checked against it
    ref = float((users_final[user] * reference).sum()) if reference is not None else 0.0
    return WalkTerms(torch.stack(walks[:max(num_layers, 1)]), torch.stack(backward), weight, values, score, ref)


@torch.no_grad()
def first_hop(model: LightGCN, terms: WalkTerms, user: int) -> tuple[Tensor, Tensor, float]:
    """The difference split by the user's first edge: ``(neighbours [H], parts [H], own)``.

    .. math:: \\mathrm{via}(h) = \\hat A_{uh} \\sum_{j=0}^{L-1} w_{j+1} (\\hat A^j c)_h, \\qquad
        \\mathrm{own} = w_0 \\, c_u

    ``via(h)`` is everything that reaches the user through the edge to ``h``
    (a history item, or a user attribute node): ``h``'s own embedding, the
    users who share ``h``, their items... Each walk of length >= 1 leaves the
    user by exactly one first edge, so ``Σ_h via(h) + own`` is the
    difference exactly (up to float rounding).

    Returns:
        ``h`` as global node indices, their parts, and the user's own layer-0 term.
    """
    adj = model.adj.to_sparse_csr() if model.adj.layout != torch.sparse_csr else model.adj
    crow, col, val = adj.crow_indices(), adj.col_indices(), adj.values()
    start, end = int(crow[user]), int(crow[user + 1])
    nbrs, a_uh = col[start:end].long(), val[start:end]
    w = model.layer_weights().tolist()
    reach = torch.zeros(adj.shape[0], dtype=terms.backward.dtype, device=terms.backward.device)
    for j in range(len(w) - 1):
        reach += w[j + 1] * terms.backward[j]
    own = w[0] * float(terms.backward[0][user])
    return nbrs, a_uh.to(reach.dtype) * reach[nbrs], own


# adjacency -> sorted entry keys; weak, so a cached matrix is freed with its model
_KEYS: WeakIdKeyDictionary = WeakIdKeyDictionary()


def _entry_keys(adj: Tensor) -> tuple[Tensor, Tensor]:
    """Sorted ``row * N + col`` keys of a CSR matrix's entries (computed once per matrix), and its values."""
    keys = _KEYS.get(adj)
    if keys is None:
        crow, col = adj.crow_indices().long(), adj.col_indices().long()
        rows = torch.repeat_interleave(torch.arange(adj.shape[0], device=col.device), crow.diff())
        keys = _KEYS[adj] = rows * adj.shape[0] + col
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
    alphas = model.layer_weights().tolist()
    num_layers = len(alphas) - 1
    total = torch.zeros(len(src), dtype=val.dtype, device=val.device)
    for s in range(num_layers):
        for j in range(num_layers - s):
            total += alphas[s + j + 1] * terms.forward[s, src] * terms.backward[j, dst]
    return a_ab * total
