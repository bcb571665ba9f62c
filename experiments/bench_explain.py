"""Explanation faithfulness and latency: does what an explanation names matter more than comparable edges?

For ``--pairs`` users drawn at random (seeded) on ML-100K, takes each user's
top-1 item (train and valid items excluded, ties broken at random), explains
it, and re-scores the pair with the same trained weights (no retraining) on
graphs edited by each of these sets of ``--edges`` (5) edges:

(a) **explanation**: the explanation's top 5 edges by importance (edges that
    carry score; context edges have importance 0);
(b) **random own**: 5 random edges of the user's own train history;
(c) **ItemKNN own**: the user's edges to the 5 history items most similar to
    the target item, cosine similarity of the item columns of the train
    matrix (``users × items``, binary): ``sim(i, h) = <X_i, X_h> / (|X_i| |X_h|)``,
    computed sparse for the target's row only (equal similarities in random
    order);
(d) **degree-matched**: for each explanation edge, one random edge of the
    same relation, in the same place relative to the pair, with endpoint
    degrees in the same buckets. Each endpoint of an edge has a role: the
    user, the target item, a history item (in the user's train history) or
    other. A candidate has the same relation and the same role at each end;
    the user and the target item are then the same node, and every other
    endpoint (history or other) must have its degree *in that relation* in
    the same quintile bucket as the explanation edge's endpoint. Buckets are
    quintiles of the endpoint degree over the relation's edges (each edge
    counts its endpoint once, so every bucket holds about a fifth of the
    edges), per side. Neither the explanation's edges nor an edge already
    drawn are candidates. Where no candidate exists the draw drops the
    degree match (keeps the roles) and, failing that, the roles (keeps the
    degrees, anywhere in the graph); the counts of such relaxations are
    printed. For LightGCN, whose top edges are the user's own, (d) is (b)
    with the history items' popularity matched to the explanation's picks;
(d') **degree-matched, anywhere**: the same degree buckets without the role
    constraint: any edge of the relation in the graph. Listed to show why
    (d) keeps the roles: an edge drawn anywhere is almost never near the
    pair, so removing it does nothing, which is what the previous control
    (5 random edges of the "same neighbourhood", 78k of ML-100K's 81k train
    edges for 3 hops) measured;
(e) **the pair's other attribute edges** (graphs whose model uses attribute
    nodes: genres, decades, occupations...): up to 5 random edges among the
    user's and the item's own attribute edges that are not in (a). GraphSAGE's
    top edges are mostly such edges (the item's decade and genres, the
    user's occupation, age, gender), and most are the only edge of their
    relation at their node, so (d) finds no same-role counterpart for them
    and falls back to an edge anywhere; (e) asks instead whether silencing
    *any* of the pair's attribute edges costs as much.

Measures, for each set S:

* **score drop** and **rank drop** when S is removed from the graph (the
  model run on ``G \\ S``: LightGCN rebuilds its normalised adjacency without
  the edges, GraphSAGE aggregates over the remaining neighbours). The rank
  is the item's 1-based position among the user's unseen items (train and
  valid excluded), equal scores ordered at random by a seeded generator, so
  ties favour nothing. Means over pairs, ± the 95% normal-approximation
  half-width (1.96 · sd / sqrt(n)); "(a) > it" is the share of pairs in
  which the explanation's score drop is larger than the set's.
* **fidelity+ / fidelity-** at K (``--ks``, default 1 and 10), computed by
  PyG's own :func:`torch_geometric.explain.metric.fidelity` (GraphFramEx,
  Amara et al., 2022). For explanations of the *model* (the target is the
  model's own prediction ``ŷ``), PyG defines

      fid+ = 1 - 1/N Σ 1(ŷ_i^{G_C \\ S} = ŷ_i)
      fid- = 1 - 1/N Σ 1(ŷ_i^{G_S} = ŷ_i)

  which are classification metrics. Here the prediction for a pair is the
  binary class "the item is in the user's top-K" (unseen items, random
  ties), so fid+ is the share of pairs whose item leaves the top-K when S
  is removed (higher: S is necessary) and fid- the share whose item is not
  in the top-K when the model runs on S alone (lower: S is sufficient).
  ``G_S`` is the graph restricted to S's edges: every other edge of every
  relation the model uses is removed, all nodes stay (LightGCN: the
  adjacency normalised over S's edges only; nodes without edges keep their
  layer-0 term). PyG's ``fidelity`` is fed through a thin subclass of its
  ``Explainer`` (model-type explanation, binary classification, raw output
  ``K + 0.5 - rank``, whose class by PyG's own ``get_target`` is
  ``rank <= K``) over the graph's edge list with S as the edge mask. The one
  change: PyG's ``get_masked_prediction`` multiplies messages by the mask
  (keeping a GCN's normalisation and a mean's denominator); this wrapper
  deletes the masked-out edges, the same edit as the score and rank drops,
  so fid+ is exactly "rank drop pushes the item out of the top-K". Mind
  what ``G_S`` does to the other items: they lose every edge, while the
  target item keeps those of its edges that are in S, so fid- favours sets
  that touch the item (its raters, its genres) over sets of the user's
  history; "rank on S alone" is the item's median rank on ``G_S``.
* **latency** of ``Explainer.explain_index`` per pair (p50 / p95 / max,
  after one warm-up call that propagates and caches LightGCN's embeddings),
  with ``--threads`` torch threads (printed).

The printed output is saved to ``experiments/results/bench_explain_<name>.txt``
(``<name>``: the configuration's name; ``--out`` to change); its last line
is one JSON object with every figure.

Usage:
    python experiments/bench_explain.py                      # trains LightGCN (experiments/ml100k-lightgcn.yaml)
    python experiments/bench_explain.py --run RUN_DIR --pairs 50   # a finished run (LightGCN or GraphSAGE)
    python experiments/bench_explain.py --config experiments/ml100k-lightgcn-genres.yaml   # exact genre shares
    python experiments/bench_explain.py --lock FILE          # measure under an exclusive flock(2) on FILE
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the graphrec command: idle OpenMP threads sleep, not spin

import networkx as nx
import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import HeteroData
from torch_geometric.explain import Explainer as PygExplainer
from torch_geometric.explain import Explanation as PygExplanation
from torch_geometric.explain.algorithm import DummyExplainer
from torch_geometric.explain.metric import fidelity

from graphrec.eval import Evaluator
from graphrec.eval.topk import mask_seen, topk, unseen_scores
from graphrec.explain import Explainer, Explanation
from graphrec.graph import normalized_adjacency
from graphrec.nn import GraphSAGE, LightGCN, ScoringModel
from graphrec.nn.lightgcn import propagate
from graphrec.run import build_model, load_config, load_run, prepare
from graphrec.train import Trainer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
Edge = tuple[str, str, str]  # (source key, target key, relation), in the graph's forward direction
EdgeType = tuple[str, str, str]
USER, TARGET, HISTORY, OTHER = 0, 1, 2, 3
SETS = (("explain", "(a) explanation's top 5"),
        ("random_own", "(b) random, the user's own"),
        ("itemknn_own", "(c) the user's own, ItemKNN-nearest to the item"),
        ("degree", "(d) degree-matched, same roles"),
        ("degree_anywhere", "(d') degree-matched, anywhere"),
        ("pair_attributes", "(e) the user's and the item's other attribute edges"))


class EdgeList:
    """The forward edges of the relations a model uses, as one global list, with degrees and buckets.

    Edits of the graph are boolean masks over this list (True: kept); both
    directions of an edge follow its mask.
    """

    def __init__(self, graph: HeteroData, relations: list[EdgeType], buckets: int) -> None:
        self.graph, self.types = graph, relations
        self.n = {t: int(graph[t].num_nodes) for t in graph.node_types}
        self.src: dict[EdgeType, np.ndarray] = {}
        self.dst: dict[EdgeType, np.ndarray] = {}
        self.start: dict[EdgeType, int] = {}
        self.sorted_keys: dict[EdgeType, tuple[np.ndarray, np.ndarray]] = {}
        self.bucket: dict[EdgeType, tuple[np.ndarray, np.ndarray]] = {}  # per edge: bucket of its source, target
        self.rev_pos: dict[EdgeType, tuple[EdgeType, np.ndarray]] = {}  # reverse type -> (forward type, positions)
        offset = 0
        for et in relations:
            st, _, dt = et
            ei = graph[et].edge_index.cpu().numpy()
            self.src[et], self.dst[et] = ei[0].astype(np.int64), ei[1].astype(np.int64)
            self.start[et] = offset
            offset += ei.shape[1]
            keys = self.src[et] * self.n[dt] + self.dst[et]
            order = np.argsort(keys, kind="stable")
            self.sorted_keys[et] = (keys[order], order)
            sides = []
            for side, n in ((self.src[et], self.n[st]), (self.dst[et], self.n[dt])):
                deg = np.bincount(side, minlength=n)[side]  # each edge's endpoint degree in this relation
                cuts = np.quantile(deg, np.linspace(0, 1, buckets + 1)[1:-1])
                sides.append(np.searchsorted(cuts, deg, side="right"))
            self.bucket[et] = (sides[0], sides[1])
            rev = (dt, f"rev_{et[1]}", st)
            if rev in graph.edge_types:
                rei = graph[rev].edge_index.cpu().numpy().astype(np.int64)
                self.rev_pos[rev] = (et, self.positions(et, rei[1], rei[0]))
        self.size = offset
        # PyG's fidelity takes an edge list and a mask over it: global node ids (node types one after another)
        node_off = dict(zip(graph.node_types, np.cumsum([0] + [self.n[t] for t in graph.node_types])[:-1], strict=True))
        self.edge_index = torch.from_numpy(np.concatenate(
            [np.stack([self.src[et] + node_off[et[0]], self.dst[et] + node_off[et[2]]]) for et in relations], axis=1)
            if relations else np.zeros((2, 0), np.int64))

    def attribute_relations(self) -> list[EdgeType]:
        """Relations from users or items to attribute nodes (genre, decade, occupation...)."""
        ends = ("user", "item")
        return [et for et in self.types if et[0] in ends and et[2] not in ends]

    def attribute_edges(self, user: int, item: int) -> np.ndarray:
        """Global positions of the user's and the item's attribute edges."""
        out = [self.start[et] + np.flatnonzero(self.src[et] == (user if et[0] == "user" else item))
               for et in self.attribute_relations()]
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def positions(self, et: EdgeType, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Positions within relation ``et`` of the edges ``src → dst`` (ValueError if one is missing)."""
        keys, order = self.sorted_keys[et]
        want = np.asarray(src, np.int64) * self.n[et[2]] + np.asarray(dst, np.int64)
        pos = np.searchsorted(keys, want).clip(max=max(len(keys) - 1, 0))
        if len(want) and (len(keys) == 0 or not np.array_equal(keys[pos], want)):
            raise ValueError(f"edges missing from {et}")
        return order[pos]

    def relation(self, edge: Edge) -> tuple[EdgeType, int, int]:
        (st, s), (dt, d) = edge[0].split(":"), edge[1].split(":")
        return (st, edge[2], dt), int(s), int(d)

    def ids(self, edges: list[Edge]) -> np.ndarray:
        """Global positions of the given edges in the list."""
        out = []
        for e in edges:
            et, s, d = self.relation(e)
            if et not in self.start:
                raise ValueError(f"edge {e} is of a relation the model does not use")
            out.append(self.start[et] + int(self.positions(et, np.array([s]), np.array([d]))[0]))
        return np.asarray(out, np.int64)

    def edge(self, gid: int) -> Edge:
        for et in reversed(self.types):
            if gid >= self.start[et]:
                p = gid - self.start[et]
                return (f"{et[0]}:{self.src[et][p]}", f"{et[2]}:{self.dst[et][p]}", et[1])
        raise IndexError(gid)

    def subgraph(self, keep: np.ndarray) -> HeteroData:
        """A copy of the graph with only the kept edges of the listed relations (both directions)."""
        g = self.graph.clone()
        for et in self.types:
            self._mask(g, et, keep[self.start[et]: self.start[et] + len(self.src[et])])
        for rev, (et, pos) in self.rev_pos.items():
            self._mask(g, rev, keep[self.start[et] + pos])
        return g

    @staticmethod
    def _mask(g: HeteroData, et: EdgeType, k: np.ndarray) -> None:
        if k.all():
            return
        ei = g[et].edge_index
        kt = torch.from_numpy(k).to(ei.device)
        for key, value in list(g[et].items()):
            if isinstance(value, torch.Tensor) and key != "edge_index" and value.shape[:1] == ei.shape[1:]:
                g[et][key] = value[kt]
        g[et].edge_index = ei[:, kt]


