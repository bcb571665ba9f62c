"""GraphSAGE (Hamilton et al., "Inductive Representation Learning on Large
Graphs", NeurIPS 2017) over every edge type of the heterogeneous graph."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData
from torch_geometric.nn import HeteroConv, SAGEConv

from graphrec.errors import ConfigError
from graphrec.nn.base import ScoringModel, bpr_loss, l2_reg
from graphrec.nn.spec import Choice, FloatRange, ModelConfig, ModelInputs, ModelSpec, Needs, Range, check_dim_reg

if TYPE_CHECKING:
    from graphrec.sampling import NeighborSampler

EdgeType = tuple[str, str, str]


@dataclass(frozen=True)
class SampledHops:
    """How many nodes (per type: the seeds, then each hop's new ones) and edges (per edge type: each hop's) a
    sampled subgraph holds, in that order."""

    nodes: Mapping[str, Sequence[int]]
    edges: Mapping[EdgeType, Sequence[int]]


class HeteroSAGE(nn.Module):
    """Input layer plus ``num_layers`` heterogeneous SAGE layers.

    .. math::
        h_v^{(l+1)} = \\sum_{r \\in R(v)} \\left( W_r^{root} h_v^{(l)} +
        W_r \\, \\mathrm{mean}_{u \\in N_r(v)} h_u^{(l)} \\right)

    summed over the relations ``r`` that end in ``v``'s type; ReLU between
    layers. Layer 0 is a linear projection of the node features where a type
    has them (text embeddings, one-hot attributes), else a learned embedding
    of the node id.

    Args:
        node_types, edge_types: The graph's metadata.
        in_dims: Feature size per node type (0 or absent: learned ids).
        num_nodes: Node count per type (for learned ids).
        hidden: Width of every layer.
        num_layers: SAGE layers (the receptive field in hops).
        dropout: Dropout between layers.
    """

    def __init__(self, node_types: Sequence[str], edge_types: Sequence[EdgeType], in_dims: Mapping[str, int],
                 num_nodes: Mapping[str, int], hidden: int = 64, num_layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.node_types, self.edge_types = list(node_types), list(edge_types)
        self.hidden, self.num_layers, self.dropout = hidden, num_layers, dropout
        self.inputs = nn.ModuleDict()
        for t in self.node_types:
            dim = in_dims.get(t, 0)
            self.inputs[t] = nn.Linear(dim, hidden) if dim else nn.Embedding(num_nodes[t], hidden)
        self.convs = nn.ModuleList(
            HeteroConv({et: SAGEConv(hidden, hidden, aggr="mean") for et in self.edge_types}, aggr="sum")
            for _ in range(num_layers)
        )

    def forward(self, x_dict: Mapping[str, Tensor | None], node_id_dict: Mapping[str, Tensor],
                edge_index_dict: Mapping[EdgeType, Tensor], hops: SampledHops | None = None) -> dict[str, Tensor]:
        """Embeddings ``{type: [num_nodes_of_type, hidden]}`` of every node of the given (sub)graph.

        ``hops``: for a sampled subgraph (nodes and edges in hop order, seeds first), how many of each hop; layer
        ``l`` then leaves out the last ``l`` hops' nodes and edges, which no later layer reads (PyG's
        ``trim_to_layer``). The seeds' embeddings are the same; the other nodes' are returned for the hops kept.
        """
        h: dict[str, Tensor] = {}
        for t in self.node_types:
            layer = self.inputs[t]
            x = x_dict.get(t)
            h[t] = layer(x) if isinstance(layer, nn.Linear) and x is not None else layer(node_id_dict[t])
        edges = {et: ei for et, ei in edge_index_dict.items() if et in self.edge_types}
        for i, conv in enumerate(self.convs):
            if hops is not None and i > 0:
                h = {t: v[: sum(hops.nodes[t][: len(hops.nodes[t]) - i])] if t in hops.nodes else v
                     for t, v in h.items()}
                edges = {et: ei[:, : sum(hops.edges[et][: len(hops.edges[et]) - i])] if et in hops.edges else ei
                         for et, ei in edges.items()}
            out = conv(h, edges)
            h = {t: out.get(t, h[t]) for t in self.node_types}
            if i < self.num_layers - 1:
                h = {t: nn.functional.dropout(v.relu(), self.dropout, self.training) for t, v in h.items()}
        return h


class GraphSAGE(ScoringModel):
    """GraphSAGE recommender: dot products of user and item embeddings from :class:`HeteroSAGE`.

    Trained on sampled mini-batches: :meth:`loss` samples the computation
    subgraph of the batch's users and items with
    :class:`~graphrec.sampling.NeighborSampler`. Inference runs layer-wise over
    the full graph (:meth:`get_embedding`) or on sampled batches
    (:meth:`embed_sampled`); with fan-outs of -1 both give the same embeddings.
    Inductive: :meth:`embed_new_items` and :meth:`embed_new_user` embed nodes
    that were not in the graph, from their features and links, without
    retraining.

    Random draws: the sampler owns a generator per device (seeded with
    ``seed``), saved and restored by :meth:`rng_state` /
    :meth:`set_rng_state`, so a resumed training repeats an uninterrupted
    one; dropout draws from torch's global generator (the trainer's). In a
    multi-process run each rank samples its own shard of the seeds, from
    its own stream (:meth:`set_rank`): rank 0 from ``seed``, rank ``r``
    from a seed derived from ``(seed, r)``; the trainer seeds each rank's
    global generator the same way (its own dropout masks).

    Determinism: on CPU, training with a fixed seed and thread count is
    bit-for-bit repeatable. Rows are gathered with ``index_select``, whose
    backward (``index_add_``) adds in index order, never with advanced
    indexing, whose backward (``index_put_(accumulate=True)``) adds with
    atomics from parallel threads on CPU, in an order that changes from run
    to run. On CUDA, PyG's mean aggregation (``scatter_add_``) and the
    backward of ``index_select`` (``index_add_``) use atomic adds, so losses
    vary in the last bits unless ``torch.use_deterministic_algorithms(True)``
    is set.

    Args:
        data: The train graph (:class:`~graphrec.graph.GraphBuilder`); its
            ``x`` per node type are the inputs.
        dim, num_layers, dropout: Encoder size (``dim``: the width of every
            layer and of the output embeddings; ``hidden=`` is its old,
            deprecated name).
        fanouts: Neighbours sampled per hop during training (-1: all).
        reg: L2 weight on the batch's output embeddings.
        objective: ``"bpr"`` (pairwise, default) or ``"bce"`` (binary
            cross-entropy: positives labelled 1, the sampled negatives 0).
        seed: Seed of the sampler.
    """

    trainable = True
    partial_gradients = True

    def __init__(self, data: HeteroData, dim: int = 64, num_layers: int = 2, fanouts: Sequence[int] = (10, 10),
                 dropout: float = 0.0, reg: float = 1e-4, objective: str = "bpr", seed: int = 0,
                 exclude_target_edges: bool = False, *, hidden: int | None = None) -> None:
        if hidden is not None:
            warnings.warn("GraphSAGE(hidden=...) is now GraphSAGE(dim=...), the name its config "
                          "(model.dim) and the other models use", FutureWarning, stacklevel=2)
            dim = hidden
        if "user" not in data.node_types or "item" not in data.node_types:
            raise ConfigError("GraphSAGE needs 'user' and 'item' node types")
        super().__init__(data["user"].num_nodes, data["item"].num_nodes)
        if objective not in ("bpr", "bce"):
            raise ConfigError(f"objective must be 'bpr' or 'bce', got {objective!r}")
        self.objective = objective
        if len(fanouts) != num_layers:
            raise ConfigError(f"fanouts needs one entry per layer ({num_layers}), got {list(fanouts)}")
        self.dim, self.num_layers, self.fanouts, self.dropout, self.reg, self.seed = (
            dim, num_layers, list(fanouts), dropout, reg, seed)
        self.graph = copy.copy(data).cpu()  # HeteroData.cpu() moves in place: leave the caller's graph alone
        in_dims = {t: int(data[t].x.shape[1]) for t in data.node_types if "x" in data[t]}
        num_nodes = {t: int(data[t].num_nodes) for t in data.node_types}
        self.encoder = HeteroSAGE(data.node_types, data.edge_types, in_dims, num_nodes, dim, num_layers, dropout)
        self._on: dict[str, tuple[HeteroData, NeighborSampler]] = {}  # device -> (graph, sampler)
        self._sampler_seed = seed  # this rank's stream (set_rank)
        self._rng_pending: dict[str, Tensor] = {}  # device -> sampler state restored before that sampler was built
        self._lookup: dict[str, dict[str, int]] = {}  # node type -> raw id (as str) -> index
        self.exclude_target_edges = exclude_target_edges
        self._pair_index: dict[str, tuple[Tensor, Tensor]] = {}  # device -> (sorted user*I+item keys, edge ids)

    @property
    def hidden(self) -> int:
        """The old name of :attr:`dim` (deprecated)."""
        warnings.warn("GraphSAGE.hidden is now GraphSAGE.dim", FutureWarning, stacklevel=2)
        return self.dim

    def hparams(self) -> dict[str, Any]:
        return {**super().hparams(), "dim": self.dim, "num_layers": self.num_layers, "fanouts": self.fanouts,
                "dropout": self.dropout, "reg": self.reg, "objective": self.objective,
                "exclude_target_edges": self.exclude_target_edges}

    def _graph(self) -> tuple[HeteroData, NeighborSampler]:
        """The graph on the model's device and the training sampler over it, built on first use."""
        from graphrec.sampling import NeighborSampler

        key = str(self.device)
        if key not in self._on:
            # Built outside inference mode even when first asked for under it (an Evaluator ranking):
            # cached inference tensors would break every later training step.
            with torch.inference_mode(False):
                g = copy.copy(self.graph).to(self.device)  # a copy: .to() moves a HeteroData in place
                g = g.apply(lambda t: t.clone() if t.is_inference() else t)
                sampler = NeighborSampler(g, self.fanouts, seed=self._sampler_seed)
            state = self._rng_pending.pop(key, None)
            if state is not None:
                sampler.generator.set_state(state)
            elif self._rng_pending:
                warnings.warn(f"GraphSAGE: the restored sampler state is for {', '.join(sorted(self._rng_pending))}; "
                              f"the sampler on {key} starts from its seed ({self._sampler_seed}), so this run will not repeat "
                              "the one it was saved from (generator states do not carry across devices)", stacklevel=2)
            self._on[key] = (g, sampler)
        return self._on[key]

    def set_rank(self, rank: int, restart: bool = False) -> None:
        """Sample from rank ``rank``'s own stream: each rank draws the neighbours of its own shard of the seeds.

        Rank 0 keeps ``seed`` (a one-process run is unchanged); rank ``r > 0``
        takes :func:`graphrec.distributed.rank_seed` ``(seed, r)``. A sampler
        already on this rank's stream carries on; one on another stream is
        reseeded, and so is every sampler with ``restart`` (a resume by
        another number of ranks, after restoring rank 0's state). A
        checkpoint restored afterwards (:meth:`set_rng_state`) still wins.

        Raises:
            ValueError: ``rank`` is negative.
        """
        from graphrec.distributed import rank_seed

        seed = rank_seed(self.seed, rank)
        if seed == self._sampler_seed and not restart:
            return
        self._sampler_seed = seed
        self._rng_pending.clear()
        for _, sampler in self._on.values():
            sampler.generator.manual_seed(seed)

    def rng_state(self) -> dict[str, Tensor]:
        """The state of the training sampler's generator on every device it was built on.

        Keys are ``"sampler.<device>"`` (``"sampler.cpu"``, ``"sampler.cuda:0"``);
        values are CPU ByteTensors (CUDA generator states are too), which
        ``torch.load(weights_only=True)`` accepts. States restored for a device
        whose sampler is not built yet are returned as they were given.
        """
        state = {f"sampler.{dev}": s.clone() for dev, s in self._rng_pending.items()}
        state.update({f"sampler.{dev}": sampler.generator.get_state() for dev, (_, sampler) in self._on.items()})
        return state

    def set_rng_state(self, state: dict[str, Tensor]) -> None:
        """Restore what :meth:`rng_state` returned.

        A state for a device whose sampler exists is applied now; the others
        are kept and applied when the model builds its sampler on that device
        (in :meth:`_graph`, on first use).

        Raises:
            ValueError: A key is not ``"sampler.<device>"`` or a value is not
                a generator state.
        """
        parsed: dict[str, Tensor] = {}
        for key, value in state.items():
            if not key.startswith("sampler."):
                raise ValueError(f"GraphSAGE.set_rng_state: unknown key {key!r}; expected 'sampler.<device>' keys "
                                 "from GraphSAGE.rng_state()")
            if not isinstance(value, Tensor) or value.dtype != torch.uint8 or value.dim() != 1:
                found = f"{value.dtype} of shape {tuple(value.shape)}" if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"GraphSAGE.set_rng_state: {key!r} must be a 1-d uint8 tensor (a torch.Generator "
                                 f"state), got {found}")
            try:
                device = str(torch.device(key.removeprefix("sampler.")))
            except RuntimeError:
                raise ValueError(f"GraphSAGE.set_rng_state: {key!r} does not name a device") from None
            parsed[device] = value.detach().cpu().clone()
        for device, value in parsed.items():
            if device in self._on:
                self._on[device][1].generator.set_state(value)
                self._rng_pending.pop(device, None)
            else:
                self._rng_pending[device] = value

    @staticmethod
    def _inputs(g: HeteroData) -> tuple[dict[str, Tensor | None], dict[str, Tensor], dict[EdgeType, Tensor]]:
        x = {t: g[t].x if "x" in g[t] else None for t in g.node_types}
        ids = {t: torch.arange(g[t].num_nodes, device=g[g.edge_types[0]].edge_index.device) for t in g.node_types}
        return x, ids, g.edge_index_dict

    def get_embedding(self) -> tuple[Tensor, Tensor]:
        """Full-graph, layer-wise inference: ``([U, D], [I, D])``."""
        g, _ = self._graph()
        h = self.encoder(*self._inputs(g))
        return h["user"], h["item"]

    def embed_sampled(self, seeds: Mapping[str, Tensor], sampler: Any = None,
                      drop: Mapping[EdgeType, Tensor] | None = None) -> dict[str, Tensor]:
        """Embeddings of the seed nodes from their sampled computation subgraph.

        Args:
            seeds: ``{node_type: unique node indices}``.
            sampler: Another :class:`~graphrec.sampling.NeighborSampler` over
                this graph (default: the training sampler).
            drop: Per edge type, ids of edges (in ``graph[edge_type].edge_index``)
                that carry no message even when sampled.
        """
        g, own = self._graph()
        out = (sampler or own).sample({t: s.to(self.device) for t, s in seeds.items()})
        x = {t: (g[t].x[out.node[t]] if "x" in g[t] else None) for t in g.node_types}
        edges = {et: torch.stack([out.row[et], out.col[et]]) for et in g.edge_types}
        edge_hops = {et: list(out.num_sampled_edges[et]) for et in g.edge_types}
        for et, ids in (drop or {}).items():
            if et in edges and len(ids):
                keep = ~torch.isin(out.edge[et], ids.to(out.edge[et].device))
                edges[et] = edges[et][:, keep]
                hop = torch.repeat_interleave(torch.arange(len(edge_hops[et]), device=keep.device),
                                              torch.tensor(edge_hops[et], device=keep.device))
                edge_hops[et] = torch.bincount(hop[keep], minlength=len(edge_hops[et])).tolist()
        hops = SampledHops({t: list(out.num_sampled_nodes[t]) for t in g.node_types}, edge_hops)
        h = self.encoder(x, out.node, edges, hops)
        return {t: h[t][: len(s)] for t, s in seeds.items()}

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        """BPR (or BCE) on embeddings of the batch's sampled subgraph, plus ``reg · Σ ||e||² / 2B``."""
        batch = users.shape[0]
        drop = None
        if self.exclude_target_edges:  # the example's own edge would hand the model its answer
            ids = self.pair_edge_ids(users, pos_items)
            drop = {("user", "interacts", "item"): ids, ("item", "rev_interacts", "user"): ids}
        e_u, e_i = self._embed_batch(users, torch.cat([pos_items, neg_items]), drop)
        e_p, e_n = e_i.split(batch)  # [B, D] each
        pos, neg = (e_u * e_p).sum(-1), (e_u * e_n).sum(-1)
        if self.objective == "bce":
            logits = torch.cat([pos, neg])
            labels = torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
            rank = nn.functional.binary_cross_entropy_with_logits(logits, labels)
        else:
            rank = bpr_loss(pos, neg)
        return rank + self.reg * l2_reg(e_u, e_p, e_n)

    def candidate_scores(self, users: Tensor, candidates: Tensor) -> Tensor:
        """Scores from the users' and candidates' sampled subgraphs, as :meth:`loss` embeds them (the
        full-graph inference of :meth:`get_embedding` would cost a whole pass per batch).
        Shapes: ``[B], [B, M] → [B, M]``."""
        e_u, e_c = self._embed_batch(users, candidates.reshape(-1))
        return (e_u.unsqueeze(1) * e_c.view(*candidates.shape, -1)).sum(-1)

    def _embed_batch(self, users: Tensor, items: Tensor,
                     drop: Mapping[EdgeType, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Sampled embeddings of a batch's users ``[B] → [B, D]`` and items ``[N] → [N, D]``, each distinct node
        embedded once (:meth:`embed_sampled`)."""
        u, u_inv = torch.unique(users, return_inverse=True)
        i, i_inv = torch.unique(items, return_inverse=True)
        h = self.embed_sampled({"user": u, "item": i}, drop=drop)
        # index_select, not h[idx]: the backward of advanced indexing adds in a thread-dependent order on CPU
        return h["user"].index_select(0, u_inv), h["item"].index_select(0, i_inv)

    def pair_edge_ids(self, users: Tensor, items: Tensor) -> Tensor:
        """Ids of the ``(user, interacts, item)`` edges joining ``users[k]`` and ``items[k]`` (pairs without one
        are left out); the reverse edge of id ``e`` is ``(item, rev_interacts, user)`` edge ``e`` (GraphBuilder)."""
        g, _ = self._graph()
        et = ("user", "interacts", "item")
        if et not in g.edge_types:
            return torch.empty(0, dtype=torch.long, device=self.device)
        key = str(self.device)
        if key not in self._pair_index:
            ei = g[et].edge_index
            keys, order = torch.sort(ei[0] * self.num_items + ei[1])
            self._pair_index[key] = (keys, order)
        keys, order = self._pair_index[key]
        q = users.to(keys.device) * self.num_items + items.to(keys.device)
        pos = torch.searchsorted(keys, q).clamp(max=len(keys) - 1)
        found = keys[pos] == q
        return order[pos[found]]

    # --- inductive use ---

    def score_history(self, items: Tensor) -> Tensor:
        """Scores for a new user, embedded from their items by :meth:`embed_new_user`."""
        return self.get_embedding()[1] @ self._embed_user(items.tolist()).to(self.device)

    def fold_in(self, items: Tensor, user: int | None = None, state: Any = None) -> Tensor:
        """Inductive. A trained ``user`` keeps their node (its input, learned id or features, and its attribute
        edges: occupation, age...) with their item edges replaced by ``items``, so their unchanged history gives
        their trained embedding back; anyone else is embedded as a new node linked to ``items``
        (:meth:`embed_new_user`)."""
        if user is None or not 0 <= user < self.num_users:
            return self._embed_user(items.tolist()).to(self.device)
        return self._embed_trained_user(int(user), items.tolist()).to(self.device)

    @torch.no_grad()
    def _embed_trained_user(self, user: int, items: Sequence[int]) -> Tensor:
        from graphrec.graph.builder import reverse

        if len(items) == 0:
            raise ValueError("fold_in needs at least one item")
        g = self.graph.clone()
        et = ("user", "interacts", "item")
        new = torch.tensor([[user] * len(items), list(items)], dtype=torch.long)
        for t, side, add in ((et, 0, new), (reverse(et), 1, new.flip(0))):
            ei = g[t].edge_index
            g[t].edge_index = torch.cat([ei[:, ei[side] != user], add], dim=1)
        return self._encode(g)["user"][user]

    def _indices(self, node_type: str, raw_ids: Sequence[object]) -> list[int]:
        """Node indices of raw ids (the graph's ``node_raw_ids``; a graph without them is indexed by position)."""
        from graphrec.errors import UnknownIdError

        n = int(self.graph[node_type].num_nodes)
        if "node_raw_ids" not in self.graph:
            idx = [int(r) if isinstance(r, int | np.integer) else -1 for r in raw_ids]
            bad = [r for r, i in zip(raw_ids, idx, strict=True) if not 0 <= i < n]
            if bad:
                raise UnknownIdError(f"unknown {node_type} id(s): {bad[:5]} (this graph has no raw ids: 0..{n - 1})")
            return idx
        lookup = self._lookup.get(node_type)
        if lookup is None:
            lookup = self._lookup[node_type] = {str(r): i for i, r in enumerate(self.graph.node_raw_ids[node_type])}
        missing = [r for r in raw_ids if str(r) not in lookup]
        if missing:
            raise UnknownIdError(f"unknown {node_type} id(s): {missing[:5]}")
        return [lookup[str(r)] for r in raw_ids]

    def embed_new_items(self, x: Tensor, links: Mapping[str, Sequence[Sequence[object]]] | None = None) -> Tensor:
        """Embeddings ``[n, D]`` of items not in the graph, from features and attribute links alone.

        Args:
            x: ``[n, F]`` item features (text embeddings), as ``data["item"].x``.
            links: Per attribute node type (``"genre"``...), the raw ids of
                the attribute nodes each new item links to:
                ``{"genre": [["Comedy", "Drama"], ["Horror"]]}``.

        Raises:
            UnknownIdError: an attribute id the graph does not have.
        """
        g = self.graph
        n = x.shape[0]
        new = list(range(g["item"].num_nodes, g["item"].num_nodes + n))
        edges: dict[EdgeType, tuple[list[int], list[int]]] = {}
        for attr, per_item in (links or {}).items():
            fwd = [et for et in g.edge_types if et[0] == "item" and et[2] == attr and not et[1].startswith("rev_")]
            if not fwd:
                raise ConfigError(f"the graph has no item-{attr} edges")
            pairs = [(new[j], a) for j, attrs in enumerate(per_item) for a in self._indices(attr, list(attrs))]
            edges[fwd[0]] = ([p[0] for p in pairs], [p[1] for p in pairs])
        h = self._augmented("item", x, edges)
        return h["item"][new]

    def embed_new_user(self, items: Sequence[object]) -> Tensor:
        """Embedding ``[D]`` of a user not in the graph, from the raw ids of the items they interacted with.

        Their features are the mean of those items' features when the graph's
        users have features of the item kind (``user_features="text_mean"``).

        Raises:
            UnknownIdError: an item id the graph does not have.
        """
        return self._embed_user(self._indices("item", list(items)))

    def _embed_user(self, items: Sequence[int]) -> Tensor:
        g = self.graph
        idx = torch.as_tensor(list(items), dtype=torch.long)
        if len(idx) == 0:
            raise ValueError("embed_new_user needs at least one item")
        x = None
        if "x" in g["user"]:
            if "x" not in g["item"] or g["user"].x.shape[1] != g["item"].x.shape[1]:
                raise ConfigError("embed_new_user: user features are not means of item features; cannot derive them")
            x = g["item"].x[idx].mean(0, keepdim=True)
        elif isinstance(self.encoder.inputs["user"], nn.Embedding):
            raise ConfigError("embed_new_user: users are learned ids without features, so a new user has no input; "
                              "build the graph with user_features='text_mean'")
        u = g["user"].num_nodes
        h = self._augmented("user", x, {("user", "interacts", "item"): ([u] * len(idx), idx.tolist())})
        return h["user"][u]

    @torch.no_grad()
    def _augmented(self, node_type: str, x: Tensor | None, edges: Mapping[EdgeType, tuple[list[int], list[int]]]) -> dict[str, Tensor]:
        from graphrec.graph.builder import reverse

        if isinstance(self.encoder.inputs[node_type], nn.Embedding):
            raise ConfigError(f"{node_type} nodes are learned ids without features: a new one has no input")
        g = self.graph.clone()
        n_new = x.shape[0] if x is not None else 1
        g[node_type].num_nodes = g[node_type].num_nodes + n_new
        if "x" in g[node_type]:
            if x is None:
                raise ConfigError(f"new {node_type} nodes need features of size {g[node_type].x.shape[1]}")
            g[node_type].x = torch.cat([g[node_type].x, x.to(g[node_type].x)])
        for et, (src, dst) in edges.items():
            add = torch.tensor([src, dst], dtype=torch.long)
            for t, e in ((et, add), (reverse(et), add.flip(0))):
                g[t].edge_index = torch.cat([g[t].edge_index, e], dim=1)
        return self._encode(g)

    @torch.no_grad()
    def _encode(self, g: HeteroData) -> dict[str, Tensor]:
        """Every node's embedding on an edited copy ``g`` of the graph, in eval mode (the mode is restored)."""
        was = self.training
        self.eval()
        h = self.encoder(*self._inputs(g.to(self.device)))
        self.train(was)
        return h


@dataclass(frozen=True)
class GraphSAGEConfig(ModelConfig):
    """GraphSAGE's hyperparameters (its graph comes from the experiment's ``graph:`` section).

    Attributes:
        dim: Width of every layer (>= 1).
        num_layers: SAGE layers, the receptive field in hops (>= 1).
        reg: L2 weight on the batch's layer-0 representations (>= 0).
        fanouts: Neighbours sampled per hop in training, one per layer
            (each >= 1, or -1 for every neighbour); default 10 per layer.
        dropout: Dropout between layers, in [0, 1).
        objective: ``bpr`` or ``bce`` (binary cross-entropy).
        exclude_target_edges: Remove each training example's own (user,
            positive item) edge, both directions, from its sampled
            message-passing graph: otherwise the model sees the answer it is
            asked to score. Off by default: on ML-100K (seed 2020, the
            experiment file's settings) it measured test Recall@20 0.3401
            against 0.3509 without it (one seed; the edge ids are looked up
            per batch, which also slows each epoch); see
            experiments/results/NOTES.md.
    """

    name: Literal["graphsage"] = "graphsage"
    search_space: ClassVar[Mapping[str, Range]] = {
        "reg": FloatRange(1e-6, 1e-2, log=True), "dropout": FloatRange(0.0, 0.5), "objective": Choice(("bpr", "bce")),
        "fanouts": Choice(((5, 5), (10, 10), (20, 10), (25, 15))), "train.lr": FloatRange(1e-4, 1e-2, log=True),
        "train.negative_candidates": Choice((1, 4))}
    dim: int = 64
    num_layers: int = 2
    reg: float = 1e-4
    fanouts: tuple[int, ...] | None = None
    dropout: float = 0.0
    objective: Literal["bpr", "bce"] = "bpr"
    exclude_target_edges: bool = False

    def __post_init__(self) -> None:
        check_dim_reg(self.dim, self.reg)
        if self.num_layers < 1:
            raise ConfigError(f"num_layers must be >= 1, got {self.num_layers}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.objective not in ("bpr", "bce"):
            raise ConfigError(f"objective must be 'bpr' or 'bce', got {self.objective!r}")
        if self.fanouts is not None:
            object.__setattr__(self, "fanouts", tuple(self.fanouts))
            if len(self.fanouts) != self.num_layers:
                raise ConfigError(f"fanouts needs one entry per layer (num_layers = {self.num_layers}), "
                                  f"found {list(self.fanouts)}")
            if any(f < -1 or f == 0 for f in self.fanouts):
                raise ConfigError(f"fanouts: each must be >= 1, or -1 for every neighbour; found {list(self.fanouts)}")

    def needs(self) -> Needs:
        return Needs(graph=True, item_text=True)


def _build(c: GraphSAGEConfig, x: ModelInputs) -> GraphSAGE:
    return GraphSAGE(x.graph, dim=c.dim, num_layers=c.num_layers, fanouts=c.fanouts or (10,) * c.num_layers,
                     dropout=c.dropout, reg=c.reg, objective=c.objective, seed=x.seed,
                     exclude_target_edges=c.exclude_target_edges)


SPEC = ModelSpec(GraphSAGEConfig, GraphSAGE, _build, explanation="integrated-gradients",
                 summary="inductive message passing over the heterogeneous graph (text features, attribute "
                         "nodes), trained on sampled neighbourhoods")
