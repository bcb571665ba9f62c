import pytest
import torch

from graphrec.nn import LightGCN, XSimGCL, spmm
from graphrec.nn.spmm import ColumnBlocks, cache_sized
from tests.train.resume_script import data


def dense_to_csr(rows):
    return torch.tensor(rows, dtype=torch.float32).to_sparse_csr()


def test_column_blocks_by_hand():
    adj = dense_to_csr([[1, 0, 2, 0, 3],
                        [0, 4, 0, 0, 0],
                        [0, 0, 0, 5, 6]])
    blocks = ColumnBlocks(adj, width=2)  # columns 0-1, 2-3, 4
    assert [(lo, hi) for lo, hi, _ in blocks.blocks] == [(0, 2), (2, 4), (4, 5)]
    assert blocks.blocks[1][2].to_dense().tolist() == [[2, 0], [0, 0], [0, 5]]
    h = torch.arange(10, dtype=torch.float32).view(5, 2)  # rows [0,1], [2,3], [4,5], [6,7], [8,9]
    assert (blocks @ h).tolist() == [[1 * 0 + 2 * 4 + 3 * 8, 1 * 1 + 2 * 5 + 3 * 9], [4 * 2, 4 * 3],
                                     [5 * 6 + 6 * 8, 5 * 7 + 6 * 9]]


def test_column_blocks_keep_int32_indices_and_multiply_an_empty_matrix():
    blocks = ColumnBlocks(dense_to_csr([[1, 2, 3]]), width=2)
    assert {b.col_indices().dtype for _, _, b in blocks.blocks} == {torch.int32}
    assert (blocks @ torch.ones(3, 2)).tolist() == [[6, 6]]
    empty = ColumnBlocks(torch.zeros(2, 0).to_sparse_csr(), width=2)
    assert (empty @ torch.ones(0, 3)).tolist() == [[0, 0, 0], [0, 0, 0]]


def test_column_blocks_refuse_what_they_cannot_multiply():
    with pytest.raises(ValueError, match="sparse CSR"):
        ColumnBlocks(torch.eye(3), 2)
    with pytest.raises(ValueError, match=r"shape mismatch: \[3, 3\] @ \[2, 1\]"):
        ColumnBlocks(torch.eye(3).to_sparse_csr(), 2) @ torch.ones(2, 1)


def test_cache_sized_cuts_only_an_operand_larger_than_a_block():
    adj = torch.eye(100).to_sparse_csr()
    assert cache_sized(adj, 8, block_bytes=100 * 8 * 4) is adj  # fits in one block
    blocks = cache_sized(adj, 8, block_bytes=100 * 8 * 4 - 1)
    assert isinstance(blocks, ColumnBlocks) and [hi - lo for lo, hi, _ in blocks.blocks] == [50, 50]  # balanced
    coo = adj.to_sparse_coo()
    assert cache_sized(coo, 8, block_bytes=1) is coo  # another layout: kept as it is
    assert torch.allclose(cache_sized(adj, 8, block_bytes=64) @ torch.ones(100, 8), torch.ones(100, 8))


@pytest.mark.parametrize("model", ["lightgcn", "xsimgcl"])
def test_models_train_alike_with_blocks(monkeypatch, model):
    """The same embeddings and gradients whether the propagation multiplies by the matrix or by its blocks."""
    from graphrec.graph import normalized_adjacency

    train, _ = data()
    adj = normalized_adjacency(train).to_sparse_csr()
    users, pos, neg = torch.tensor([0, 5, 9]), torch.tensor([1, 2, 3]), torch.tensor([7, 8, 9])
    results = []
    for block_bytes in (1 << 30, 17 * 16 * 4):  # one block (the plain product), then 9 blocks of 17 nodes
        monkeypatch.setattr(spmm, "BLOCK_BYTES", block_bytes)
        torch.manual_seed(0)
        m = (LightGCN(60, 80, adj, dim=16, num_layers=2) if model == "lightgcn"
             else XSimGCL(60, 80, adj, dim=16, num_layers=2, seed=7))
        loss = m.loss(users, pos, neg)
        loss.backward()
        results.append((m.product(), loss.detach(), m.user_emb.weight.grad.clone(), m.get_embedding()[1].detach()))
    (plain, *a), (blocks, *b) = results
    assert plain is adj and isinstance(blocks, ColumnBlocks) and len(blocks.blocks) == 9
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=1e-5)


def test_a_model_drops_its_blocks_when_it_moves(monkeypatch):
    from graphrec.graph import normalized_adjacency

    monkeypatch.setattr(spmm, "BLOCK_BYTES", 64)
    train, _ = data()
    m = LightGCN(60, 80, normalized_adjacency(train).to_sparse_csr(), dim=16, num_layers=2)
    blocks = m.product()
    assert m.product() is blocks  # built once
    m.to("cpu")
    assert "_product" not in m.__dict__ and m.product() is not blocks
