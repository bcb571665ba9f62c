"""SimGCL / XSimGCL: InfoNCE by hand, noise of norm ε, and the cross-layer loss."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.graph import normalized_adjacency
from graphrec.nn import SimGCL, XSimGCL
from graphrec.nn.simgcl import info_nce

R = sp.csr_matrix((np.random.default_rng(0).random((6, 5)) < 0.5).astype(np.float32))


def test_info_nce_by_hand():
    v = torch.eye(3)  # three orthogonal unit views, each identical to its pair
    tau = 0.5
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + 2))
    assert float(info_nce(v, v, tau)) == pytest.approx(expected, rel=1e-6)


def test_noise_has_norm_eps_and_keeps_signs():
    m = XSimGCL(6, 5, normalized_adjacency(R), dim=4, num_layers=2, eps=0.2, seed=1)
    e = torch.randn(11, 4)
    noise = m._noise_like(e)
    torch.testing.assert_close(noise.norm(dim=1), torch.full((11,), 0.2))
    assert bool(((noise * e) >= 0).all())  # in the direction of each coordinate's sign


def test_clean_embedding_is_the_mean_of_layers_one_to_l():
    m = SimGCL(6, 5, normalized_adjacency(R), dim=4, num_layers=2)
    adj = m.adj.to_dense()
    e0 = m.layer0_all()
    e1 = adj @ e0
    e2 = adj @ e1
    users, items = m.get_embedding()
    torch.testing.assert_close(torch.cat([users, items]), (e1 + e2) / 2)


def test_xsimgcl_loss_is_rank_plus_cross_layer_contrast():
    m = XSimGCL(6, 5, normalized_adjacency(R), dim=4, num_layers=2, cl_weight=0.0, seed=3)
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([3, 4])
    no_cl = m.loss(users, pos, neg)
    m2 = XSimGCL(6, 5, normalized_adjacency(R), dim=4, num_layers=2, cl_weight=0.5, seed=3)
    m2.load_state_dict(m.state_dict())
    assert float(m2.loss(users, pos, neg).detach()) > float(no_cl.detach())  # InfoNCE > 0, same noise draws


def test_cl_nodes_bounds_the_contrasted_nodes():
    m = XSimGCL(6, 5, normalized_adjacency(R), dim=4, num_layers=2, seed=3, cl_nodes=2)
    nodes = torch.tensor([0, 2, 3, 5])
    picked = m._cl_sample(nodes)
    assert len(picked) == 2 and len(set(picked.tolist())) == 2 and set(picked.tolist()) <= {0, 2, 3, 5}
    assert m._cl_sample(torch.tensor([1, 4])).tolist() == [1, 4]  # no more than the bound: all of them
    # a bound above the batch's distinct nodes changes nothing: the same loss as without one
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([3, 4])
    unbounded = XSimGCL(6, 5, normalized_adjacency(R), dim=4, num_layers=2, seed=3)
    bounded = XSimGCL(6, 5, normalized_adjacency(R), dim=4, num_layers=2, seed=3, cl_nodes=10)
    bounded.load_state_dict(unbounded.state_dict())
    assert float(bounded.loss(users, pos, neg)) == float(unbounded.loss(users, pos, neg))
    with pytest.raises(ValueError, match="cl_nodes must be >= 2"):
        XSimGCL(6, 5, normalized_adjacency(R), cl_nodes=1)
