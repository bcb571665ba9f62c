"""Turn a model's numbers into an :class:`Explanation`: raw ids, labels, roles, the subgraph around the pair.

The math lives in :mod:`graphrec.explain.lightgcn` (exact walk
decomposition) and :mod:`graphrec.explain.sage` (integrated gradients); this
module picks the nodes and edges worth showing and names them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import cast

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import HeteroData

from graphrec.data.vocab import Vocabulary
from graphrec.errors import ConfigError, UnknownIdError
from graphrec.eval.topk import mask_seen, unseen_scores
from graphrec.explain.explanation import Contribution, ExplainEdge, ExplainNode, Explanation, type_name
from graphrec.explain.lightgcn import WalkTerms, edge_flows, first_hop, walk_terms
from graphrec.explain.sage import EdgeAttributions, graphsage_edge_attributions
from graphrec.graph.builder import INTERACTS, node_labels, node_raw_ids
from graphrec.graph.export import attribute_matrix, interaction_matrix
from graphrec.nn.base import ScoringModel
from graphrec.nn.lightgcn import LightGCN
from graphrec.nn.registry import MODELS, spec_of
from graphrec.nn.sage import GraphSAGE

_GROUPS = ("user", "history", "neighbor", "item", "recommended", "attribute")


def _role_codes(size: int, users: int, items: int, num_users: int, num_items: int, user: int, item: int,
                history: np.ndarray) -> np.ndarray:
    """Each of ``size`` nodes' role in explaining ``(user, item)``, as an index into ``_GROUPS``, for nodes laid out
    with the users from ``users`` and the items from ``items``: the user, the item (``"recommended"``), the user's
    history items, the other users (``"neighbor"``) and items, and every other node (``"attribute"``)."""
    code = np.full(size, _GROUPS.index("attribute"))
    code[users : users + num_users] = _GROUPS.index("neighbor")
    code[items : items + num_items] = _GROUPS.index("item")
    code[items + history] = _GROUPS.index("history")
    code[users + user] = _GROUPS.index("user")
    code[items + item] = _GROUPS.index("recommended")
    return code


@dataclass(frozen=True)
class _Messages:
    """A GraphSAGE pair's attributions, one entry per directed message of its computation subgraph.

    Attributes:
        src, dst: ``[M]`` global node ids (:meth:`Explainer._gid`) of sender and receiver.
        value: ``[M]`` integrated-gradients attributions (float64).
        relation: ``[M]`` index into ``relations`` of the message's relation in the graph's forward direction.
        forward: ``[M]`` whether the message runs in that direction (not a ``rev_`` edge type).
        relations: The relation names.
    """

    src: np.ndarray
    dst: np.ndarray
    value: np.ndarray
    relation: np.ndarray
    forward: np.ndarray
    relations: tuple[str, ...]
#: what a LightGCN-style explanation is relative to (Explainer's ``reference``), and how the sentence names it
REFERENCES = {"mean": "the mean of your candidates", "next": "the next item", "none": ""}
_GROUP_NAMES = {"user": "the user's own embedding", "history": "history items", "neighbor": "co-interacting users",
                "item": "items within reach", "recommended": "the item's own embedding",
                "attribute": "attribute nodes"}


class Explainer:
    """Explanations of a trained model's (user, item) scores, on the graph it was trained on.

    LightGCN gets the exact decomposition of its score over the nodes within
    L hops of the user (``method="exact"``); GraphSAGE gets integrated-gradients
    attributions of the messages of its computation subgraph
    (``method="integrated-gradients"``); a model whose score is a sum over
    the user's history items (EASE, ItemKNN, and GF-CF and BSPM, linear in the
    user's row) gets that sum, one exact part per history item
    (``method="item-weights"``).

    The subgraph shown holds the user, the item, the history items and
    co-interacting users that carried most of the score, and the attribute
    nodes (genres...) of the item. A LightGCN built with ``extra_nodes``
    (``model.attribute_nodes: true``) propagates over them, so their share of
    the score is exact like any node's; a plain LightGCN propagates over users
    and items only, so the genres the item shares with the history are shown
    as context: importance 0, drawn dashed.

    Args:
        model: A trained :class:`~graphrec.nn.LightGCN` (SimGCL, XSimGCL),
            :class:`~graphrec.nn.GraphSAGE`, :class:`~graphrec.nn.EASE`,
            :class:`~graphrec.nn.ItemKNN`, :class:`~graphrec.nn.GFCF` or
            :class:`~graphrec.nn.BSPM` (the model registry's ``explanation``).
        graph: The train graph (:class:`~graphrec.graph.GraphBuilder`), for
            raw ids, labels and attribute nodes.
        max_history, max_neighbors, max_attributes: Subgraph size.
        top: Contributions listed individually (the rest is the remainder).
        steps: Integrated-gradients steps (GraphSAGE; each is one forward
            and backward pass over the pair's computation subgraph).
        fanouts: GraphSAGE: neighbours per hop of the computation subgraph
            explained (default every neighbour: the subgraph of the model's
            own full-graph score). Smaller fan-outs explain a sampled
            estimate of the score, faster.
        seen: ``num_users × num_items`` items left out of the user's list when
            reporting the item's rank (default: the graph's train edges; pass
            train + valid to match a Recommender that excludes both).
        train: The prepared train matrix (default: derived from the graph's
            interaction edges).
        users, items: The prepared vocabularies, for raw-id lookups (default:
            the graph's ``node_raw_ids``).
        verb: How the sentences say what a user did with an item: ``"rated"``
            (default) or, for a log without ratings, ``"interacted with"``.
        reference: What a LightGCN-style explanation is relative to:
            ``"mean"`` (default: the mean score of the user's candidate items,
            those not in ``seen``), ``"next"`` (the item ranked just below), or
            ``"none"`` (the score itself, parts shared by every item included).

    The Explainer keeps LightGCN's propagated embeddings between calls: make
    a new one after the model changes.

    Example:
        >>> ex = Explainer(model, graph).explain(user="196", item="50")
        >>> print(ex.text()); ex.save("why.png")
    """

    def __init__(self, model: ScoringModel, graph: HeteroData, max_history: int = 5, max_neighbors: int = 3,
                 max_attributes: int = 3, top: int = 10, steps: int = 16, seen: sp.csr_matrix | None = None,
                 fanouts: list[int] | None = None, train: sp.csr_matrix | None = None,
                 users: Vocabulary | None = None, items: Vocabulary | None = None,
                 reference: str = "mean", verb: str = "rated") -> None:
        if reference not in REFERENCES:
            raise ConfigError(f"reference must be one of {', '.join(REFERENCES)}, got {reference!r}")
        self.reference, self.verb = reference, verb
        spec = spec_of(model)
        if spec is None or spec.explanation is None:
            explainable = [name for name, s in MODELS.items() if s.explanation is not None]
            raise ConfigError(f"{type(model).__name__} has no graph explanation; explainable models (the model "
                              f"registry): {', '.join(explainable)}")
        #: how the model's scores are explained (its registry entry): "exact" or "integrated-gradients"
        self.method = spec.explanation
        if (graph["user"].num_nodes, graph["item"].num_nodes) != (model.num_users, model.num_items):
            raise ValueError(f"graph has {graph['user'].num_nodes} users and {graph['item'].num_nodes} items, "
                             f"the model {model.num_users} and {model.num_items}")
        self.model, self.graph = model, graph
        self.max_history, self.max_neighbors, self.max_attributes = max_history, max_neighbors, max_attributes
        self.top, self.steps, self.fanouts = top, steps, fanouts
        shape = (model.num_users, model.num_items)
        self.train = sp.csr_matrix(train) if train is not None else interaction_matrix(graph)
        if self.train.shape != shape:
            raise ValueError(f"train is {self.train.shape}, expected {shape}")
        named = "node_raw_ids" in graph  # graphs from GraphBuilder; hand-made ones fall back to indices
        self.seen = sp.csr_matrix(seen) if seen is not None else self.train
        if self.seen.shape != shape:
            raise ValueError(f"seen is {self.seen.shape}, expected {shape}")
        self._raw = {t: node_raw_ids(graph, t) if named else list(range(graph[t].num_nodes)) for t in graph.node_types}
        # raw id -> index: the prepared vocabularies where given, else the graph's raw ids
        self._vocabs = {t: v for t, v in (("user", users), ("item", items)) if v is not None}
        for t, v in self._vocabs.items():
            if len(v) != graph[t].num_nodes:
                raise ValueError(f"{t} vocabulary has {len(v)} ids, the graph {graph[t].num_nodes} {t} nodes")
        self._lookup = {t: {_key(r): j for j, r in enumerate(ids)} for t, ids in self._raw.items()
                        if t in ("user", "item") and t not in self._vocabs}
        self._labels = {t: node_labels(graph, t) if named else [f"{t} {j}" for j in range(graph[t].num_nodes)]
                        for t in graph.node_types}
        # items × attribute links per attribute type, and their relation, for the attribute nodes shown
        self._attrs: dict[str, sp.csr_matrix] = {}
        self._relation: dict[str, str] = {}
        item_attributes = {dst_t for src_t, rel, dst_t in graph.edge_types
                           if src_t == "item" and dst_t not in ("user", "item") and not rel.startswith("rev_")}
        for t in sorted(item_attributes):
            edge_type, self._attrs[t] = attribute_matrix(graph, t)
            self._relation[t] = edge_type[1]
        # users × attribute links (occupation, age...), for the paths user – attribute – co-rater – item
        self._user_attrs: dict[str, sp.csr_matrix] = {}
        user_attributes = {dst_t for src_t, rel, dst_t in graph.edge_types
                           if src_t == "user" and dst_t not in ("user", "item") and not rel.startswith("rev_")}
        for t in sorted(user_attributes):
            edge_type, self._user_attrs[t] = attribute_matrix(graph, t)
            self._relation[t] = edge_type[1]
        self._cache: dict[str, torch.Tensor] = {}
        # every node a global id: its type's offset plus its index (GraphSAGE's attributions as arrays)
        self._node_types = list(graph.node_types)
        sizes = [int(graph[t].num_nodes) for t in self._node_types]
        self._offsets_all = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._offset = {t: int(o) for t, o in zip(self._node_types, self._offsets_all[:-1], strict=True)}

    # --- entry points ---

    def explain(self, user: object, item: object) -> Explanation:
        """Explain the score of raw ids ``(user, item)``; UnknownIdError names an unknown one."""
        return self.explain_index(self._index("user", user), self._index("item", item))

    @torch.no_grad()
    def rank_of(self, user: int, item: int) -> int:
        """The item's 1-based position in the user's list of unseen items (ties counted in its favour)."""
        embedding: tuple[torch.Tensor, torch.Tensor] | None = None
        if self.method == "exact":
            embedding = self._embeddings(cast(LightGCN, self.model))
        elif self.method == "integrated-gradients":  # GraphSAGE: one full-graph inference per Explainer
            if "sage_users" not in self._cache:
                was = self.model.training
                self.model.eval()
                with torch.no_grad():
                    self._cache["sage_users"], self._cache["sage_items"] = cast(GraphSAGE, self.model).get_embedding()
                self.model.train(was)
            embedding = (self._cache["sage_users"], self._cache["sage_items"])
        scores = unseen_scores(self.model, np.array([user]), None, embedding)  # [1, I]
        s = scores[0, item].item()
        mask_seen(scores, np.array([user]), self.seen)
        return int((scores[0] > s).sum()) + 1

    def explain_index(self, user: int, item: int) -> Explanation:
        """Explain the score of node indices ``(user, item)``."""
        for name, value, n in (("user", user, self.model.num_users), ("item", item, self.model.num_items)):
            if not 0 <= value < n:
                raise UnknownIdError(f"{name} index {value} out of range [0, {n})")
        if self.method == "exact":
            ex = self._lightgcn(cast(LightGCN, self.model), user, item)
        elif self.method == "item-weights":
            ex = self._item_weights(user, item)
        else:
            ex = self._graphsage(cast(GraphSAGE, self.model), user, item)
        return ex if self.verb == "rated" else replace(ex, verb=self.verb)

    # --- a sum over the history (EASE, ItemKNN): exact, one part per history item ---

    def _history_scored(self, user: int) -> np.ndarray:
        """The items a history-sum model scores ``user`` from: its own record of the history (so that the parts
        add up to its score whatever ``train`` the Explainer was given), else the train matrix's row."""
        indptr, indices = getattr(self.model, "history_indptr", None), getattr(self.model, "history_indices", None)
        if isinstance(indptr, torch.Tensor) and isinstance(indices, torch.Tensor) and \
                len(indptr) == self.model.num_users + 1 and int(indptr[-1]) > 0:
            return indices[int(indptr[user]) : int(indptr[user + 1])].cpu().numpy().astype(np.int64)
        return self.train[user].indices.astype(np.int64)

    @torch.no_grad()
    def _item_weights(self, user: int, item: int) -> Explanation:
        model = self.model
        scored = self._history_scored(user)
        hist = scored[scored != item]  # a seen item is the one explained, not one of its reasons
        has_item = len(hist) < len(scored)  # its own row is in the score too: a part, never a reason
        rows = np.append(hist, item) if has_item else hist
        seen = self.seen[user].indices
        # what each row adds to the item, and to the reference (the model reads its parts as it can afford:
        # ScoringModel.history_parts_at)
        columns = [np.eye(1, model.num_items, item)[0]]
        if self.reference == "mean":
            candidates = np.ones(model.num_items, dtype=bool)
            candidates[seen] = False
            if candidates.any():
                columns.append(candidates / candidates.sum())
        elif self.reference == "next" and len(rows):
            nxt = _next_below(model.score_history(torch.from_numpy(rows).long()).double(), item, seen)
            if nxt is not None:
                columns.append(np.eye(1, model.num_items, nxt)[0])
        at = model.history_parts_at(torch.from_numpy(rows).long(), torch.from_numpy(np.stack(columns, 1))).numpy() \
            if len(rows) else np.zeros((0, len(columns)))
        at_item = at[:, 0]
        reference = at[:, 1] if len(columns) > 1 else None
        all_values = at_item - (reference if reference is not None else 0.0)  # the exact parts
        values = all_values[: len(hist)]
        own_part = float(all_values[-1]) if has_item else None
        score = float(at_item.sum())
        chosen = np.argsort(-values, kind="stable")[: self.max_history]
        nu = model.num_users
        nodes = [self._node("user", user, "user", 0.0),
                 self._node("item", item, "recommended", float(all_values.sum()))]
        nodes += [self._node("item", int(hist[j]), "history", float(values[j])) for j in chosen]
        edges = [ExplainEdge(f"user:{user}", f"item:{int(hist[j])}", INTERACTS[1], float(values[j])) for j in chosen]
        edges += [ExplainEdge(f"item:{int(hist[j])}", f"item:{item}", "item weight", float(values[j]))
                  for j in chosen]
        own = () if own_part is None else (Contribution("the item's own weight (you have it)", "recommended",
                                                        own_part, (f"item:{item}",)),)
        order = np.argsort(-np.abs(values), kind="stable")
        listed, unlisted = order[: self.top], order[self.top :]
        contributions = own + tuple(Contribution(f"history item {self._labels['item'][int(hist[j])]}", "history",
                                                 float(values[j]), (f"item:{int(hist[j])}",)) for j in listed)
        remainder = (Contribution(f"{len(unlisted):,} other history items", "history",
                                  float(values[unlisted].sum())),) if len(unlisted) else ()
        via = tuple(sorted((*self._via(nu + hist, values, None), *own), key=lambda c: -c.value))
        is_seen = bool(self.seen[user, item])
        ex = Explanation(model=type(model).__name__, method="item-weights", score=score, user=f"user:{user}",
                         item=f"item:{item}", nodes=tuple(nodes), edges=tuple(edges), contributions=contributions,
                         remainder=remainder, groups={"history": float(values.sum()),
                                                      **({"recommended": own_part} if own_part is not None else {})},
                         rank=None if is_seen else self.rank_of(user, item),
                         reference=float(reference.sum()) if reference is not None else None,
                         reference_kind=REFERENCES[self.reference] if reference is not None else "",
                         seen=is_seen, via=via, themes=self._themes(item, hist, values), history_size=len(hist),
                         history_total=float(values.sum()))
        part_of = dict(zip(hist.tolist(), values.tolist(), strict=True))
        ex, shown, named = self._theme_in_picture(ex, user, item, [int(hist[j]) for j in chosen],
                                                  lambda h: part_of.get(h, 0.0), lambda h: part_of.get(h, 0.0),
                                                  to_item=True)
        attr_nodes, attr_edges = self._attribute_context(item, shown[:2], first=named, first_history=shown)
        return replace(ex, nodes=(*ex.nodes, *attr_nodes), edges=(*ex.edges, *attr_edges))

    # --- LightGCN: exact ---

    @torch.no_grad()
    def _reference(self, model: LightGCN, user: int, item: int) -> torch.Tensor | None:
        """The reference vector ``r`` in the item space (see ``reference``), or None."""
        users, items = self._embeddings(model)
        seen = self.seen[user].indices
        if self.reference == "none":
            return None
        if self.reference == "mean":
            if "item_sum" not in self._cache:
                self._cache["item_sum"] = items.sum(0)
            count = model.num_items - len(seen)
            if count <= 0:
                return None
            return (self._cache["item_sum"] - items[torch.from_numpy(seen).to(items.device)].sum(0)) / count
        nxt = _next_below(items @ users[user], item, seen)  # "next": the candidate just below the item
        return None if nxt is None else items[nxt]

    @torch.no_grad()
    def _lightgcn(self, model: LightGCN, user: int, item: int) -> Explanation:
        self._embeddings(model)
        ref = self._reference(model, user, item)
        terms = walk_terms(model, user, item, self._cache["e0"], (self._cache["users"], self._cache["items"]),
                           reference=ref)
        nu = model.num_users
        values = terms.values.cpu().double().numpy()
        reached = np.flatnonzero(terms.weight.cpu().numpy())  # nodes within L hops of the user
        hist = self.train[user].indices
        hist = hist[hist != item]  # a seen item is the one explained, not one of its reasons
        # users, items, then the extra nodes (genres...) in the propagation: attributes
        code = _role_codes(len(values), 0, nu, nu, model.num_items, user, item, hist)
        totals = np.bincount(code[reached], weights=values[reached], minlength=len(_GROUPS))
        groups = {g: float(t) for g, t in zip(_GROUPS, totals, strict=True) if np.any(code[reached] == _GROUPS.index(g))}

        # the difference by the user's first edge: what reaches them through each history item
        first, parts, own_part = first_hop(model, terms, user)
        first_np, parts_np = first.cpu().numpy(), parts.cpu().double().numpy()
        via_of = dict(zip(first_np.tolist(), parts_np.tolist(), strict=True))
        # subgraph: the history items that carry the most, then the co-users adjacent to them
        hist_parts = np.array([via_of.get(nu + h, 0.0) for h in hist])
        chosen_h = hist[np.argsort(-hist_parts, kind="stable")[: self.max_history]].tolist()
        chosen_w = self._linking_users(user, item, chosen_h, values)

        nodes = [self._node("user", user, "user", float(values[user])),
                 self._node("item", item, "recommended", float(values[nu + item]))]
        nodes += [self._node("item", h, "history", float(values[nu + h])) for h in chosen_h]
        nodes += [self._node("user", w, "neighbor", float(values[w])) for w in chosen_w]
        edges = [ExplainEdge(f"user:{user}", f"item:{h}", INTERACTS[1], via_of.get(nu + h, 0.0)) for h in chosen_h]
        pairs = [(w, h) for w in chosen_w for h in chosen_h if self.train[w, h]]
        pairs += [(w, item) for w in chosen_w if self.train[w, item]]
        dev = model.adj.device
        if pairs:
            src = torch.tensor([p[0] for p in pairs])
            dst = torch.tensor([p[1] + nu for p in pairs])
            flows = (edge_flows(model, terms, src.to(dev), dst.to(dev))
                     + edge_flows(model, terms, dst.to(dev), src.to(dev))).cpu()
            edges += [ExplainEdge(f"user:{a}", f"item:{b}", INTERACTS[1], float(fl))
                      for (a, b), fl in zip(pairs, flows.tolist(), strict=True)]
        themes = self._themes(item, hist, np.array([via_of.get(nu + h, 0.0) for h in hist]))

        order = reached[np.argsort(-np.abs(values[reached]), kind="stable")]
        listed, unlisted = order[: self.top], order[self.top :]
        contributions = tuple(self._contribution(int(v), _GROUPS[code[v]], float(values[v])) for v in listed)
        counts = np.bincount(code[unlisted], minlength=len(_GROUPS))
        rest = np.bincount(code[unlisted], weights=values[unlisted], minlength=len(_GROUPS))
        remainder = tuple(
            Contribution(f"{counts[c]:,} other {_GROUP_NAMES[g]}" if g in ("history", "neighbor", "item", "attribute")
                         else _GROUP_NAMES[g], g, float(rest[c]))
            for c, g in enumerate(_GROUPS) if counts[c]
        )
        seen = bool(self.seen[user, item])
        ex = Explanation(model=type(model).__name__, method="exact", score=terms.score, user=f"user:{user}",
                         item=f"item:{item}", nodes=tuple(nodes), edges=tuple(edges), contributions=contributions,
                         remainder=remainder, groups=groups, rank=None if seen else self.rank_of(user, item),
                         reference=terms.reference if ref is not None else None,
                         reference_kind=REFERENCES[self.reference] if ref is not None else "", seen=seen,
                         via=self._via(first_np, parts_np, own_part),
                         themes=themes, history_size=len(hist), history_total=float(hist_parts.sum()))
        if model.extra_emb is not None:
            attr_nodes, attr_edges = self._propagated_attributes(model, terms, values, item, chosen_h)
        else:  # the genre the sentence names (Explanation.theme) first, linked to every shown item that has it
            ex, shown_h, named = self._theme_in_picture(ex, user, item, chosen_h, lambda h: via_of.get(nu + h, 0.0),
                                                        lambda h: float(values[nu + h]), to_item=False)
            attr_nodes, attr_edges = self._attribute_context(item, chosen_h[:2], first=named, first_history=shown_h)
        return replace(ex, nodes=(*ex.nodes, *attr_nodes), edges=(*ex.edges, *attr_edges))

    def _theme_in_picture(self, ex: Explanation, user: int, item: int, shown: list[int], part: Callable[[int], float],
                          importance: Callable[[int], float], to_item: bool
                          ) -> tuple[Explanation, list[int], tuple[str, int] | None]:
        """``ex``, the history items ``shown`` and the attribute the sentence names (:meth:`Explanation.theme`),
        where one is: when none of ``shown`` has it, the one of its titles whose ``part`` is largest joins them,
        with its edge from the user (and, ``to_item``, its weight to the item), so that the picture has the
        attribute's path to the item the sentence speaks of."""
        named = ex.theme()
        if named is None:
            return ex, shown, None
        t, a = named[0].nodes[0].split(":")
        if any(f"item:{h}" in named[0].nodes for h in shown):
            return ex, shown, (t, int(a))
        h = max((int(k.split(":")[1]) for k in named[0].nodes[1:]), key=lambda x: (part(x), -x))
        edges = [ExplainEdge(f"user:{user}", f"item:{h}", INTERACTS[1], part(h))]
        if to_item:
            edges.append(ExplainEdge(f"item:{h}", f"item:{item}", "item weight", part(h)))
        return (replace(ex, nodes=(*ex.nodes, self._node("item", h, "history", importance(h))),
                        edges=(*ex.edges, *edges)), [*shown, h], (t, int(a)))

    def _themes(self, item: int, hist: np.ndarray, parts: np.ndarray) -> tuple[Contribution, ...]:
        """:attr:`Explanation.themes`: for each attribute of the item (its genres...), the part of the difference
        that reaches the user through the history items that have it (their :attr:`via` parts summed), largest
        first."""
        out = []
        for t, m in self._attrs.items():
            if not len(hist):
                continue
            has = m[hist].tocsc()
            for a in m[item].indices.tolist():
                rows = has[:, a].nonzero()[0]
                if len(rows):
                    out.append(Contribution(str(self._labels[t][a]), "theme", float(parts[rows].sum()),
                                            (f"{t}:{a}", *(f"item:{h}" for h in hist[rows].tolist()))))
        return tuple(sorted(out, key=lambda c: -c.value))

    def _linking_users(self, user: int, item: int, history: list[int], values: np.ndarray) -> list[int]:
        """Up to ``max_neighbors`` users who rated one of ``history`` and the item: the one with the largest
        contribution for each history item in turn (so the items carrying the most get a path to the item),
        then the largest left."""
        raters = self.train[:, item].nonzero()[0]
        raters = raters[raters != user]
        if not len(raters) or not history:
            return []
        links = self.train[raters][:, history].tocsc()  # raters × history items
        chosen: list[int] = []
        for c in range(len(history)):
            cands = [int(w) for w in raters[links[:, c].nonzero()[0]] if int(w) not in chosen]
            if cands and len(chosen) < self.max_neighbors:
                chosen.append(max(cands, key=lambda w: (values[w], -w)))
        rest = [int(w) for w in raters[np.asarray(links.sum(1)).ravel() > 0] if int(w) not in chosen]
        rest.sort(key=lambda w: (-values[w], w))
        return chosen + rest[: self.max_neighbors - len(chosen)]

    def _via(self, first: np.ndarray, parts: np.ndarray, own: float | None) -> tuple[Contribution, ...]:
        """:attr:`Explanation.via`: the ``top`` largest first-edge parts, the user's own term (None: the model
        has none), and the rest."""
        order = np.argsort(-parts, kind="stable")
        shown, rest = order[: self.top], order[self.top :]
        out = []
        for j in shown:
            t, idx = self._row_node(int(first[j]))
            out.append(Contribution(str(self._labels[t][idx]), "history" if t == "item" else "attribute",
                                    float(parts[j]), (f"{t}:{idx}",)))
        if own is not None:
            out.append(Contribution("your learned taste profile (your own embedding)", "user", own))
        if len(rest):
            out.append(Contribution(f"{len(rest):,} other interactions", "remainder", float(parts[rest].sum())))
        return tuple(sorted(out, key=lambda c: -c.value))

    @torch.no_grad()
    def _embeddings(self, model: LightGCN) -> tuple[torch.Tensor, torch.Tensor]:
        """Final user and item embeddings (and layer 0), computed once per Explainer."""
        if "e0" not in self._cache:
            was = model.training
            model.eval()
            self._cache["e0"] = model.layer0_all()
            self._cache["users"], self._cache["items"] = model.get_embedding()
            model.train(was)
        return self._cache["users"], self._cache["items"]

    def _offsets(self, model: LightGCN) -> dict[str, int]:
        """First row of each node type in LightGCN's adjacency."""
        starts = np.cumsum([0] + [n for _, n in model.node_layout])
        return {t: int(o) for (t, _), o in zip(model.node_layout, starts[:-1], strict=True)}

    def _row_node(self, v: int) -> tuple[str, int]:
        """(node type, index) of row ``v`` of LightGCN's adjacency (other models: users, then items)."""
        layout = getattr(self.model, "node_layout", None) or [("user", self.model.num_users),
                                                               ("item", self.model.num_items)]
        for t, n in layout:
            if v < n:
                return t, v
            v -= n
        raise IndexError("row out of range")

    def _propagated_attributes(self, model: LightGCN, terms: WalkTerms, values: np.ndarray, item: int,
                               history: list[int]) -> tuple[list[ExplainNode], list[ExplainEdge]]:
        """The item's attribute nodes that carry the most score (exact), with their edges to it and to the history."""
        offsets = self._offsets(model)
        cands = [(t, a) for t, _ in model.node_layout[2:] if t in self._attrs for a in self._attrs[t][item].indices.tolist()]
        cands.sort(key=lambda ta: -values[offsets[ta[0]] + ta[1]])
        chosen = cands[: self.max_attributes]
        nodes = [self._node(t, a, "attribute", float(values[offsets[t] + a])) for t, a in chosen]
        pairs = [(j, t, a) for t, a in chosen for j in [item, *history] if self._attrs[t][j, a]]
        if not pairs:
            return nodes, []
        dev = model.adj.device
        src = torch.tensor([offsets["item"] + j for j, _, _ in pairs], device=dev)
        dst = torch.tensor([offsets[t] + a for _, t, a in pairs], device=dev)
        flows = (edge_flows(model, terms, src, dst) + edge_flows(model, terms, dst, src)).cpu().tolist()
        edges = [ExplainEdge(f"item:{j}", f"{t}:{a}", self._relation[t], fl)
                 for (j, t, a), fl in zip(pairs, flows, strict=True)]
        return nodes, edges

    def _contribution(self, v: int, gname: str, value: float) -> Contribution:
        t, j = self._row_node(v)
        name = {"user": "your own embedding", "neighbor": "co-interacting", "history": "history item",
                "recommended": "the item's own embedding", "item": "item within reach",
                "attribute": f"{t} node"}[gname]
        label = name if gname in ("user", "recommended") else f"{name} {self._labels[t][j]}"
        return Contribution(label, gname, value, (f"{t}:{j}",))

    # --- GraphSAGE: integrated gradients ---

    def _graphsage(self, model: GraphSAGE, user: int, item: int) -> Explanation:
        att = graphsage_edge_attributions(model, user, item, steps=self.steps, fanouts=self.fanouts)
        history = self.train[user].indices
        msg = self._messages(att)
        n = self._offsets_all[-1]
        # merge the two directions of each undirected edge (forward pair: its key a·N + b); node importance = what
        # its messages carried
        a = np.where(msg.forward, msg.src, msg.dst)
        b = np.where(msg.forward, msg.dst, msg.src)
        pairs, which = np.unique(a * n + b, return_inverse=True)
        merged = np.bincount(which, weights=msg.value, minlength=len(pairs))
        pair_relation = np.zeros(len(pairs), dtype=np.int64)
        pair_relation[which] = msg.relation
        sent = np.bincount(msg.src, weights=msg.value, minlength=n)
        top_at = np.argsort(-np.abs(merged), kind="stable")[: self.top]
        top = [(self._key_of(int(pairs[j] // n)), self._key_of(int(pairs[j] % n))) for j in top_at]
        relation: dict[tuple[str, str], str] = {
            k: msg.relations[int(pair_relation[j])] for k, j in zip(top, top_at.tolist(), strict=True)}
        merged_at = dict(zip(pairs.tolist(), merged.tolist(), strict=True))

        def attribution(x: str, y: str) -> float:
            return merged_at.get(self._gid(x) * n + self._gid(y), 0.0)

        roles = _role_codes(int(n), self._offset["user"], self._offset["item"], model.num_users, model.num_items,
                            user, item, history)

        def role(key: str) -> str:
            return _GROUPS[roles[self._gid(key)]]

        # paths from the user to the item through the graph, chosen by the attribution of their edges:
        # user - history item - (a user who rated it and the item | an attribute they share) - item
        paths, path_edges = self._sage_paths(user, item, attribution, relation)
        keys = [f"user:{user}", f"item:{item}"] + [k for p, _ in paths for k in p]
        keys += [x for k in top for x in k]
        keys = list(dict.fromkeys(keys))
        nodes = [self._node(k.split(":")[0], int(k.split(":")[1]), role(k), float(sent[self._gid(k)])) for k in keys]
        shown_edges = list(dict.fromkeys([*path_edges, *top]))
        edges = [ExplainEdge(k[0], k[1], relation[k], attribution(*k)) for k in shown_edges]

        contributions = tuple(Contribution(f"{self._label(k[0])} –{relation[k]}– {self._label(k[1])}", "edge",
                                           float(merged[j]), k) for k, j in zip(top, top_at.tolist(), strict=True))
        total = float(merged.sum())
        remainder = (
            Contribution(f"{len(pairs) - len(top):,} other edges of the computation subgraph", "edge",
                         total - float(merged[top_at].sum())),
            Contribution("no-message baseline (the user's and item's own inputs) and integration error",
                         "remainder", att.score - total),
        )
        by_role = np.bincount(roles[msg.src], weights=msg.value, minlength=len(_GROUPS))
        present = np.bincount(roles[np.unique(msg.src)], minlength=len(_GROUPS))  # the roles of the senders
        groups = {name: float(by_role[r]) for r, name in enumerate(_GROUPS) if present[r]}
        groups["baseline"] = att.baseline
        seen = bool(self.seen[user, item])
        return Explanation(model=type(model).__name__, method="integrated-gradients", score=att.score,
                           user=f"user:{user}", item=f"item:{item}", nodes=tuple(nodes), edges=tuple(edges),
                           contributions=contributions, remainder=remainder, groups=groups,
                           paths=tuple(paths), rank=None if seen else self.rank_of(user, item), seen=seen,
                           via=self._sage_via(msg, user, item, set(history.tolist()), att.score, att.baseline,
                                              shown=frozenset(p[1] for p, _ in paths)))

    def _messages(self, att: EdgeAttributions) -> _Messages:
        """The attributions as arrays over every directed message, nodes as global ids (:meth:`_gid`)."""
        names: list[str] = []
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]] = []
        for (src_t, rel, dst_t), vals in att.values.items():
            forward = not rel.startswith("rev_")
            name = rel if forward else rel[4:]
            if name not in names:
                names.append(name)
            src = att.src[(src_t, rel, dst_t)].cpu().numpy().astype(np.int64) + self._offset[src_t]
            dst = att.dst[(src_t, rel, dst_t)].cpu().numpy().astype(np.int64) + self._offset[dst_t]
            parts.append((src, dst, vals.detach().cpu().double().numpy(),
                          np.full(len(src), names.index(name), dtype=np.int64), forward))
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return _Messages(empty, empty, np.zeros(0), empty, np.zeros(0, dtype=bool), ())
        return _Messages(np.concatenate([x[0] for x in parts]), np.concatenate([x[1] for x in parts]),
                         np.concatenate([x[2] for x in parts]), np.concatenate([x[3] for x in parts]),
                         np.concatenate([np.full(len(x[0]), x[4]) for x in parts]), tuple(names))

    def _gid(self, key: str) -> int:
        """A node key's global id: ``"item:4"`` → the items' offset + 4."""
        t, j = key.split(":")
        return self._offset[t] + int(j)

    def _key_of(self, gid: int) -> str:
        """Inverse of :meth:`_gid`."""
        at = int(np.searchsorted(self._offsets_all, gid, side="right")) - 1
        return f"{self._node_types[at]}:{gid - self._offsets_all[at]}"

    def _sage_via(self, msg: _Messages, user: int, item: int, history: set[int], score: float, baseline: float,
                  shown: frozenset[str] = frozenset()) -> tuple[Contribution, ...]:
        """:attr:`Explanation.via` of a GraphSAGE score: the attributions split by the first step from the user or
        from the item that each message reaches them through.

        A message into the user or the item belongs to its sender (a history item, an attribute of the user or of
        the item, a user who rated the item); a message into one of those belongs to its receiver. With two layers
        that is every message of the pair's computation subgraph, each reaching one side only; deeper models'
        other messages are one remaining part (and there a message into a near node may reach both sides: the
        split is then a convention, still adding up to the score). The users who rated the item are one part
        together; the score left when every message is silenced (``baseline``) is another, and the integration
        error a last one, so the parts add up to the score exactly. History items get a part each: the ``top``
        largest and those in ``shown`` (the picture's), the others one together.
        """
        n = self._offsets_all[-1]
        me, it = self._offset["user"] + user, self._offset["item"] + item
        near_user = np.zeros(n, dtype=bool)
        near_user[msg.src[msg.dst == me]] = True
        near_item = np.zeros(n, dtype=bool)
        near_item[msg.src[msg.dst == it]] = True
        into_me, into_it = msg.dst == me, msg.dst == it
        first = np.where(into_me | into_it, msg.src, msg.dst)
        user_side = into_me | (~into_it & near_user[msg.dst])
        item_side = into_it | (~into_me & ~near_user[msg.dst] & near_item[msg.dst])
        further = float(msg.value[~(user_side | item_side)].sum())
        side_key = np.where(user_side, first, n + first)[user_side | item_side]  # user side: gid; item side: N + gid
        present, which = np.unique(side_key, return_inverse=True)
        sums = np.bincount(which, weights=msg.value[user_side | item_side], minlength=len(present))
        part = {("user" if x < n else "item", self._key_of(int(x % n))): float(v)
                for x, v in zip(present.tolist(), sums.tolist(), strict=True)}
        me_key, it_key = f"user:{user}", f"item:{item}"
        out: list[Contribution] = []
        # a seen item: the edge between the user and it is their own rating of it, on both sides, not a history
        # item of the user's nor a rater of the item's
        yours = part.pop(("user", it_key), 0.0) + part.pop(("item", me_key), 0.0)
        if yours:
            out.append(Contribution("your own rating of it", "user", yours, (me_key, it_key)))
        rated = sorted(((v, k) for (side, k), v in part.items() if side == "user" and k.startswith("item:")
                        and int(k.split(":")[1]) in history), key=lambda x: (-x[0], x[1]))
        own = [(v, k) for j, (v, k) in enumerate(rated) if j < self.top or k in shown]
        rest = [v for j, (v, k) in enumerate(rated) if not (j < self.top or k in shown)]
        out += [Contribution(self._label(k), "history", v, (k,)) for v, k in own]
        if rest:
            out.append(Contribution(f"{len(rest):,} other items you rated", "remainder", sum(rest)))
        raters = [v for (side, k), v in part.items() if side == "item" and k.startswith("user:")]
        if raters:
            # the other people who rated it (the user too for a seen item: their row is above); fewer where the
            # explainer samples neighbours
            count, total = len(raters), int(self.train[:, item].nnz) - int(self.train[user, item] != 0)
            who = (("the one person" if count == 1 else f"the {count:,} people") if count >= total
                   else f"{count:,} of the {total:,} people")
            out.append(Contribution(f"{who} who rated it", "neighbor", sum(raters)))
        rated_keys = {k for _, k in rated}
        for (side, k), v in sorted(part.items()):
            t = k.split(":")[0]
            if (side == "user" and k in rated_keys) or (side == "item" and t == "user"):
                continue  # history items and raters: above
            if t in ("user", "item"):  # a graph with other links between users and items
                out.append(Contribution(self._label(k), "neighbor" if t == "user" else "item", v, (k,)))
            else:
                whose = "your" if side == "user" else "its"
                out.append(Contribution(f"{whose} {type_name(t)} ({self._label(k)})", "attribute", v, (k,)))
        if further:
            out.append(Contribution("messages from further away", "remainder", further))
        out.append(Contribution("its own features and yours, before any message", "baseline", baseline))
        error = score - baseline - float(msg.value.sum())
        if error:
            out.append(Contribution("the integration error (the Riemann sum's)", "error", error))
        return tuple(sorted(out, key=lambda c: -c.value))

    def _sage_paths(self, user: int, item: int, att: Callable[[str, str], float],
                    relation: dict[tuple[str, str], str], k: int = 5, width: int = 20
                    ) -> tuple[list[tuple[tuple[str, ...], float]], list[tuple[str, str]]]:
        """The ``k`` paths ``user – history item – (co-user | shared attribute) – item`` whose edges carry the most
        attribution (edges outside the computation subgraph count 0), among the ``width`` history items and
        co-users with the largest attributions, the best one through each co-user or attribute first; then the
        best ``user – attribute of the user – co-user who has it – item`` for each of the user's attributes whose
        edge to the user carries a positive part; by weight. And their edges in the graph's forward direction."""
        u, i = f"user:{user}", f"item:{item}"
        hist = self.train[user].indices
        hist = hist[hist != item]  # a seen item is the one explained, not one of its reasons
        hist = hist[np.argsort([-att(u, f"item:{h}") for h in hist], kind="stable")[:width]]
        raters = self.train[:, item].nonzero()[0]
        raters = raters[raters != user]
        raters = raters[np.argsort([-att(f"user:{w}", i) for w in raters], kind="stable")[:width]]
        found: list[tuple[tuple[str, ...], float, list[tuple[str, str]]]] = []
        if len(raters):
            both = self.train[raters][:, hist].tocoo()  # co-users who rated a history item and the item
            for r, c in zip(both.row.tolist(), both.col.tolist(), strict=True):
                w, h = f"user:{raters[r]}", f"item:{hist[c]}"
                es = [(u, h), (w, h), (w, i)]
                found.append(((u, h, w, i), sum(att(*e) for e in es), es))
        for t, m in self._attrs.items():
            rel = self._relation[t]
            for a in m[item].indices.tolist():
                key = f"{t}:{a}"
                for h in hist[np.asarray(m[hist][:, a].todense()).ravel() > 0].tolist():
                    es = [(u, f"item:{h}"), (f"item:{h}", key), (i, key)]
                    found.append(((u, f"item:{h}", key, i), sum(att(*e) for e in es), es))
                    for e in es[1:]:
                        relation.setdefault(e, rel)
        # user – an attribute of theirs (occupation, age...) – a co-rater who has it too – item: the best one
        # through each of the user's attributes that carries a positive part is always shown, for the sentence
        # names such parts ("your occupation (writer) 17%") and the picture must hold them
        through_own: list[tuple[tuple[str, ...], float, list[tuple[str, str]]]] = []
        for t, m in self._user_attrs.items():
            rel = self._relation[t]
            for a in m[user].indices.tolist():
                key = f"{t}:{a}"
                best = None
                for w in (raters[np.asarray(m[raters][:, a].todense()).ravel() > 0].tolist() if len(raters) else []):
                    es = [(u, key), (f"user:{w}", key), (f"user:{w}", i)]
                    path = ((u, key, f"user:{w}", i), sum(att(*e) for e in es), es)
                    if best is None or path[1] > best[1]:
                        best = path
                if best is not None and att(u, key) > 0:
                    for e in best[2][:2]:
                        relation.setdefault(e, rel)
                    through_own.append(best)
        found.sort(key=lambda p: -p[1])
        # the best path through each way to the item first (each attribute, each co-user), so that one
        # heavy attribute edge does not fill the picture, then the best of the rest; by weight again
        first: list[tuple[tuple[str, ...], float, list[tuple[str, str]]]] = []
        rest: list[tuple[tuple[str, ...], float, list[tuple[str, str]]]] = []
        ways: set[str] = set()
        for f in found:
            (first if f[0][2] not in ways else rest).append(f)
            ways.add(f[0][2])
        chosen = sorted((first + rest)[:k] + through_own, key=lambda p: -p[1])
        for e in (e for _, _, es in chosen for e in es):  # what is not an attribute's edge is an interaction
            relation.setdefault(e, INTERACTS[1])
        return [(p, w) for p, w, _ in chosen], [e for _, _, es in chosen for e in es]

    # --- plumbing ---

    def _index(self, node_type: str, raw: object) -> int:
        vocab = self._vocabs.get(node_type)
        if vocab is not None:
            found = int(vocab.encode([raw], unknown="mask")[0])
            idx = found if found >= 0 else None
        else:
            idx = self._lookup[node_type].get(_key(raw))
        if idx is None:
            raise UnknownIdError(f"unknown {node_type} id {raw!r} (not in the graph's {len(self._raw[node_type]):,} {node_type}s)")
        return idx

    def _node(self, node_type: str, index: int, role: str, importance: float) -> ExplainNode:
        raw = self._raw[node_type][index]
        return ExplainNode(node_type, index, raw.item() if hasattr(raw, "item") else raw,
                           str(self._labels[node_type][index]), role, importance)

    def _label(self, key: str) -> str:
        t, j = key.split(":")
        return str(self._labels[t][int(j)])

    def _attribute_context(self, item: int, history: Iterable[int],
                           importance: dict[tuple[str, str], float] | None = None,
                           first: tuple[str, int] | None = None,
                           first_history: Iterable[int] = ()) -> tuple[list[ExplainNode], list[ExplainEdge]]:
        """Attribute nodes the item shares with the given history items (most shared first), and their edges;
        ``first``, an attribute of the item, leads the list, linked to the items of ``first_history`` too."""
        history = list(history)
        found: list[tuple[int, str, int]] = []
        for attr_t, m in self._attrs.items():
            own = set(m[item].indices.tolist())
            for a in own:
                shared = sum(1 for h in history if m[h, a])
                if shared:
                    found.append((shared, attr_t, a))
        found.sort(key=lambda x: (-x[0], x[1], x[2]))
        if first is not None:
            found = [(0, *first)] + [f for f in found if (f[1], f[2]) != first]
        imp = importance or {}
        nodes: list[ExplainNode] = []
        edges: list[ExplainEdge] = []
        for _, attr_t, a in found[: self.max_attributes]:
            key = f"{attr_t}:{a}"
            nodes.append(self._node(attr_t, a, "attribute", 0.0))
            linked = dict.fromkeys([item, *history, *(first_history if (attr_t, a) == first else ())])
            for j in linked:
                if self._attrs[attr_t][j, a]:
                    src = f"item:{j}"
                    edges.append(ExplainEdge(src, key, self._relation[attr_t], imp.get((src, key), 0.0)))
        return nodes, edges


def _next_below(scores: torch.Tensor, item: int, seen: np.ndarray) -> int | None:
    """The candidate ranked just below ``item`` by ``scores`` (``seen`` items are no candidates), or None."""
    own = float(scores[item])
    scores = scores.clone()
    scores[torch.from_numpy(seen).to(scores.device)] = torch.inf
    below = torch.where(scores < own, scores, torch.full_like(scores, -torch.inf))
    nxt = int(torch.argmax(below))
    return nxt if torch.isfinite(below[nxt]) else None


def _key(raw: object) -> str:
    return str(raw.item() if hasattr(raw, "item") else raw)
