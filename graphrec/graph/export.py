"""Views of a built graph: networkx, the user × item matrix, LightGCN's normalised adjacency."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import HeteroData

from graphrec.graph.builder import INTERACTS, node_labels, node_raw_ids

if TYPE_CHECKING:
    import networkx as nx


def interaction_matrix(data: HeteroData, values: str | None = None) -> sp.csr_matrix:
    """The ``num_users × num_items`` matrix of ``(user, interacts, item)`` edges.

    Args:
        values: Edge attribute to use as entries (``"rating"``, ``"weight"``);
            ``None`` gives a binary matrix.
    """
    store = data[INTERACTS]
    u, i = store.edge_index.cpu().numpy()
    vals = np.ones(len(u), dtype=np.float32) if values is None else store[values].cpu().numpy().astype(np.float32)
    shape = (data["user"].num_nodes, data["item"].num_nodes)
    mat = sp.csr_matrix((vals, (u, i)), shape=shape)
    mat.sum_duplicates()
    if values is None:
        mat.data[:] = 1.0
    return mat


def normalized_adjacency(
    graph: HeteroData | sp.csr_matrix,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    attributes: Sequence[str] = (),
) -> torch.Tensor:
    """LightGCN's symmetric-normalised adjacency as a torch sparse CSR tensor.

    Nodes are users ``0..U-1`` followed by items ``U..U+I-1`` and then, for
    each node type named in ``attributes`` (``"genre"``...), its nodes in that
    order; entries are ``1 / sqrt(deg(a) * deg(b))`` for every edge, in both
    directions (He et al., SIGIR 2020, eq. 7):

    .. math:: \\tilde{A} = D^{-1/2} A D^{-1/2}, \\quad A = \\begin{pmatrix} 0 & R & S \\\\ R^T & 0 & T \\\\ S^T & T^T & 0 \\end{pmatrix}

    with ``R`` the train interactions and ``T`` (``S``) the item (user)
    attribute links. Nodes without edges have zero rows (never ``inf``).

    Args:
        graph: A graph from :class:`~graphrec.graph.GraphBuilder`, or a
            ``users × items`` interaction matrix.
        attributes: Attribute node types to include (graph input only).

    Shapes:
        returns ``[N, N]`` with ``N = U + I + Σ |attribute nodes|``.
    """
    r = interaction_matrix(graph) if isinstance(graph, HeteroData) else sp.csr_matrix(graph, dtype=np.float64)
    r = r.astype(np.float64)
    r.data[:] = 1.0
    num_users, num_items = r.shape
    if attributes and not isinstance(graph, HeteroData):
        raise ValueError("attributes need a HeteroData graph, not an interaction matrix")
    links = [attribute_matrix(graph, t) for t in attributes] if isinstance(graph, HeteroData) else []
    sizes = [num_users, num_items, *(m.shape[1] for _, m in links)]
    blocks: list[list[sp.csr_matrix | None]] = [[None] * len(sizes) for _ in sizes]
    blocks[0][1], blocks[1][0] = r, r.T.tocsr()
    for j, (edge_type, m) in enumerate(links, start=2):
        owner = 0 if edge_type[0] == "user" else 1
        blocks[owner][j], blocks[j][owner] = m, m.T.tocsr()
    for i, n in enumerate(sizes):  # bmat needs every block row and column sized
        blocks[i][i] = sp.csr_matrix((n, n))
    a: sp.csr_matrix = sp.bmat(blocks, format="csr", dtype=np.float64)  # type: ignore[assignment]
    a.data[:] = 1.0
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
    adj = (sp.diags(inv) @ a @ sp.diags(inv)).tocsr()
    adj.eliminate_zeros()
    adj.sort_indices()
    n = int(sum(sizes))
    # int32 indices where they fit: MKL and cuSPARSE take them as they are, while
    # int64 ones are converted on every product.
    index_dtype = np.int32 if adj.nnz < 2**31 - 1 else np.int64
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(adj.indptr.astype(index_dtype)),
            torch.from_numpy(adj.indices.astype(index_dtype)),
            torch.from_numpy(adj.data).to(dtype),
            size=(n, n),
            device=device,
            check_invariants=False,  # built by scipy: sorted, in range
        )


def attribute_matrix(data: HeteroData, node_type: str) -> tuple[tuple[str, str, str], sp.csr_matrix]:
    """The forward edge type into attribute ``node_type`` and its ``owners × attributes`` 0/1 matrix.

    Owners are users or items (``("item", "has_genre", "genre")``: items ×
    genres). ValueError if no user or item edges lead to ``node_type``.
    """
    found = [et for et in data.edge_types if et[2] == node_type and et[0] in ("user", "item") and not et[1].startswith("rev_")]
    if not found:
        have = sorted({et[2] for et in data.edge_types if et[0] in ("user", "item")} - {"user", "item"})
        raise ValueError(f"the graph has no user or item edges into {node_type!r} nodes (attribute types: {have})")
    edge_type = found[0]
    s, d = data[edge_type].edge_index.cpu().numpy()
    m = sp.csr_matrix((np.ones(len(s), np.float32), (s, d)),
                      shape=(data[edge_type[0]].num_nodes, data[node_type].num_nodes))
    m.sum_duplicates()
    m.data[:] = 1.0
    return edge_type, m


def to_networkx(data: HeteroData, include_reverse: bool = False) -> nx.Graph:
    """An undirected networkx graph with nodes ``(node_type, index)``.

    Node attributes: ``type``, ``index``, ``raw_id``, ``label``. Edge
    attributes: ``type`` (the relation) and the scalar edge attributes
    (``weight``, ``rating``, ``time``) where present. Reverse edge types are
    left out unless ``include_reverse`` (they duplicate the forward ones).
    """
    import networkx as nx

    g = nx.Graph()
    for node_type in data.node_types:
        store = data[node_type]
        raw, labels = node_raw_ids(data, node_type), node_labels(data, node_type)
        g.add_nodes_from(
            ((node_type, i), {"type": node_type, "index": i, "raw_id": raw[i], "label": labels[i]})
            for i in range(store.num_nodes)
        )
    for edge_type in data.edge_types:
        src_t, rel, dst_t = edge_type
        if rel.startswith("rev_") and not include_reverse:
            continue
        store = data[edge_type]
        src, dst = store.edge_index.tolist()
        attrs = {k: store[k].tolist() for k in ("weight", "rating", "time") if k in store}
        g.add_edges_from(
            ((src_t, s), (dst_t, d), {"type": rel, **{k: v[j] for k, v in attrs.items()}})
            for j, (s, d) in enumerate(zip(src, dst, strict=True))
        )
    return g
