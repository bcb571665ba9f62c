"""Explanations on CUDA equal the CPU ones; skipped without a GPU."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.data import HeteroData

from graphrec.explain import Explainer
from graphrec.graph import normalized_adjacency
from graphrec.nn import GraphSAGE, LightGCN
from tests.nn.test_sage import graph as sage_graph

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_lightgcn_explanation_on_cuda_equals_cpu():
    r = sp.random(30, 40, density=0.15, random_state=1, format="csr")
    r.data[:] = 1
    torch.manual_seed(0)
    cpu = LightGCN(30, 40, normalized_adjacency(r), dim=16, num_layers=3).eval()
    gpu = LightGCN(30, 40, normalized_adjacency(r, device="cuda"), dim=16, num_layers=3).cuda().eval()
    gpu.load_state_dict(cpu.state_dict())
    g = HeteroData()
    g["user"].num_nodes, g["item"].num_nodes = 30, 40
    coo = r.tocoo()
    g["user", "interacts", "item"].edge_index = torch.tensor(np.stack([coo.row, coo.col]), dtype=torch.long)
    for user, item in [(0, 3), (7, 39)]:
        a, b = Explainer(cpu, g).explain_index(user, item), Explainer(gpu, g).explain_index(user, item)
        assert math.isclose(a.score, b.score, rel_tol=1e-4)
        assert abs(b.total - b.difference) < 1e-4
        assert [n.key for n in a.nodes] == [n.key for n in b.nodes]
        for x, y in zip(a.edges, b.edges, strict=True):
            assert (x.source, x.target) == (y.source, y.target)
            assert math.isclose(x.importance, y.importance, rel_tol=1e-3, abs_tol=1e-5)


def test_graphsage_explanation_on_cuda_equals_cpu():
    torch.manual_seed(0)
    data = sage_graph()
    cpu = GraphSAGE(data, dim=8, num_layers=2, fanouts=[-1, -1]).eval()
    gpu = GraphSAGE(data, dim=8, num_layers=2, fanouts=[-1, -1])
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.cuda().eval()
    a, b = Explainer(cpu, data, steps=8).explain_index(2, 5), Explainer(gpu, data, steps=8).explain_index(2, 5)
    assert math.isclose(a.score, b.score, rel_tol=1e-4, abs_tol=1e-5)
    assert abs(b.total - b.difference) < 1e-4
    got = {(e.source, e.target): e.importance for e in b.edges}
    for e in a.edges:
        if abs(e.importance) > 1e-3:
            assert math.isclose(got[(e.source, e.target)], e.importance, rel_tol=1e-2, abs_tol=1e-4)
