"""Models: pure ``torch.nn.Module`` s that compute embeddings and scores on index tensors."""

from graphrec.nn.base import ScoringModel, bpr_loss, l2_reg
from graphrec.nn.baselines import MFBPR, ItemKNN, MostPopular
from graphrec.nn.ease import EASE
from graphrec.nn.gfcf import BSPM, GFCF
from graphrec.nn.lightgcn import LightGCN, propagate
from graphrec.nn.sage import GraphSAGE, HeteroSAGE
from graphrec.nn.simgcl import SimGCL, XSimGCL

__all__ = ["BSPM", "EASE", "GFCF", "MFBPR", "GraphSAGE", "HeteroSAGE", "ItemKNN", "LightGCN", "MostPopular", "ScoringModel", "SimGCL", "XSimGCL", "bpr_loss", "l2_reg", "propagate"]
