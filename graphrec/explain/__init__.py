"""Why an item was recommended: subgraph explanations with exact (LightGCN) or gradient (GraphSAGE) attributions."""

from graphrec.explain.explainer import Explainer
from graphrec.explain.explanation import Contribution, ExplainEdge, ExplainNode, Explanation
from graphrec.explain.lightgcn import Contributions, WalkTerms, edge_flows, lightgcn_contributions, walk_terms
from graphrec.explain.sage import EdgeAttributions, graphsage_edge_attributions

__all__ = [
    "Contribution", "Contributions", "EdgeAttributions", "ExplainEdge", "ExplainNode", "Explainer", "Explanation",
    "WalkTerms", "edge_flows", "graphsage_edge_attributions", "lightgcn_contributions", "walk_terms",
]
