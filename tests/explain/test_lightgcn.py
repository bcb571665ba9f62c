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
