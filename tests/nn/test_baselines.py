import io

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.nn import ItemKNN
from graphrec.nn.baselines import topk_cosine

# users 0-2 over items 0-2: u0 {0, 1}, u1 {0, 1, 2}, u2 {2}. Every item has 2 users, so with shrink 1
# sim(i, j) = co(i, j) / (sqrt(2) sqrt(2) + 1): sim(0, 1) = 2/3, sim(0, 2) = sim(1, 2) = 1/3.
HAND = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=np.float32))


def dense_reference(r, k, shrink):
    """Today's dense ItemKNN, ties (in float32) to the lower item index: (scores [U, I], sim_k [I, I])."""
    r = (r.toarray() > 0).astype(np.float64)
    norms = np.sqrt(r.sum(0))
    sim = ((r.T @ r) / (np.outer(norms, norms) + shrink + 1e-12)).astype(np.float32).astype(np.float64)
    np.fill_diagonal(sim, 0.0)
    keep = np.zeros_like(sim, dtype=bool)
    np.put_along_axis(keep, np.argsort(-sim, axis=1, kind="stable")[:, :k], True, axis=1)
    sim_k = np.where(keep, sim, 0.0)
    return r @ sim_k.T, sim_k


def dense_sim(model):
    return torch.sparse_csr_tensor(model.sim_indptr, model.sim_indices, model.sim_values, (model.num_items,) * 2,
                                   check_invariants=True).to_dense()


def test_hand_example_k1_keeps_the_lower_index_on_a_tie():
    m = ItemKNN(3, 3, k=1, shrink=1.0).fit(HAND)
    # item 2's neighbours 0 and 1 tie at 1/3: item 0 is kept
    assert m.sim_indptr.tolist() == [0, 1, 2, 3]
    assert m.sim_indices.tolist() == [1, 0, 0]
    torch.testing.assert_close(m.sim_values, torch.tensor([2 / 3, 2 / 3, 1 / 3]))
    # s(u, i) = Σ_j r_uj sim_k(i, j)
    torch.testing.assert_close(m.score_all(torch.arange(3)),
                               torch.tensor([[2 / 3, 2 / 3, 1 / 3], [2 / 3, 2 / 3, 1 / 3], [0.0, 0.0, 0.0]]))
    torch.testing.assert_close(m.score_history(torch.tensor([0])), torch.tensor([0.0, 2 / 3, 1 / 3]))


def test_hand_example_k2():
    m = ItemKNN(3, 3, k=2, shrink=1.0).fit(HAND)
    torch.testing.assert_close(dense_sim(m), torch.tensor([[0.0, 2 / 3, 1 / 3], [2 / 3, 0.0, 1 / 3], [1 / 3, 1 / 3, 0.0]]))
    torch.testing.assert_close(m.score_all(torch.tensor([2, 0, 1])),
                               torch.tensor([[1 / 3, 1 / 3, 0.0], [2 / 3, 2 / 3, 2 / 3], [1.0, 1.0, 2 / 3]]))
    torch.testing.assert_close(m(torch.tensor([1, 2]), torch.tensor([2, 0])), torch.tensor([2 / 3, 1 / 3]))
    torch.testing.assert_close(m.score_history(torch.tensor([2, 2])), torch.tensor([2 / 3, 2 / 3, 0.0]))  # twice counts twice


@pytest.mark.parametrize("k", [1, 3, 100])
@pytest.mark.parametrize("shrink", [0.0, 2.5])
def test_matches_dense_reference_on_a_random_matrix(k, shrink):
    r = sp.random(30, 40, density=0.15, random_state=0, format="csr")  # with empty users and items
    scores, sim_k = dense_reference(r, k, shrink)
    m = ItemKNN(30, 40, k=k, shrink=shrink).fit(r)
    torch.testing.assert_close(dense_sim(m), torch.from_numpy(sim_k).float())
    torch.testing.assert_close(m.score_all(torch.arange(30)), torch.from_numpy(scores).float())
    torch.testing.assert_close(m.score_history(torch.tensor([3, 7, 7])), torch.from_numpy(sim_k[:, [3, 7, 7]].sum(1)).float())
    assert (np.diff(m.sim_indptr.numpy()) <= k).all()


def test_blocks_give_the_same_neighbours_as_one_block():
    r = sp.random(30, 40, density=0.15, random_state=1, format="csr")
    r.data[:] = 1.0
    whole = topk_cosine(r, 3, 1.0)
    for got, want in zip(topk_cosine(r, 3, 1.0, block_products=1), whole, strict=True):  # one item per block
        np.testing.assert_array_equal(got, want)


def test_state_dict_grows_with_nonzeros_not_items_squared():
    def numel(num_items):
        # three users with two items each: every used item has one neighbour
        r = sp.csr_matrix((np.ones(6, dtype=np.float32), ([0, 0, 1, 1, 2, 2], [0, 1, 2, 3, 4, 5])), shape=(3, num_items))
        state = ItemKNN(3, num_items, k=10).fit(r).state_dict()
        return {name: t.numel() for name, t in state.items()}

    # (I + 1) + 6 + 6 + (U + 1) + 6, where the dense format had I² + U I entries
    assert numel(2000) == {"sim_indptr": 2001, "sim_indices": 6, "sim_values": 6, "history_indptr": 4, "history_indices": 6}
    assert sum(numel(4000).values()) == 4023


def test_unfitted_model_loads_a_fitted_state_dict():
    r = sp.random(30, 40, density=0.15, random_state=0, format="csr")
    fitted = ItemKNN(30, 40, k=3).fit(r)
    buf = io.BytesIO()
    torch.save(fitted.state_dict(), buf)
    buf.seek(0)
    fresh = ItemKNN(30, 40, k=3)
    torch.testing.assert_close(fresh.score_all(torch.arange(30)), torch.zeros(30, 40))  # unfitted: no neighbours
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(fresh.score_all(torch.arange(30)), fitted.score_all(torch.arange(30)))
    with pytest.raises(RuntimeError, match="size mismatch for sim_indptr"):
        ItemKNN(30, 41, k=3).load_state_dict(fitted.state_dict())
    broken = {**fitted.state_dict(), "history_indices": fitted.history_indices[:-1]}
    with pytest.raises(RuntimeError, match=r"history_indptr, history_indices: indptr ends at \d+, but there are \d+ indices"):
        ItemKNN(30, 40, k=3).load_state_dict(broken)
    out_of_range = {**fitted.state_dict(), "sim_indices": torch.full_like(fitted.sim_indices, 40)}
    with pytest.raises(RuntimeError, match=r"sim_indices: indices must lie in \[0, 40\), found \[40, 40\]"):
        ItemKNN(30, 40, k=3).load_state_dict(out_of_range)


def test_loads_a_dense_state_dict_of_the_previous_format():
    _, sim_k = dense_reference(HAND, 2, 1.0)
    m = ItemKNN(3, 3, k=2, shrink=1.0)
    m.load_state_dict({"sim": torch.from_numpy(sim_k).float(), "history": torch.from_numpy(HAND.toarray())})
    torch.testing.assert_close(m.score_all(torch.tensor([2])), torch.tensor([[1 / 3, 1 / 3, 0.0]]))


def test_bad_arguments():
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        ItemKNN(3, 3, k=0)
    with pytest.raises(ValueError, match="shrink must be >= 0, got -1"):
        ItemKNN(3, 3, shrink=-1.0)
    with pytest.raises(ValueError, match=r"ItemKNN.fit: train matrix is \(3, 4\), expected \(3, 3\)"):
        ItemKNN(3, 3).fit(sp.csr_matrix((3, 4)))
