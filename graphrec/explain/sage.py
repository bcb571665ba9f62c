"""Edge attributions of a GraphSAGE score: integrated gradients over message masks.

Every edge of the (user, item) pair's computation subgraph gets a mask ``m_e``
that scales its message (PyG's explain hook in ``MessagePassing``). The score
``f(m)`` with all masks at 1 is the model's score; with all at 0 no message
passes and only the two nodes' own inputs remain. Integrated gradients
(Sundararajan et al., ICML 2017) along the straight path ``m = α·1``,

.. math:: \\mathrm{IG}_e = \\int_0^1 \\frac{\\partial f(\\alpha \\mathbf 1)}{\\partial m_e} \\, d\\alpha,

satisfies completeness: ``Σ_e IG_e = f(1) − f(0)`` up to the error of the
Riemann sum (reported). With mean aggregation a zero mask still counts in the
mean's denominator, so an attribution is the effect of silencing the message,
not of deleting the edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.explain.algorithm.utils import clear_masks, set_hetero_masks

from graphrec.nn.sage import EdgeType, GraphSAGE


@dataclass(frozen=True)
class EdgeAttributions:
    """Integrated-gradients attributions of one GraphSAGE (user, item) score.

    Attributes:
        score: ``f(1)``, the score on the computation subgraph (the model's
            score when the fan-outs take every neighbour).
        baseline: ``f(0)``, the score with every message silenced.
        src, dst: Per edge type, ``[E]`` global node indices of each message's
            sender and receiver.
        values: Per edge type, ``[E]`` attributions.
        steps: Riemann steps used.
    """

    score: float
    baseline: float
    src: dict[EdgeType, Tensor]
    dst: dict[EdgeType, Tensor]
    values: dict[EdgeType, Tensor]
    steps: int

    @property
    def completeness_error(self) -> float:
        """``f(1) − f(0) − Σ IG``: how far the Riemann sum is from exact."""
        return self.score - self.baseline - sum(float(v.sum()) for v in self.values.values())


@dataclass(frozen=True)
class Subgraph:
    """The computation subgraph of one (user, item) pair, as the encoder reads it.

    Attributes:
        x: Per node type, the features of its nodes in the subgraph (None for learned ids).
        node: Per node type, ``[n_t]`` global indices of the subgraph's nodes; the user and the item first.
        edges: Per edge type, ``[2, E]`` local (subgraph) indices of each message's sender and receiver.
    """

    x: dict[str, Tensor | None]
    node: dict[str, Tensor]
    edges: dict[EdgeType, Tensor]


def computation_subgraph(model: GraphSAGE, user: int, item: int, fanouts: Sequence[int] | None = None,
                         seed: int = 0) -> Subgraph:
    """Every node and message the pair's score depends on (``fanouts`` neighbours per hop; default all)."""
    from graphrec.sampling import NeighborSampler

    g, _ = model._graph()
    sampler = NeighborSampler(g, list(fanouts) if fanouts is not None else [-1] * model.num_layers, seed=seed)
    dev = model.device
    out = sampler.sample({"user": torch.tensor([user], device=dev), "item": torch.tensor([item], device=dev)})
    x = {t: (g[t].x[out.node[t]] if "x" in g[t] else None) for t in g.node_types}
    edges = {et: torch.stack([out.row[et], out.col[et]]) for et in g.edge_types if out.row[et].numel()}
    return Subgraph(x, dict(out.node), edges)


def _plain_mask_slots(module: torch.nn.Module) -> None:
    """Undo a PyG explainer's registration of ``_edge_mask`` as a parameter of each message-passing layer.

    PyG's GNNExplainer assigns an ``nn.Parameter`` mask, which registers the slot
    in ``_parameters``; ``clear_masks`` sets it to None but leaves the slot, and
    from then on ``set_masks`` wraps every mask it is given in a new Parameter,
    so gradients never reach the tensor the caller holds (they come back None).
    """
    from torch_geometric.nn import MessagePassing

    for m in module.modules():
        if isinstance(m, MessagePassing) and m._parameters.get("_edge_mask", 0) is None:
            del m._parameters["_edge_mask"]


def graphsage_edge_attributions(model: GraphSAGE, user: int, item: int, steps: int = 16,
                                fanouts: Sequence[int] | None = None, seed: int = 0) -> EdgeAttributions:
    """Integrated gradients of ``model``'s (user, item) score over the messages of its computation subgraph.

    Args:
        model: A trained :class:`~graphrec.nn.GraphSAGE`.
        user, item: Node indices.
        steps: Midpoint Riemann steps of the integral (each one forward and
            one backward pass on the subgraph).
        fanouts: Neighbours per hop; default every neighbour (the subgraph
            the full-graph score is computed on).
        seed: Seed of the sampler when fan-outs are limited.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    sub = computation_subgraph(model, user, item, fanouts, seed)
    x, node, edges, dev = sub.x, sub.node, sub.edges, model.device
    was = model.training
    model.eval()

    def score(alpha: float) -> Tensor:
        masks = {et: torch.full((e.shape[1],), alpha, device=dev) for et, e in edges.items()}
        set_hetero_masks(model.encoder, masks, edges, apply_sigmoid=False)
        h = model.encoder(x, node, edges)
        return (h["user"][0] * h["item"][0]).sum()

    _plain_mask_slots(model.encoder)
    try:
        total = {et: torch.zeros(e.shape[1], device=dev) for et, e in edges.items()}
        # one pass per step: batching the steps as copies of the subgraph was 2x slower on CPU; nothing to
        # attribute where no message passes (fan-outs of 0, an isolated pair)
        for s in range(steps if any(e.shape[1] for e in edges.values()) else 0):
            masks = {et: torch.full((e.shape[1],), (s + 0.5) / steps, device=dev, requires_grad=True)
                     for et, e in edges.items()}
            set_hetero_masks(model.encoder, masks, edges, apply_sigmoid=False)
            h = model.encoder(x, node, edges)
            grads = torch.autograd.grad((h["user"][0] * h["item"][0]).sum(), list(masks.values()), allow_unused=True)
            for et, grad in zip(masks, grads, strict=True):
                if grad is not None:
                    total[et] += grad
        with torch.no_grad():
            full = score(1.0)
            empty = score(0.0)
    finally:
        clear_masks(model.encoder)
        model.train(was)
    src = {et: node[et[0]][e[0]].cpu() for et, e in edges.items()}
    dst = {et: node[et[2]][e[1]].cpu() for et, e in edges.items()}
    values = {et: (v / steps).detach().cpu() for et, v in total.items()}
    return EdgeAttributions(float(full), float(empty), src, dst, values, steps)
