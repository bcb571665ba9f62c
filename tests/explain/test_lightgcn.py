import math

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.explain import lightgcn_contributions
from graphrec.graph import normalized_adjacency
from graphrec.nn import LightGCN


def test_hand_worked_one_layer():
    # 1 user, 2 items, edges u0-i0, u0-i1; Â has 1/sqrt(2) between u0 and each item; L = 1, α = (1/2, 1/2)
    m = LightGCN(1, 2, normalized_adjacency(sp.csr_matrix(np.array([[1.0, 1.0]]))), dim=1, num_layers=1)
    with torch.no_grad():
        m.user_emb.weight.fill_(2.0)
        m.item_emb.weight.copy_(torch.tensor([[1.0], [3.0]]))
    s = 1 / math.sqrt(2)
    e_i1 = (3 + s * 2) / 2  # final embedding of item 1
    c = lightgcn_contributions(m, user=0, item=1)
    # P_u = (1/2 at u0, s/2 at i0, s/2 at i1); contributions = P_uv * e0_v * e_i1
    expected = {0: 0.5 * 2.0 * e_i1, 1: s / 2 * 1.0 * e_i1, 2: s / 2 * 3.0 * e_i1}
    got = dict(zip(c.nodes.tolist(), c.values.tolist(), strict=True))
    assert got.keys() == expected.keys()
    for node, value in expected.items():
        assert math.isclose(got[node], value, rel_tol=1e-6)
    assert c.nodes.tolist()[0] == 2  # the largest contribution first
    assert math.isclose(sum(expected.values()), c.score, rel_tol=1e-6)


def test_contributions_sum_to_score():
    r = sp.random(30, 40, density=0.15, random_state=1, format="csr")
    torch.manual_seed(0)
    m = LightGCN(30, 40, normalized_adjacency(r), dim=16, num_layers=3, item_features=torch.randn(40, 5))
    for user, item in [(0, 3), (7, 39), (29, 0)]:
        c = lightgcn_contributions(m, user, item)
        assert abs(float(c.values.sum()) - c.score) < 1e-5
        assert c.score == float(m(torch.tensor([user]), torch.tensor([item])).detach())


def test_edge_flows_equal_brute_force_walk_sums():
    """flow(a → b) = Σ over walks from u of α_k Π Â · c_end, once per crossing of a → b."""
    from itertools import pairwise, product

    from graphrec.explain import edge_flows, walk_terms

    r = sp.random(4, 5, density=0.5, random_state=3, format="csr")
    r.data[:] = 1
    torch.manual_seed(1)
    m = LightGCN(4, 5, normalized_adjacency(r), dim=3, num_layers=3)
    user, item = 1, 2
    terms = walk_terms(m, user, item)
    dense = m.adj.to_dense().double()
    c = (torch.cat(m.layer0()) @ m.get_embedding()[1][item]).detach().double()
    alphas = m.alphas.tolist()
    n = dense.shape[0]
    want = torch.zeros(n, n, dtype=torch.double)
    for k in range(1, len(alphas)):
        for walk in product(range(n), repeat=k):
            path = (user, *walk)
            w = alphas[k] * c[path[-1]]
            for a, b in pairwise(path):
                w = w * dense[a, b]
            if w == 0:
                continue
            for a, b in pairwise(path):
                want[a, b] += w
    src, dst = torch.nonzero(dense, as_tuple=True)
    got = edge_flows(m, terms, src, dst).detach().double()
    torch.testing.assert_close(got, want[src, dst], rtol=1e-5, atol=1e-6)
    # a pair that is not an edge carries nothing
    assert float(edge_flows(m, terms, torch.tensor([0]), torch.tensor([1]))[0]) == 0.0
