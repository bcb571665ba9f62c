"""The heterogeneous user-item-attribute graph."""

from graphrec.graph.builder import ATTRIBUTE_EDGES, INTERACTS, REV_INTERACTS, GraphBuilder, multihot, reverse
from graphrec.graph.config import GraphConfig
from graphrec.graph.export import interaction_matrix, normalized_adjacency, to_networkx

__all__ = [
    "ATTRIBUTE_EDGES", "INTERACTS", "REV_INTERACTS", "GraphBuilder", "GraphConfig",
    "interaction_matrix", "multihot", "normalized_adjacency", "reverse", "to_networkx",
]
