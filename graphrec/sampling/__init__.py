"""Mini-batch neighbor sampling on heterogeneous graphs, in plain torch (no pyg-lib, no torch-sparse)."""

from graphrec.sampling.neighbor import NeighborSampler

__all__ = ["NeighborSampler"]
