"""Heterogeneous neighbor sampling in vectorised torch, without pyg-lib or torch-sparse.

:class:`NeighborSampler` is a :class:`torch_geometric.sampler.BaseSampler`, so
PyG's ``NodeLoader`` and ``LinkLoader`` turn its output into ``HeteroData``
mini-batches (with ``n_id``, ``e_id``, ``num_sampled_nodes`` and
``num_sampled_edges``; seeds first). Every hop is a handful of tensor
operations over all frontier nodes at once; there is no Python loop over
nodes or edges, and the same code runs on CUDA when the graph lives there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.sampler import BaseSampler, EdgeSamplerInput, HeteroSamplerOutput, NegativeSampling, NodeSamplerInput
from torch_geometric.sampler.neighbor_sampler import edge_sample, node_sample

from graphrec.errors import ConfigError

EdgeType = tuple[str, str, str]
Fanouts = Sequence[int] | Mapping[EdgeType, Sequence[int]]


class NeighborSampler(BaseSampler):
    """Samples, hop by hop, up to ``k`` incoming neighbours of every frontier node per edge type.

    For an edge type ``(src, rel, dst)``, the frontier nodes of type ``dst``
    draw neighbours among their ``src`` in-neighbours (PyG's convention:
    messages flow along the edge direction). Hop 0's frontier is the seeds;
    hop ``h``'s is the nodes first reached in hop ``h - 1``.

    Args:
        data: The graph (its ``edge_index`` per edge type; CPU or CUDA).
        num_neighbors: Fan-out per hop, the same for every edge type
            (``[10, 10]``), or per edge type (``{("user", "interacts",
            "item"): [10, 5], ...}``; types left out get 0). ``-1`` takes every
            neighbour.
        replace: Sample with replacement.
        weight_attr: Name of an edge attribute to sample proportionally to
            (``"weight"``); edges of weight 0 are never drawn without
            replacement.
        seed: Seed of the sampler's own random generator.

    Shapes:
        ``sample({type: seeds})`` returns global node ids per type (seeds
        first, then each hop's new nodes in order of discovery) and local
        ``row`` / ``col`` indices plus original edge ids per edge type.
    """

    # Never inference tensors, even when built under inference mode (a model first evaluated):
    # the id maps are updated in place on every call, in or out of that mode.
    @torch.inference_mode(False)
    def __init__(self, data: HeteroData, num_neighbors: Fanouts, replace: bool = False,
                 weight_attr: str | None = None, seed: int | None = None) -> None:
        self.node_types = list(data.node_types)
        self.edge_types: list[EdgeType] = list(data.edge_types)
        self.num_nodes = {t: int(data[t].num_nodes) for t in self.node_types}
        self.replace = replace
        self.weight_attr = weight_attr
        self.device = data[self.edge_types[0]].edge_index.device if self.edge_types else torch.device("cpu")
        self.fanouts = self._fanouts(num_neighbors)
        self.num_hops = len(next(iter(self.fanouts.values()))) if self.fanouts else 0
        self.csc: dict[EdgeType, tuple[Tensor, Tensor, Tensor, Tensor | None]] = {}
        for et in self.edge_types:
            store = data[et]
            ei = store.edge_index.to(self.device)
            n_dst = self.num_nodes[et[2]]
            perm = torch.argsort(ei[1], stable=True)
            colptr = torch.zeros(n_dst + 1, dtype=torch.long, device=self.device)
            colptr[1:] = torch.cumsum(torch.bincount(ei[1], minlength=n_dst), 0)
            weight = None
            if weight_attr is not None:
                if weight_attr not in store:
                    raise ConfigError(f"edge type {et} has no attribute {weight_attr!r} to sample by")
                weight = store[weight_attr].to(self.device, torch.float)[perm]
                if (weight < 0).any():
                    raise ConfigError(f"edge type {et}: sampling weights must be >= 0")
            self.csc[et] = (colptr, ei[0][perm].contiguous(), perm, weight)
        self.generator = torch.Generator(device=self.device)
        if seed is not None:
            self.generator.manual_seed(seed)
        else:
            self.generator.seed()
        # global -> local id maps, reset after every call (touched entries only)
        self._local = {t: torch.full((n,), -1, dtype=torch.long, device=self.device) for t, n in self.num_nodes.items()}

    def _fanouts(self, num_neighbors: Fanouts) -> dict[EdgeType, list[int]]:
        if isinstance(num_neighbors, Mapping):
            unknown = [et for et in num_neighbors if et not in self.edge_types]
            if unknown:
                raise ConfigError(f"num_neighbors names edge types the graph does not have: {unknown}")
            lengths = {len(v) for v in num_neighbors.values()}
            if len(lengths) > 1:
                raise ConfigError(f"num_neighbors: every edge type needs the same number of hops, got {sorted(lengths)}")
            hops = lengths.pop() if lengths else 0
            out = {et: list(num_neighbors.get(et, [0] * hops)) for et in self.edge_types}
        else:
            out = {et: list(num_neighbors) for et in self.edge_types}
        for et, ks in out.items():
            if any(k < -1 for k in ks):
                raise ConfigError(f"num_neighbors for {et}: fan-outs must be >= -1 (-1: all), got {ks}")
        return out

    # --- PyG's sampler interface ---

    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs: Any) -> HeteroSamplerOutput:
        if index.input_type is None:
            raise ConfigError("NeighborSampler works on HeteroData: give input_nodes as (node_type, indices)")
        return node_sample(index, self._sample)

    def sample_from_edges(self, index: EdgeSamplerInput, neg_sampling: NegativeSampling | None = None) -> HeteroSamplerOutput:
        return edge_sample(index, self._sample, self.num_nodes, False, None, neg_sampling)

    @property
    def edge_permutation(self) -> None:
        return None  # sampled edge ids are already ids of the original graph

    # --- sampling ---

    def _sample(self, seed: dict[str, Tensor], seed_time: Any = None, **kwargs: Any) -> HeteroSamplerOutput:
        """The callback PyG's ``node_sample`` / ``edge_sample`` call."""
        if seed_time is not None:
            raise ConfigError("temporal sampling is not supported")
        return self.sample(seed)

    def sample(self, seed: Mapping[str, Tensor]) -> HeteroSamplerOutput:
        """Sample the computation subgraph of a seed set: ``{node type: [n] unique node ids}``.

        Returns:
            Global node ids per type (``out.node[t]``: the seeds first, in
            order, then each hop's new nodes in order of discovery); per edge
            type, local ``row`` / ``col`` indices into those lists and the
            original edge ids (``out.edge``). One draw from the sampler's
            generator per call.

        Raises:
            ValueError: seed ids of one type that repeat.
        """
        nodes: dict[str, list[Tensor]] = {t: [] for t in self.node_types}
        count = dict.fromkeys(self.node_types, 0)
        frontier: dict[str, Tensor] = {}
        for t, ids in seed.items():
            ids = ids.to(self.device, torch.long).view(-1)
            if len(torch.unique(ids)) != len(ids):
                raise ValueError(f"seed nodes of type {t!r} must be unique")
            self._local[t][ids] = torch.arange(len(ids), device=self.device)
            nodes[t].append(ids)
            count[t] = len(ids)
            frontier[t] = ids
        num_sampled_nodes = {t: [count[t]] for t in self.node_types}
        rows: dict[EdgeType, list[Tensor]] = {et: [] for et in self.edge_types}
        cols: dict[EdgeType, list[Tensor]] = {et: [] for et in self.edge_types}
        eids: dict[EdgeType, list[Tensor]] = {et: [] for et in self.edge_types}
        num_sampled_edges: dict[EdgeType, list[int]] = {et: [] for et in self.edge_types}
        try:
            for hop in range(self.num_hops):
                before = dict(count)
                for et in self.edge_types:
                    k = self.fanouts[et][hop]
                    f = frontier.get(et[2])
                    if f is None or len(f) == 0 or k == 0:
                        num_sampled_edges[et].append(0)
                        continue
                    colptr, row, perm, weight = self.csc[et]
                    start = colptr[f]
                    deg = colptr[f + 1] - start
                    owner, slot = self._pick(start, deg, k, weight)  # [E'] frontier position, csc slot
                    src_global = row[slot]
                    src_local = self._add(et[0], src_global, nodes, count)
                    rows[et].append(src_local)
                    cols[et].append(self._local[et[2]][f[owner]])
                    eids[et].append(perm[slot])
                    num_sampled_edges[et].append(len(slot))
                frontier = {t: torch.cat(nodes[t])[before[t]:] for t in self.node_types if count[t] > before[t]}
                for t in self.node_types:
                    num_sampled_nodes[t].append(count[t] - before[t])
            node = {t: torch.cat(v) if v else torch.empty(0, dtype=torch.long, device=self.device) for t, v in nodes.items()}
        finally:
            for t, v in nodes.items():
                if v:
                    self._local[t][torch.cat(v)] = -1
        empty = torch.empty(0, dtype=torch.long, device=self.device)
        return HeteroSamplerOutput(
            node=node,
            row={et: torch.cat(v) if v else empty for et, v in rows.items()},
            col={et: torch.cat(v) if v else empty for et, v in cols.items()},
            edge={et: torch.cat(v) if v else empty for et, v in eids.items()},
            num_sampled_nodes=num_sampled_nodes,
            num_sampled_edges=num_sampled_edges,
        )

    def _add(self, node_type: str, ids: Tensor, nodes: dict[str, list[Tensor]], count: dict[str, int]) -> Tensor:
        """Local ids of ``ids``; ids seen for the first time get new ones, in order of first appearance."""
        local = self._local[node_type]
        fresh = ids[local[ids] < 0]
        if len(fresh):
            uniq, inverse = torch.unique(fresh, return_inverse=True)
            first = torch.full((len(uniq),), len(fresh), dtype=torch.long, device=self.device)
            first.scatter_reduce_(0, inverse, torch.arange(len(fresh), device=self.device), reduce="amin")
            new = uniq[torch.argsort(first)]
            local[new] = torch.arange(count[node_type], count[node_type] + len(new), device=self.device)
            nodes[node_type].append(new)
            count[node_type] += len(new)
        return local[ids]

    def _rand(self, *shape: int) -> Tensor:
        return torch.rand(*shape, generator=self.generator, device=self.device)

    def _pick(self, start: Tensor, deg: Tensor, k: int, weight: Tensor | None) -> tuple[Tensor, Tensor]:
        """Chosen neighbours of each frontier node as (frontier position, csc slot) pairs.

        Shapes: ``start, deg: [F]`` → two ``[E']`` tensors.
        """
        if k < 0:  # every neighbour
            return _segments(start, deg)
        if self.replace:
            has = deg > 0
            owner = torch.nonzero(has).view(-1).repeat_interleave(k)  # [F' k]
            if weight is None:
                offset = (self._rand(len(owner)) * deg[owner]).long().clamp(max=deg[owner] - 1)
                return owner, start[owner] + offset
            return owner, self._weighted_with_replacement(start[owner], deg[owner], weight)
        if weight is not None:
            return self._weighted_without_replacement(start, deg, k, weight)
        small = deg <= k
        own_all, slot_all = _segments(start[small], deg[small])
        owner_all = torch.nonzero(small).view(-1)[own_all]
        big = torch.nonzero(~small).view(-1)
        if len(big) == 0:
            return owner_all, slot_all
        # Floyd's algorithm, vectorised over nodes: k distinct offsets in [0, deg)
        d = deg[big]
        chosen = torch.empty((len(big), k), dtype=torch.long, device=self.device)
        for j in range(k):
            upper = d - k + j  # inclusive
            t = (self._rand(len(big)) * (upper + 1)).long().clamp(max=upper)
            dup = (chosen[:, :j] == t.unsqueeze(1)).any(1) if j else torch.zeros_like(t, dtype=torch.bool)
            chosen[:, j] = torch.where(dup, upper, t)
        owner_big = big.repeat_interleave(k)
        slot_big = (start[big].unsqueeze(1) + chosen).view(-1)
        return torch.cat([owner_all, owner_big]), torch.cat([slot_all, slot_big])

    def _weighted_with_replacement(self, start: Tensor, deg: Tensor, weight: Tensor) -> Tensor:
        cum = torch.cumsum(weight.double(), 0)
        base = torch.where(start > 0, cum[(start - 1).clamp(min=0)], torch.zeros_like(cum[start]))
        total = cum[start + deg - 1] - base
        u = base + self._rand(len(start)).double() * total
        slot = torch.searchsorted(cum, u, right=True)
        return torch.minimum(torch.maximum(slot, start), start + deg - 1)

    def _weighted_without_replacement(self, start: Tensor, deg: Tensor, k: int, weight: Tensor) -> tuple[Tensor, Tensor]:
        # Efraimidis-Spirakis: key = log(u) / w, keep each node's k largest keys
        owner, slot = _segments(start, deg)
        w = weight[slot]
        keep = w > 0
        owner, slot, w = owner[keep], slot[keep], w[keep]
        key = torch.log(self._rand(len(slot)).clamp(min=1e-30)) / w
        order = torch.argsort(key, descending=True, stable=True)
        order = order[torch.argsort(owner[order], stable=True)]
        owner, slot = owner[order], slot[order]
        counts = torch.bincount(owner, minlength=len(start))
        first = torch.cumsum(counts, 0) - counts
        rank = torch.arange(len(owner), device=self.device) - first[owner]
        take = rank < k
        return owner[take], slot[take]


def _segments(start: Tensor, deg: Tensor) -> tuple[Tensor, Tensor]:
    """Every slot of every segment: ``(segment index, start + offset)`` pairs. Shapes: ``[F] → [Σ deg]``."""
    owner = torch.repeat_interleave(torch.arange(len(deg), device=deg.device), deg)
    first = torch.cumsum(deg, 0) - deg
    offset = torch.arange(len(owner), device=deg.device) - first[owner]
    return owner, start[owner] + offset
