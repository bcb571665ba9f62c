"""LightGCN's training step on the batch's rows: the same loss and gradients as the whole propagation."""

import numpy as np
import pytest
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
