"""LightGCN's training step on the batch's rows: the same loss and gradients as the whole propagation."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.graph import normalized_adjacency
from graphrec.matrices import to_csr
from graphrec.nn.lightgcn import LightGCN, csr_rows, propagate, propagate_rows


def small_adj():
    rng = np.random.default_rng(0)
    train = to_csr(rng.integers(0, 30, 300), rng.integers(0, 40, 300), 30, 40)
    return normalized_adjacency(train, dtype=torch.float64)


def test_csr_rows_by_hand():
    m = torch.tensor([[0.0, 1, 2], [0, 0, 0], [3, 0, 4]]).to_sparse_csr()
    assert csr_rows(m, torch.tensor([2, 1, 0])).to_dense().tolist() == [[3, 0, 4], [0, 0, 0], [0, 1, 2]]


@pytest.mark.parametrize("layers", [0, 1, 2, 3])
@pytest.mark.parametrize("rows", [[0, 5, 31, 69], list(range(70))], ids=["few rows", "every row: the whole graph"])
def test_propagate_rows_is_the_rows_of_propagate_with_exact_gradients(layers, rows):
    adj = small_adj()
    emb = torch.randn(70, 4, dtype=torch.float64, requires_grad=True)
    alphas = torch.full((layers + 1,), 1.0 / (layers + 1), dtype=torch.float64)
    rows = torch.tensor(rows)
    torch.testing.assert_close(propagate_rows(adj, emb, alphas, rows), propagate(adj, emb, alphas)[rows])
    assert torch.autograd.gradcheck(lambda e: propagate_rows(adj, e, alphas, rows), (emb,))


def test_loss_and_gradients_equal_the_whole_graph_step():
    model = LightGCN(30, 40, small_adj(), dim=8, num_layers=3).double()
    users, pos, neg = torch.tensor([0, 1, 1, 5, 29]), torch.tensor([3, 3, 7, 0, 39]), torch.tensor([2, 8, 8, 1, 0])
    loss = model.loss(users, pos, neg)  # repeated users and items: their gradients add up
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    e0 = model.layer0_all()
    whole = model.bpr_with_reg(propagate(model.adj, e0, model.alphas), e0, users, pos, neg)
    whole.backward()
    torch.testing.assert_close(loss.detach(), whole.detach())
    for a, p in zip(grads, model.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad)


def fold_in_train():
    rng = np.random.default_rng(1)
    return to_csr(rng.integers(0, 30, 300), rng.integers(0, 40, 300), 30, 40)


@pytest.mark.parametrize("layers", [0, 1, 3])
@pytest.mark.parametrize("kind", ["lightgcn", "simgcl", "xsimgcl", "lightgcn+genres"])
def test_fold_in_of_a_trained_users_own_history_is_their_embedding(kind, layers):
    from graphrec.nn import SimGCL, XSimGCL

    train = fold_in_train()
    if kind == "simgcl" or kind == "xsimgcl":
        if layers == 0:
            pytest.skip("SimGCL needs a layer")
        model = (SimGCL if kind == "simgcl" else XSimGCL)(30, 40, normalized_adjacency(train, dtype=torch.float64),
                                                          dim=4, num_layers=layers).double()
    elif kind == "lightgcn+genres":  # item attribute nodes: 5 genres
        genres = to_csr(np.arange(40), np.arange(40) % 5, 40, 5)
        n = 30 + 40 + 5
        r = train.astype(np.float64)
        r.data[:] = 1
        full = sp.bmat([[None, r, None], [r.T, None, genres], [None, genres.T, None]], format="csr")
        deg = np.asarray(full.sum(1)).ravel()
        inv = 1 / np.sqrt(deg)
        norm = (sp.diags(inv) @ full @ sp.diags(inv)).tocsr()
        adj = torch.sparse_csr_tensor(torch.from_numpy(norm.indptr), torch.from_numpy(norm.indices),
                                      torch.from_numpy(norm.data), (n, n))
        model = LightGCN(30, 40, adj, dim=4, num_layers=layers, extra_nodes={"genre": 5}).double()
    else:
        model = LightGCN(30, 40, normalized_adjacency(train, dtype=torch.float64), dim=4, num_layers=layers).double()
    users, _ = model.get_embedding()
    state = model.fold_in_state()
    for u in (0, 7, 29):
        history = torch.from_numpy(train[u].indices.astype(np.int64))
        torch.testing.assert_close(model.fold_in(history, user=u, state=state), users[u])


def test_fold_in_by_hand_one_layer():
    # users 0, 1; items 0, 1: edges u0-i0, u1-i0, u1-i1. Degrees: u0 1, u1 2, i0 2, i1 1.
    train = to_csr(np.array([0, 1, 1]), np.array([0, 0, 1]), 2, 2)
    model = LightGCN(2, 2, normalized_adjacency(train, dtype=torch.float64), dim=2, num_layers=1).double()
    _, items0 = model.layer0()
    # a new user with items 0 and 1: |N'| = 2, so e = 0.5 * (i0 / sqrt(2 * 2) + i1 / sqrt(2 * 1)) (layer 0 zero)
    expected = 0.5 * (items0[0] / 2 + items0[1] / np.sqrt(2))
    torch.testing.assert_close(model.fold_in(torch.tensor([0, 1])), expected)
    # user 0 adds item 1: layer 0 kept, layer 1 over both items
    expected_u0 = 0.5 * model.layer0()[0][0] + 0.5 * (items0[0] / 2 + items0[1] / np.sqrt(2))
    torch.testing.assert_close(model.fold_in(torch.tensor([0, 1]), user=0), expected_u0)
