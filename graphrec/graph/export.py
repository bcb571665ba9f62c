"""Views of a built graph: networkx, the user × item matrix, LightGCN's normalised adjacency."""

from __future__ import annotations

import warnings
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
) -> torch.Tensor:
    """LightGCN's symmetric-normalised bipartite adjacency as a torch sparse CSR tensor.

    Nodes are users ``0..U-1`` followed by items ``U..U+I-1``; entries are
    ``1 / sqrt(deg(u) * deg(i))`` for every train edge, in both directions
    (He et al., SIGIR 2020, eq. 7):

    .. math:: \\tilde{A} = D^{-1/2} A D^{-1/2}, \\quad A = \\begin{pmatrix} 0 & R \\\\ R^T & 0 \\end{pmatrix}

    Nodes without edges have zero rows (never ``inf``).

    Shapes:
        returns ``[U + I, U + I]``.
    """
    r = interaction_matrix(graph) if isinstance(graph, HeteroData) else sp.csr_matrix(graph, dtype=np.float64)
    r = r.astype(np.float64)
    r.data[:] = 1.0
    num_users, num_items = r.shape
    deg_u = np.asarray(r.sum(axis=1)).ravel()
    deg_i = np.asarray(r.sum(axis=0)).ravel()
    inv_u = np.divide(1.0, np.sqrt(deg_u), out=np.zeros_like(deg_u), where=deg_u > 0)
    inv_i = np.divide(1.0, np.sqrt(deg_i), out=np.zeros_like(deg_i), where=deg_i > 0)
    norm = sp.diags(inv_u) @ r @ sp.diags(inv_i)  # [U, I]
    adj = sp.bmat([[None, norm], [norm.T, None]], format="csr", dtype=np.float64)
    adj.sort_indices()
    n = num_users + num_items
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