class Rescorer:
    """Scores and ranks of a user's unseen items on an edited graph, same weights."""

    def __init__(self, model: ScoringModel, edges: EdgeList, seen: sp.csr_matrix, seed: int) -> None:
        self.model, self.edges, self.seen = model, edges, seen.tocsr()
        self.ties = np.random.default_rng(seed)  # tie-breaking only: the control draws have their own generator
        self.attributes = [t for t, _ in model.node_layout[2:]] if isinstance(model, LightGCN) else []
        self.full = self._embeddings(None)
        self.cache: dict[bytes, tuple[float, int]] = {}

    @torch.no_grad()
    def _embeddings(self, keep: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        if not isinstance(m, LightGCN | GraphSAGE):  # item weights: scored per user from the kept history
            return (torch.zeros(0), torch.zeros(0))
        if isinstance(m, LightGCN):
            original = m.adj
            if keep is not None:
                m.adj = normalized_adjacency(self.edges.subgraph(keep), device=m.adj.device, attributes=self.attributes)
            try:
                return m.get_embedding()
            finally:
                m.adj = original
        assert isinstance(m, GraphSAGE)
        original = m.graph
        if keep is not None:
            m.graph = self.edges.subgraph(keep)
            m._on.clear()
        try:
            return m.get_embedding()
        finally:
            if keep is not None:
                m.graph = original
                m._on.clear()

    def _history(self, user: int, keep: np.ndarray | None) -> np.ndarray:
        et = ("user", "interacts", "item")
        mine = np.flatnonzero(self.edges.src[et] == user)
        if keep is not None:
            mine = mine[keep[self.edges.start[et] + mine]]
        return self.edges.dst[et][mine].astype(np.int64)

    def reset(self) -> None:
        """Forget the previous pair's edits (call once per pair)."""
        self.cache.clear()

    def score_and_rank(self, user: int, item: int, keep: np.ndarray | None = None) -> tuple[float, int]:
        """The pair's score and the item's rank among the user's unseen items (ties in random order)."""
        key = b"full" if keep is None or keep.all() else np.packbits(keep).tobytes()
        if key not in self.cache:
            if isinstance(self.model, LightGCN | GraphSAGE):
                users, items = self.full if key == b"full" else self._embeddings(keep)
                scores = unseen_scores(self.model, np.array([user]), None, (users, items)).cpu()  # [1, I]
            else:  # the user's score from their history less the removed edges (same item weights)
                scores = self.model.score_history(torch.from_numpy(self._history(user, keep))).cpu()[None].clone()
            s = scores[0, item].item()
            scores = mask_seen(scores, np.array([user]), self.seen)[0]
            above, tied = int((scores > s).sum()), int((scores == s).sum()) - 1
            self.cache[key] = (float(s), 1 + above + int(self.ties.integers(0, tied + 1)))
        return self.cache[key]


class TopKExplainer(PygExplainer):
    """PyG's ``Explainer`` whose prediction for one pair is the class "item in the user's top-K".

    A model-type explanation of a binary classifier with raw output
    ``K + 0.5 - rank`` (PyG's ``get_target``: ``rank <= K``). A masked
    prediction deletes the edges whose mask is 0 instead of scaling their
    messages; everything else (``get_target``, ``fidelity``) is PyG's.
    """

    def __init__(self, rescorer: Rescorer, user: int, item: int, k: int) -> None:
        super().__init__(model=torch.nn.Identity(), algorithm=DummyExplainer(), explanation_type="model",
                         edge_mask_type="object",
                         model_config={"mode": "binary_classification", "task_level": "edge", "return_type": "raw"})
        self.rescorer, self.user, self.item, self.k = rescorer, user, item, k

    def get_prediction(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self._raw(None)

    def get_masked_prediction(self, x: Any, edge_index: Any, node_mask: Any = None, edge_mask: Any = None,
                              **kwargs: Any) -> torch.Tensor:
        return self._raw(None if edge_mask is None else edge_mask.cpu().numpy() > 0.5)

    def _raw(self, keep: np.ndarray | None) -> torch.Tensor:
        _, rank = self.rescorer.score_and_rank(self.user, self.item, keep)
        return torch.tensor([self.k + 0.5 - rank])


def pyg_fidelity(rescorer: Rescorer, edges: EdgeList, user: int, item: int, chosen: np.ndarray,
                 k: int) -> tuple[float, float]:
    """(fid+, fid-) of one pair with edge set ``chosen``, by ``torch_geometric.explain.metric.fidelity``."""
    wrapper = TopKExplainer(rescorer, user, item, k)
    mask = torch.zeros(edges.size)
    mask[torch.from_numpy(chosen)] = 1.0
    ex = PygExplanation(edge_index=edges.edge_index, edge_mask=mask,
                        target=wrapper.get_target(wrapper.get_prediction()))
    ex._model_args = []
    return fidelity(wrapper, ex)


def relations_used(model: ScoringModel, graph: HeteroData) -> list[EdgeType]:
    """Forward edge types the model propagates over."""
    fwd = [et for et in graph.edge_types if not et[1].startswith("rev_")]
    if isinstance(model, GraphSAGE):
        return [et for et in fwd if et in model.encoder.edge_types]
    if not isinstance(model, LightGCN):  # a sum over the history (EASE, ItemKNN): the user-item edges alone
        return [et for et in fwd if et == ("user", "interacts", "item")]
    nodes = {t for t, _ in model.node_layout}
    return [et for et in fwd if et[0] in nodes and et[2] in nodes]


def item_similarity(train: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Binary train matrix, its transpose and the item columns' norms, for cosine similarities of one row."""
    x = sp.csr_matrix(train, dtype=np.float64)
    x.data[:] = 1.0
    xt = x.T.tocsr()
    return x, xt, np.sqrt(np.asarray(xt.sum(1)).ravel())


def knn_history(sim: tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray], item: int, history: np.ndarray, k: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` history items with the largest cosine similarity to ``item`` (ties at random), and their values."""
    x, xt, norms = sim
    dots = np.asarray((xt[item] @ x).todense()).ravel()[history]  # [|history|]
    denom = norms[item] * norms[history]
    s = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
    order = np.lexsort((rng.random(len(history)), -s))[:k]
    return history[order], s[order]


def roles(edges: EdgeList, et: EdgeType, user: int, item: int, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Role (USER, TARGET, HISTORY, OTHER) of each edge's source and target in relation ``et``."""
    out = []
    for t, ends in ((et[0], edges.src[et]), (et[2], edges.dst[et])):
        table = np.full(edges.n[t], OTHER, np.int8)
        if t == "user":
            table[user] = USER
        elif t == "item":
            table[history] = HISTORY
            table[item] = TARGET
        out.append(table[ends])
    return out[0], out[1]


def degree_matched(edges: EdgeList, chosen: np.ndarray, user: int, item: int, history: np.ndarray,
                   rng: np.random.Generator, same_roles: bool, relaxed: dict[str, int]) -> np.ndarray:
    """One random degree-matched edge per chosen edge (the rule: the module docstring, set (d) / (d'))."""
    taken = set(chosen.tolist())
    picks = []
    role_cache: dict[EdgeType, tuple[np.ndarray, np.ndarray]] = {}
    for gid in chosen.tolist():
        et = next(t for t in reversed(edges.types) if gid >= edges.start[t])
        p = gid - edges.start[et]
        bs, bd = edges.bucket[et]
        deg_ok = (bs == bs[p]) & (bd == bd[p])
        if same_roles:
            if et not in role_cache:
                role_cache[et] = roles(edges, et, user, item, history)
            rs, rd = role_cache[et]
            role_ok = (rs == rs[p]) & (rd == rd[p])
            # fixed ends (the user, the item) need no degree match: they are the same node
            free_ok = ((bs == bs[p]) | (rs[p] in (USER, TARGET))) & ((bd == bd[p]) | (rd[p] in (USER, TARGET)))
            tries = [("matched", role_ok & free_ok), ("roles only", role_ok), ("degrees only", deg_ok)]
        else:
            tries = [("matched", deg_ok)]
        for name, ok in tries:
            cand = np.flatnonzero(ok) + edges.start[et]
            cand = cand[~np.isin(cand, list(taken))]
            if len(cand):
                g = int(rng.choice(cand))
                picks.append(g)
                taken.add(g)
                relaxed[name] = relaxed.get(name, 0) + 1
                break
        else:
            relaxed["none"] = relaxed.get("none", 0) + 1
    return np.asarray(picks, np.int64)


def sage_path_items_share(ex: Explanation) -> float:
    """The share of a GraphSAGE explanation's lift carried by the first two distinct history items of its paths
    (their parts of the split by first step): what its sentence named as the reasons before it named the parts
    (approximately: the paths are chosen a little differently since, the best one through each way first)."""
    items = list(dict.fromkeys(p[1] for p, _ in ex.paths if p[1].startswith("item:")))[:2]
    return sum(c.value for c in ex.via if c.group == "history" and c.nodes and c.nodes[0] in items) / ex.lift


def top_edges(ex: Explanation, k: int) -> list[Edge]:
    """The explanation's ``k`` most important edges that carry score (context edges have importance 0)."""
    return [(e.source, e.target, e.type) for e in ex.top_edges(len(ex.edges))
            if e.importance > 0 and e.type != "item weight"][:k]  # item-weights: the user's edges, not the weights


@torch.enable_grad()
def _edges_that_matter(model: GraphSAGE, sub: Any) -> dict[Any, torch.Tensor]:
    """The subgraph's edge types whose messages reach the pair's score (Captum differentiates every mask it is
    given and refuses one the score does not use, such as messages into attribute nodes at the last layer)."""
    from torch_geometric.explain.algorithm.utils import clear_masks, set_hetero_masks

    from graphrec.explain.sage import _plain_mask_slots

    _plain_mask_slots(model.encoder)
    edges = {et: e for et, e in sub.edges.items() if et in model.encoder.edge_types}
    masks = {et: torch.ones(e.shape[1], requires_grad=True) for et, e in edges.items()}
    set_hetero_masks(model.encoder, masks, edges, apply_sigmoid=False)
    try:
        h = model.encoder(sub.x, sub.node, edges)
        grads = torch.autograd.grad((h["user"][0] * h["item"][0]).sum(), list(masks.values()), allow_unused=True)
    finally:
        clear_masks(model.encoder)
    return {et: e for (et, e), g in zip(edges.items(), grads, strict=True) if g is not None}


@torch.enable_grad()
def pyg_top_edges(model: GraphSAGE, user: int, item: int, algorithm: str, k: int) -> tuple[list[Edge], float]:
    """PyG's own explainers (``torch_geometric.explain``) on the same computation subgraph graphrec explains:
    GNNExplainer (100 epochs, PyG's default) or Captum's integrated gradients through PyG's CaptumExplainer
    (50 steps, Captum's default), both over edge masks ("object"), explaining the model's pair score
    (regression, raw). Returns the ``k`` forward edges with the largest summed mask over both directions,
    and the seconds the explanation took."""
    from torch_geometric.explain import CaptumExplainer, GNNExplainer
    from torch_geometric.explain import Explainer as PygExplainer

    from graphrec.explain.sage import _plain_mask_slots, computation_subgraph

    sub = computation_subgraph(model, user, item)
    x = {t: v if v is not None else torch.zeros(len(sub.node[t]), 1) for t, v in sub.x.items()}

    class PairScore(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = model.encoder

        def forward(self, x: dict[str, torch.Tensor], edge_index: dict[Any, torch.Tensor]) -> torch.Tensor:
            real = {t: (v if sub.x[t] is not None else None) for t, v in x.items()}
            h = self.encoder(real, sub.node, edge_index)
            return (h["user"][0] * h["item"][0]).sum().view(1, 1)

    algo = GNNExplainer(epochs=100) if algorithm == "gnnexplainer" else CaptumExplainer("IntegratedGradients")
    explainer = PygExplainer(PairScore().eval(), algo, explanation_type="model", node_mask_type=None,
                             edge_mask_type="object",
                             model_config={"mode": "regression", "task_level": "graph", "return_type": "raw"})
    used = _edges_that_matter(model, sub)
    t = time.perf_counter()
    try:
        expl = explainer(x, used)
    finally:
        _plain_mask_slots(model.encoder)  # PyG leaves its mask slots registered as parameters
    seconds = time.perf_counter() - t
    merged: dict[Edge, float] = defaultdict(float)
    for et, e in used.items():
        mask = expl[et].get("edge_mask")
        if mask is None:
            continue
        src = sub.node[et[0]][e[0]].tolist()
        dst = sub.node[et[2]][e[1]].tolist()
        fwd = not et[1].startswith("rev_")
        rel = et[1] if fwd else et[1][4:]
        for a_, b_, v in zip(src, dst, mask.detach().tolist(), strict=True):
            key = (f"{et[0]}:{a_}", f"{et[2]}:{b_}", rel) if fwd else (f"{et[2]}:{b_}", f"{et[0]}:{a_}", rel)
            merged[key] += v
    top = sorted(merged, key=lambda e: -merged[e])[:k]
    return top, seconds


@torch.no_grad()
def item_side_shares(model: LightGCN, cache: dict[str, Any], user: int, item: int, seen: np.ndarray,
                      history: np.ndarray, contrastive: bool) -> dict[str, float]:
    """The same explained difference split from the item's side, for the bound on what a sentence can name.

    ``P = Σ_k w_k Â^k`` is symmetric, so the difference also splits over the
    nodes ``w`` near the *item*:

    .. math:: e_u^\\top (e_i - r) = \\sum_w (P_{iw} - \\bar P_w) \\, (e^0_w)^\\top e_u

    with ``P̄`` the mean of the candidates' rows (``r`` their mean embedding;
    0 without a reference). History items now take part through their
    co-raters ("people who rated *h* also rated *i*"). Returns the
    difference, and the shares of it carried by the user's history items
    (all, and the largest three), by the other users (the item's raters and
    users 3 hops away), by the user's own embedding (3 hops from the item:
    user, history item, co-rater, item) and by the item's own embedding.
    """
    if "e0" not in cache:
        cache["e0"], (cache["users"], cache["items"]) = model.layer0_all(), model.get_embedding()
    adj, nu = model.adj, model.num_users
    start = torch.zeros(adj.shape[0], dtype=cache["e0"].dtype, device=adj.device)
    start[nu + item] = 1.0
    if contrastive:  # minus the mean candidate (every item the user has not seen)
        mean = torch.zeros_like(start)
        mean[nu:nu + model.num_items] = 1.0
        mean[nu + torch.from_numpy(seen.astype(np.int64)).to(adj.device)] = 0.0
        start = start - mean / mean.sum()
    reach = propagate(model.product(), start.unsqueeze(1), model.layer_weights()).squeeze(1)  # P (1_i - mean)
    values = (reach * (cache["e0"] @ cache["users"][user])).cpu()
    difference = float(values.sum())
    hist = np.sort(values[nu + torch.from_numpy(history.astype(np.int64))].numpy())[::-1] / difference
    return {"difference": difference, "history": float(hist.sum()), "history_best_three": float(hist[:3].sum()),
            "users": float(values[:nu].sum() - values[user]) / difference, "own": float(values[user]) / difference,
            "item": float(values[nu + item]) / difference}


def sentence_metrics(model: ScoringModel, data: Any, users: np.ndarray, k: int, seed: int) -> dict[str, Any]:
    """What the sentences name, for LightGCN-style (exact) explanations: over the (user, top-1) pairs, the
    share of the explained difference carried by the history items a sentence names and by the user's own
    embedding; over each user's top ``k``, the mean pairwise Jaccard of the named sets. For the contrastive
    explanation (the mean candidate), the score decomposition (reference none), and the rule of the previous
    sentence (the two history items whose edges carry the most score, all crossings counted).

    Also: the most any three history items carry (the bound on what a sentence naming three can reach), how
    many of the largest it takes to reach 30% of the difference (the issue's goal; users whose items never
    reach it count as their whole history), and the share of everything the sentence names: the named items,
    the named theme's items (once each) and the user's own embedding where the sentence names it. The
    previous rule's row explains the score, so its bound and count are the score row's. Every share is of the
    explained difference (the sentence's own shares are of the lift, the sum of the positive parts).

    For the two exact rows, the same difference split from the item's side too (:func:`item_side_shares`):
    the other exact reading, in which history items count through their co-raters."""
    from graphrec.explain.explanation import OWN_SHARE_SHOWN
    from graphrec.explain.lightgcn import edge_flows, walk_terms

    def explainer(reference: str) -> Explainer:
        return Explainer(model, data.graph, seen=data.seen, train=data.train, users=data.dataset.users,
                         items=data.dataset.items, reference=reference, top=10_000)

    lists = topk(unseen_scores(model, users, data.seen).cpu(), k, generator=torch.Generator().manual_seed(seed))[1]
    out: dict[str, Any] = {}
    cache: dict[str, Any] = {}  # layer-0 and propagated embeddings, for item_side_shares
    nu = model.num_users
    rows = (("contrastive", "mean"), ("score", "none"))
    if isinstance(model, LightGCN):  # the rule of the sentence before 2026-12-06 read LightGCN's walks
        rows += (("previous rule", "none"),)
    for name, reference in rows:
        ex = explainer(reference)
        shares, owns, jaccards, themes, bound3, needed, said = [], [], [], [], [], [], []
        item_side: list[dict[str, float]] = []
        for row, u in enumerate(users.tolist()):
            cited = []
            for j, i in enumerate(lists[row].tolist()):
                e = ex.explain_index(u, i)
                via = {c.nodes[0]: c.value for c in e.via if c.nodes}
                if name == "previous rule":  # the old sentence: top-2 history items by all-crossing edge flows
                    terms = walk_terms(model, u, i)
                    hist = data.train[u].indices
                    src = torch.full((len(hist),), u)
                    dst = torch.from_numpy(hist.astype(np.int64)) + nu
                    flows = (edge_flows(model, terms, src, dst) + edge_flows(model, terms, dst, src)).numpy()
                    keys = [f"item:{h}" for h in hist[np.argsort(-flows, kind="stable")[:2]] if flows.size]
                else:
                    keys = [c.nodes[0] for c, _ in e.named()]
                cited.append(set(keys))
                if j == 0 and name != "previous rule" and isinstance(model, LightGCN):
                    x = item_side_shares(model, cache, u, i, data.seen[u].indices, data.train[u].indices,
                                         contrastive=reference == "mean")
                    if not abs(x["difference"] - e.difference) <= 1e-3 * max(1.0, abs(e.difference)):  # both exact
                        raise AssertionError(f"user {u}, item {i}: the item's side sums to {x['difference']:.6f}, "
                                             f"the explanation's difference is {e.difference:.6f}")
                    item_side.append(x)
                if j == 0:  # the user's top-1 (the pairs above, ties drawn with the same seed)
                    shares.append(sum(via.get(key, 0.0) for key in keys) / e.difference)
                    owns.append(sum(c.value for c in e.via if c.group == "user") / e.difference)
                    theme = e.theme() if name != "previous rule" else None
                    themes.append(theme[0].value / e.difference if theme is not None else 0.0)
                    parts = np.sort([c.value for c in e.via if c.group == "history"])[::-1] / e.difference
                    bound3.append(float(parts[:3].sum()))
                    reach = np.flatnonzero(np.cumsum(parts) >= 0.3)
                    needed.append(int(reach[0]) + 1 if len(reach) else len(parts))
                    union = set(keys) | (set(theme[0].nodes[1:]) if theme is not None else set())
                    own = sum(c.value for c in e.via if c.group == "user")
                    shown = (name != "previous rule" and e.difference > 0 and e.lift > 0
                             and own / e.lift >= OWN_SHARE_SHOWN)  # as _contrastive_reasons decides
                    said.append((sum(via.get(key, 0.0) for key in union) + (own if shown else 0.0)) / e.difference)
            pairs = [len(x & y) / len(x | y) for a_, x in enumerate(cited) for y in cited[a_ + 1:] if x | y]
            jaccards.append(float(np.mean(pairs)) if pairs else 0.0)
        out[name] = {"named_share": round(float(np.mean(shares)), 4), "own_share": round(float(np.mean(owns)), 4),
                     "cited_jaccard": round(float(np.mean(jaccards)), 4),
                     "theme_share": round(float(np.mean(themes)), 4),
                     "best_three_share": round(float(np.mean(bound3)), 4),
                     "items_for_30_median": float(np.median(needed)),
                     "sentence_share": round(float(np.mean(said)), 4)}
        if item_side:
            out[name]["item_side"] = {k: round(float(np.mean([x[k] for x in item_side])), 4) for k in item_side[0]
                                      if k != "difference"}
    return out


def _draw(rng: np.random.Generator, pool: np.ndarray, k: int) -> np.ndarray:
    return rng.choice(pool, size=min(k, len(pool)), replace=False) if len(pool) else pool


def _mean_ci(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, np.float64)
    return float(v.mean()), float(1.96 * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


def _relative(path: str) -> str:
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else p.name


def combine(outputs: list[str]) -> dict[str, Any]:
    """The explanations issue's one JSON line, from the last line of saved outputs of this script."""
    out: dict[str, Any] = {}
    for path in outputs:
        last = json.loads(Path(path).read_text().strip().splitlines()[-1])
        keys = ("pairs", "named_share", "best_three_share", "items_for_30_median", "own_share", "theme_share",
                "sentence_share", "item_side_history_share", "item_side_best_three_share", "cited_jaccard",
                "cited_jaccard_previous",
                "rank_drop", "knn_control_rank_drop", "lightgcn_p50_ms") if "lightgcn_p50_ms" in last else \
            ("sage_p50_ms", "sage_connected", "sage_named_share", "sage_path_items_share", "pyg_gnnexplainer_p50_ms",
             "pyg_captum_ig_p50_ms")
        out.update({k: last[k] for k in keys if k in last})
        if "sage_p50_ms" in last:
            out["sage_pairs"] = last["pairs"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=None, help="a finished run directory (default: train --config)")
    p.add_argument("--config", default=str(HERE / "ml100k-lightgcn.yaml"))
    p.add_argument("--epochs", type=int, default=None, help="cap the configuration's epochs when training")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a configuration value, e.g. --set train.epochs=50")
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--edges", type=int, default=5)
    p.add_argument("--ks", default="1,10", help="K of the top-K prediction whose fidelity is measured")
    p.add_argument("--buckets", type=int, default=5, help="degree buckets (quantiles) of the degree-matched sets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sentence-k", type=int, default=10, help="each user's top K whose named sets are compared")
    p.add_argument("--pyg", action="store_true",
                   help="GraphSAGE: also PyG's GNNExplainer and Captum integrated gradients on the same pairs")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda: where the model trains, explains and re-scores")
    p.add_argument("--lock", default=None, metavar="FILE",
                   help="take an exclusive flock(2) on FILE after training, for the measured part")
    p.add_argument("--out", default=None, help="where to save the printed output "
                                                "(default experiments/results/bench_explain_<name>.txt)")
    p.add_argument("--combine", nargs="+", default=None, metavar="OUTPUT",
                   help="print the issue's one-line summary from saved outputs (a LightGCN-style run's and a "
                        "GraphSAGE run's) instead of running")
    a = p.parse_args()
    if a.combine:
        print(json.dumps(combine(a.combine)))
        return
    torch.set_num_threads(a.threads)
    ks = [int(k) for k in a.ks.split(",")]
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    trained = ""
    if a.run:
        cfg, data, model = load_run(a.run, device=a.device)
        source = f"--run of a finished `{cfg.name}` run (best checkpoint)"
    else:
        import yaml

        cfg = load_config(a.config, {k: yaml.safe_load(v) for k, v in (x.split("=", 1) for x in a.set)})
        cfg = replace(cfg, train=replace(cfg.train, device=a.device, progress=False,
                                         epochs=min(cfg.train.epochs, a.epochs) if a.epochs else cfg.train.epochs))
        data = prepare(cfg)
        model = build_model(cfg, data)
        t = time.perf_counter()
        if model.trainable:
            trainer = Trainer(model, data.train, Evaluator(data.valid, data.train, ks=(20,), metrics=("ndcg",)),
                              cfg.train)
            trainer.fit()
            trainer.load_best()
            model = trainer.model.eval()
            trained = (f"trained by this script from {_relative(a.config)} in {time.perf_counter() - t:.0f} s "
                       f"({len(trainer.history)} epochs, best at epoch {trainer.best_epoch})")
        else:
            model = model.fit(data.train).eval()
            trained = f"fitted by this script from {_relative(a.config)} in {time.perf_counter() - t:.0f} s"
        source = f"`{cfg.name}`, {trained}"
    torch.set_num_threads(a.threads)  # again: training may set its own count (train.threads)
    if a.lock:
        lock = open(a.lock, "a")
        t = time.perf_counter()
        fcntl.flock(lock, fcntl.LOCK_EX)
        print(f"(waited {time.perf_counter() - t:.0f} s for the lock)", file=sys.stderr)

    say(f"bench_explain.py: {type(model).__name__} on {model.device}, {source}")
    say(f"date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d}, {os.cpu_count()} CPU cores visible, "
        f"torch threads {torch.get_num_threads()} (--threads {a.threads}), seed {a.seed}")

    seen = data.seen
    graph = model.graph if isinstance(model, GraphSAGE) else data.graph
    edges = EdgeList(graph, relations_used(model, graph), a.buckets)
    explainer = Explainer(model, data.graph, seen=seen, train=data.train, users=data.dataset.users,
                          items=data.dataset.items)
    rescorer = Rescorer(model, edges, seen, a.seed + 1)
    sim = item_similarity(data.train)
    rng = np.random.default_rng(a.seed)
    active = np.flatnonzero(np.diff(data.train.indptr) > 0)
    users = rng.choice(active, size=min(a.pairs, len(active)), replace=False)
    scores = unseen_scores(model, users, seen).cpu()
    tops = topk(scores, 1, generator=torch.Generator().manual_seed(a.seed))[1][:, 0].tolist()
    say(f"{len(users)} (user, top-1 item) pairs; {edges.size:,} edges in the relations the model uses "
        f"({', '.join(et[1] for et in edges.types)}); {a.edges} edges per set; K = {', '.join(map(str, ks))}")

    explainer.explain_index(int(users[0]), tops[0])  # warm-up: caches LightGCN's propagated embeddings
    attribute_relations = edges.attribute_relations()
    sets_used = [(n, label) for n, label in SETS if n != "pair_attributes" or attribute_relations]
    if a.pyg and isinstance(model, GraphSAGE):
        sets_used += [("pyg_gnnexplainer", "(f) PyG GNNExplainer's top 5"),
                      ("pyg_captum_ig", "(g) PyG + Captum integrated gradients' top 5")]
    pyg_seconds: dict[str, list[float]] = {"gnnexplainer": [], "captum_ig": []}
    pyg_failures: dict[str, list[str]] = {"gnnexplainer": [], "captum_ig": []}
    names = [n for n, _ in sets_used]
    drops: dict[str, list[tuple[float, int]]] = {n: [] for n in names}
    fids: dict[str, dict[int, list[tuple[float, float]]]] = {n: {k: [] for k in ks} for n in names}
    sizes: dict[str, list[int]] = {n: [] for n in names}
    alone: dict[str, list[int]] = {n: [] for n in names}  # the item's rank on the graph of S's edges alone
    relaxed: dict[str, int] = {}
    relaxed_anywhere: dict[str, int] = {}
    knn_sims, latency, base_ranks, base_scores = [], [], [], []
    connected: list[bool] = []
    carried, path_items = [], []  # GraphSAGE: shares of the lift the sentence names, now and as it named before
    started = time.perf_counter()
    for n_done, (u, i) in enumerate(zip(users.tolist(), tops, strict=True), start=1):
        t = time.perf_counter()
        ex = explainer.explain_index(u, i)
        latency.append((time.perf_counter() - t) * 1e3)
        connected.append(nx.has_path(ex.to_networkx(), ex.user, ex.item))
        if ex.method == "integrated-gradients" and ex.lift > 0:
            carried.append(sum(x for _, x in ex.carriers()))
            path_items.append(sage_path_items_share(ex))
        rescorer.reset()
        base_score, base_rank = rescorer.score_and_rank(u, i)
        base_scores.append(base_score)
        base_ranks.append(base_rank)
        history = data.train[u].indices.astype(np.int64)
        own = edges.ids([(f"user:{u}", f"item:{h}", "interacts") for h in history.tolist()])
        explain = edges.ids(top_edges(ex, a.edges))
        near, near_sims = knn_history(sim, i, history, a.edges, rng)
        knn_sims.extend(near_sims.tolist())
        sets = {
            "explain": explain,
            "random_own": _draw(rng, own, a.edges),
            "itemknn_own": edges.ids([(f"user:{u}", f"item:{h}", "interacts") for h in near.tolist()]),
            "degree": degree_matched(edges, explain, u, i, history, rng, True, relaxed),
            "degree_anywhere": degree_matched(edges, explain, u, i, history, rng, False, relaxed_anywhere),
        }
        if attribute_relations:
            pool = np.setdiff1d(edges.attribute_edges(u, i), explain)
            sets["pair_attributes"] = _draw(rng, pool, a.edges)
        if a.pyg and isinstance(model, GraphSAGE):
            for algorithm in ("gnnexplainer", "captum_ig"):
                try:
                    chosen_edges, secs = pyg_top_edges(model, u, i, algorithm, a.edges)
                except Exception as exc:  # a peer's failure is reported, not fatal: its set stays empty
                    pyg_failures[algorithm].append(f"{type(exc).__name__}: {str(exc)[:120]}")
                    chosen_edges, secs = [], float("nan")
                sets[f"pyg_{algorithm}"] = edges.ids(chosen_edges)
                if secs == secs:
                    pyg_seconds[algorithm].append(secs)
        for name, chosen in sets.items():
            keep = np.ones(edges.size, dtype=bool)
            keep[chosen] = False
            s, r = rescorer.score_and_rank(u, i, keep)
            drops[name].append((base_score - s, r - base_rank))
            alone[name].append(rescorer.score_and_rank(u, i, ~keep)[1])
            sizes[name].append(len(chosen))
            for k in ks:
                fids[name][k].append(pyg_fidelity(rescorer, edges, u, i, chosen, k))
        if n_done % 25 == 0:
            print(f"  {n_done}/{len(users)} pairs, {time.perf_counter() - started:.0f} s", file=sys.stderr)

    lat = np.asarray(latency)
    result: dict[str, Any] = {"model": type(model).__name__, "config": cfg.name, "pairs": len(users),
                              "edges": a.edges, "ks": ks, "threads": torch.get_num_threads(), "sets": {}}
    say(f"base: mean score {np.mean(base_scores):.4f}; pairs whose item is not at rank 1 on the full graph "
        f"(ties at random): {sum(r != 1 for r in base_ranks)}")
    say()
    head = "| edges removed / kept (S) | score drop | rank drop | (a) > it |"
    head += "".join(f" fid+@{k} | fid-@{k} |" for k in ks) + " rank on S alone (median) |"
    say(head)
    say("|" + " --- |" * (head.count("|") - 1))
    for name, label in sets_used:
        sd = _mean_ci([d[0] for d in drops[name]])
        rd = _mean_ci([float(d[1]) for d in drops[name]])
        wins = float(np.mean([e[0] > c[0] for e, c in zip(drops["explain"], drops[name], strict=True)]))
        fid = {k: (float(np.mean([f[0] for f in fids[name][k]])), float(np.mean([f[1] for f in fids[name][k]])))
               for k in ks}
        line = f"| {label} | {sd[0]:.4f} ± {sd[1]:.4f} | {rd[0]:.2f} ± {rd[1]:.2f} | "
        line += "" if name == "explain" else f"{wins:.0%}"
        line += " |" + "".join(f" {fid[k][0]:.3f} | {fid[k][1]:.3f} |" for k in ks)
        line += f" {np.median(alone[name]):.0f} |"
        say(line)
        entry: dict[str, Any] = {"score_drop": round(sd[0], 4), "score_drop_ci95": round(sd[1], 4),
                                 "rank_drop": round(rd[0], 2), "rank_drop_ci95": round(rd[1], 2),
                                 "mean_edges": round(float(np.mean(sizes[name])), 2),
                                 "rank_on_s_alone_median": float(np.median(alone[name]))}
        if name != "explain":
            entry["explain_drop_larger"] = round(wins, 3)
        for k in ks:
            entry[f"fid+@{k}"], entry[f"fid-@{k}"] = round(fid[k][0], 4), round(fid[k][1], 4)
        result["sets"][name] = entry
    say()
    say("edges per set (mean): " + ", ".join(f"{n} {np.mean(sizes[n]):.2f}" for n in names))
    say(f"(c) mean cosine similarity of the chosen history items to the item: {np.mean(knn_sims):.4f}")
    say(f"(d) draws: {_counts(relaxed)}; (d') draws: {_counts(relaxed_anywhere)}")
    say(f"latency per explanation (after a warm-up): p50 {np.percentile(lat, 50):.1f} ms, "
        f"p95 {np.percentile(lat, 95):.1f} ms, max {lat.max():.1f} ms; "
        f"whole measured loop {time.perf_counter() - started:.0f} s")
    result.update({"base_rank_not_1": sum(r != 1 for r in base_ranks), "degree_draws": relaxed,
                   "degree_anywhere_draws": relaxed_anywhere, "itemknn_mean_sim": round(float(np.mean(knn_sims)), 4),
                   "p50_ms": round(float(np.percentile(lat, 50)), 2), "p95_ms": round(float(np.percentile(lat, 95)), 2),
                   "max_ms": round(float(lat.max()), 2)})
    say(f"explanations whose subgraph connects the user to the item: {sum(connected)}/{len(connected)}")
    for algorithm, failed in pyg_failures.items():
        if failed:
            say(f"PyG {algorithm} failed on {len(failed)} of {len(users)} pairs (its set is empty there): {failed[0]}")
            result[f"pyg_{algorithm}_failures"] = len(failed)
    for algorithm, secs in pyg_seconds.items():
        if secs:
            say(f"PyG {algorithm}: p50 {1000 * np.median(secs):.0f} ms per explanation (graphrec: "
                f"{np.percentile(lat, 50):.0f} ms)")
            result[f"pyg_{algorithm}_p50_ms"] = round(float(1000 * np.median(secs)), 1)
    result["connected"] = round(float(np.mean(connected)), 4)
    if explainer.method == "integrated-gradients":
        result.update({"sage_connected": result["connected"], "sage_p50_ms": result["p50_ms"]})
        if carried:
            say(f"what the sentence names, as a share of what raises the score (the positive parts of the split by "
                f"first step): {np.mean(carried):.3f} (mean over {len(carried)} pairs); the two history items that "
                f"the paths start from, which the sentence named as its reasons before 2026-12-07: "
                f"{np.mean(path_items):.3f}")
            result.update({"sage_named_share": round(float(np.mean(carried)), 4),
                           "sage_path_items_share": round(float(np.mean(path_items)), 4)})
    result["rank_drop"] = result["sets"]["explain"]["rank_drop"]
    result["knn_control_rank_drop"] = result["sets"]["itemknn_own"]["rank_drop"]
    if explainer.method in ("exact", "item-weights"):
        t = time.perf_counter()
        named = sentence_metrics(model, data, users, a.sentence_k, a.seed)
        say()
        say(f"## what the sentences name: {len(users)} (user, top-1) pairs, and each user's top {a.sentence_k} "
            f"({time.perf_counter() - t:.0f} s)")
        say("| explanation | share of the explained difference carried by the named items | the most any 3 "
            "history items carry | history items it takes to reach 30% (median) | the user's own "
            "embedding's share | the named theme's share | everything the sentence names | cited Jaccard over "
            f"the top {a.sentence_k} |")
        say("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, m in named.items():
            say(f"| {name} | {m['named_share']:.3f} | {m['best_three_share']:.3f} | {m['items_for_30_median']:g} | "
                f"{m['own_share']:.3f} | {m['theme_share']:.3f} | "
                f"{m['sentence_share']:.3f} | {m['cited_jaccard']:.3f} |")
        say()
        if explainer.method == "exact":
            say("The same difference split from the item's side (the nodes near the item, each weighed by the "
                "user's taste: history items count through their co-raters), over the same top-1 pairs:")
            say("| explanation | the user's history items | the most any 3 of them carry | other users (the item's "
                "raters and beyond) | the user's own embedding | the item's own embedding |")
            say("| --- | --- | --- | --- | --- | --- |")
            for name, m in named.items():
                if "item_side" in m:
                    x = m["item_side"]
                    say(f"| {name} | {x['history']:.3f} | {x['history_best_three']:.3f} | {x['users']:.3f} | "
                        f"{x['own']:.3f} | {x['item']:.3f} |")
        c = named["contrastive"]
        result.update({"named_share": c["named_share"], "own_share": c["own_share"],
                       "theme_share": c["theme_share"], "cited_jaccard": c["cited_jaccard"],
                       "best_three_share": c["best_three_share"], "items_for_30_median": c["items_for_30_median"],
                       "sentence_share": c["sentence_share"]})
        if explainer.method == "exact":
            result.update({"cited_jaccard_previous": named["previous rule"]["cited_jaccard"],
                           "named_share_previous": named["previous rule"]["named_share"],
                           "item_side_history_share": c["item_side"]["history"],
                           "item_side_best_three_share": c["item_side"]["history_best_three"],
                           "lightgcn_p50_ms": result["p50_ms"]})
    say(json.dumps(result))
    out = Path(a.out) if a.out else HERE / "results" / f"bench_explain_{cfg.name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"saved to {_relative(str(out))}", file=sys.stderr)


def _counts(c: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none"


if __name__ == "__main__":
    main()
