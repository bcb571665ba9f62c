"""The heterogeneous user-item-attribute graph."""

from graphrec.graph.builder import (
    ATTRIBUTE_EDGES,
    INTERACTS,
    REV_INTERACTS,
    GraphBuilder,
    node_labels,
    node_raw_ids,
    reverse,
)
from graphrec.graph.config import GraphConfig
from graphrec.graph.export import attribute_matrix, interaction_matrix, normalized_adjacency, to_networkx
from graphrec.matrices import multihot  # its home is graphrec.matrices; kept here for existing imports

__all__ = [
    "ATTRIBUTE_EDGES", "INTERACTS", "REV_INTERACTS", "GraphBuilder", "GraphConfig", "attribute_matrix",
    "interaction_matrix", "multihot", "node_labels", "node_raw_ids", "normalized_adjacency", "reverse", "to_networkx",
]
