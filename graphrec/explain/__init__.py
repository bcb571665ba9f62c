"""Why an item was recommended: exact score decompositions (LightGCN)."""

from graphrec.explain.lightgcn import Contributions, lightgcn_contributions

__all__ = ["Contributions", "lightgcn_contributions"]
