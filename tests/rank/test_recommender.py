import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.data import Vocabulary
from graphrec.errors import ConfigError, UnknownIdError
from graphrec.nn import MFBPR, MostPopular
from graphrec.rank import Recommender, mmr

ITEMS = Vocabulary(["a", "b", "c", "d", "e"], "item")
USERS = Vocabulary([10, 20], "user")
SEEN = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=np.float32))


def popular():
    m = MostPopular(2, 5)
    m.popularity.copy_(torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0]))  # hand-set: a > b > c > d > e
    return m


def test_excludes_seen_and_honours_candidates_and_exclude():
    rec = Recommender(popular(), USERS, ITEMS, SEEN)
    assert rec.recommend(10, k=2)[0].tolist() == ["b", "c"]
    assert rec.recommend(10, k=2, exclude_seen=False)[0].tolist() == ["a", "b"]
    assert rec.recommend(20, k=2, candidates=["e", "c", "d"])[0].tolist() == ["c", "d"]
    assert rec.recommend(20, k=2, exclude=["a", "c"])[0].tolist() == ["b", "d"]
    ids, scores = rec.recommend(20, k=4, candidates=["e", "d"])
    assert ids.tolist() == ["d", "e", None, None] and np.isneginf(scores[2:]).all()
    batch_ids, batch_scores = rec.recommend([10, 20], k=1)
    assert batch_ids.tolist() == [["b"], ["a"]] and batch_scores.tolist() == [[4.0], [5.0]]


def test_unknown_ids_raise():
    rec = Recommender(popular(), USERS, ITEMS, SEEN)
    with pytest.raises(UnknownIdError, match="unknown user id"):
        rec.recommend(30, k=2)
    with pytest.raises(UnknownIdError, match=r"unknown item id.*'z'"):
        rec.recommend(10, k=2, candidates=["a", "z"])
    with pytest.raises(UnknownIdError, match="unknown item id"):
        rec.recommend(10, k=2, exclude=["z"])
    with pytest.raises(UnknownIdError, match="unknown item id"):
        rec.recommend_for_history(["z"], k=2)
    with pytest.raises(ValueError, match="k must be"):
        rec.recommend(10, k=6)


def test_mmr_hand_worked():
    scores = torch.tensor([1.0, 0.9, 0.5])
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # 0 and 1 identical, 2 orthogonal
    assert mmr(scores, x, 3, 0.0).tolist() == [0, 1, 2]
    # λ = 0.5: after 0, item 1 is worth 0.5*0.8 - 0.5*1 = -0.1, item 2 is 0.5*0 - 0 = 0 -> 2 first
    assert mmr(scores, x, 3, 0.5).tolist() == [0, 2, 1]
    with pytest.raises(ValueError, match="diversity"):
        mmr(scores, x, 2, 1.5)


def test_diversity_reranks_with_features():
    feats = torch.tensor([[1.0, 0.0], [1.0, 0.01], [1.0, 0.02], [0.0, 1.0], [0.1, 1.0]])
    rec = Recommender(popular(), USERS, ITEMS, SEEN, item_features=feats)
    assert rec.recommend(20, k=2)[0].tolist() == ["a", "b"]
    assert rec.recommend(20, k=2, diversity=0.7)[0].tolist() == ["a", "d"]
    with pytest.raises(ConfigError, match="item_features"):
        Recommender(popular(), USERS, ITEMS, SEEN).recommend(20, k=2, diversity=0.5)


def test_fold_in_new_user_from_history():
    torch.manual_seed(0)
    m = MFBPR(2, 5, dim=3)
    rec = Recommender(m, USERS, ITEMS, SEEN)
    ids, scores = rec.recommend_for_history(["a", "c"], k=3)
    assert "a" not in ids.tolist() and "c" not in ids.tolist()
    item_emb = m.item_emb.weight.detach()
    expected = item_emb @ item_emb[[0, 2]].mean(0)  # fold-in: mean of the history's item embeddings
    expected[[0, 2]] = -torch.inf
    top = torch.topk(expected, 3)
    assert ids.tolist() == [ITEMS.ids[i] for i in top.indices.tolist()]
    np.testing.assert_allclose(scores, top.values.numpy(), rtol=1e-6)
