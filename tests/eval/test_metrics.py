"""Metrics against hand-worked values and against RecBole's published definitions."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graphrec.eval import METRICS, Evaluator, average_precision, hit_rate, mrr, ndcg, precision, recall, to_csr
from graphrec.eval.beyond import coverage, intra_list_diversity, mean_popularity, novelty
from graphrec.nn import MostPopular

HITS = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]])
N_REL = torch.tensor([2, 3, 1])


def test_hand_worked_values_at_4():
    torch.testing.assert_close(recall(HITS, N_REL, 4), torch.tensor([1.0, 1 / 3, 0.0]))
    torch.testing.assert_close(precision(HITS, N_REL, 4), torch.tensor([0.5, 0.25, 0.0]))
    torch.testing.assert_close(hit_rate(HITS, N_REL, 4), torch.tensor([1.0, 1.0, 0.0]))
    torch.testing.assert_close(mrr(HITS, N_REL, 4), torch.tensor([1.0, 0.25, 0.0]))
    # user 0: DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3)
    # user 1: DCG = 1/log2(5); IDCG = 1 + 1/log2(3) + 1/log2(4)
    expected = torch.tensor([1.5 / (1 + 1 / math.log2(3)), (1 / math.log2(5)) / (1.5 + 1 / math.log2(3)), 0.0])
    torch.testing.assert_close(ndcg(HITS, N_REL, 4), expected)
    # user 0: (P@1 + P@3) / min(2, 4) = (1 + 2/3) / 2; user 1: P@4 / 3 = (1/4) / 3
    torch.testing.assert_close(average_precision(HITS, N_REL, 4), torch.tensor([5 / 6, 1 / 12, 0.0]))


def test_cutoff():
    torch.testing.assert_close(recall(HITS, N_REL, 1), torch.tensor([0.5, 0.0, 0.0]))
    # k=1: ideal list holds min(n, 1) = 1 item
    torch.testing.assert_close(ndcg(HITS, N_REL, 1), torch.tensor([1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="k must be"):
        recall(HITS, N_REL, 5)


# --- RecBole's definitions (recbole/evaluator/metrics.py), written out with loops ---

def recbole_reference(pos_index: np.ndarray, pos_len: np.ndarray) -> dict[str, np.ndarray]:
    k = pos_index.shape[1]
    ranks = np.arange(1, k + 1)
    out = {
        "recall": np.cumsum(pos_index, 1) / pos_len[:, None],
        "precision": np.cumsum(pos_index, 1) / ranks,
        "hit": (np.cumsum(pos_index, 1) > 0).astype(float),
    }
    mrr_ = np.zeros(pos_index.shape)
    for row in range(len(pos_index)):
        idx = pos_index[row].argmax()
        if pos_index[row, idx] > 0:
            mrr_[row, idx:] = 1 / (idx + 1)
    out["mrr"] = mrr_
    idcg_len = np.minimum(pos_len, k)
    idcg = np.cumsum(1.0 / np.log2(ranks + 1)) * np.ones((len(pos_len), 1))
    for row, n in enumerate(idcg_len):
        idcg[row, n:] = idcg[row, n - 1]
    dcg = np.cumsum(np.where(pos_index, 1.0 / np.log2(ranks + 1), 0), 1)
    out["ndcg"] = dcg / idcg
    pre = np.cumsum(pos_index, 1) / ranks
    sum_pre = np.cumsum(pre * pos_index, 1)
    ap = np.zeros(pos_index.shape)
    for row, n in enumerate(idcg_len):
        r = ranks.copy()
        r[n:] = r[n - 1]
        ap[row] = sum_pre[row] / r
    out["map"] = ap
    return out


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 8), st.integers(1, 10), st.data())
def test_matches_recbole_definitions(users, k, data):
    pos = np.array(data.draw(st.lists(st.lists(st.booleans(), min_size=k, max_size=k), min_size=users, max_size=users)))
    n_rel = np.array([data.draw(st.integers(max(1, int(row.sum())), 12)) for row in pos])
    ref = recbole_reference(pos.astype(float), n_rel)
    hits, n = torch.from_numpy(pos), torch.from_numpy(n_rel)
    for name, fn in METRICS.items():
        for cut in range(1, k + 1):
            np.testing.assert_allclose(fn(hits, n, cut).numpy(), ref[name][:, cut - 1], rtol=1e-5, atol=1e-6, err_msg=f"{name}@{cut}")


def test_evaluator_full_ranking_excludes_history():
    # 2 users, 4 items; popularity 4 > 3 > 2 > 1 (train counts set via fit)
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 0]], dtype=np.float32))
    model = MostPopular(2, 4)
    model.popularity.copy_(torch.tensor([4.0, 3.0, 2.0, 1.0]))
    truth = to_csr(np.array([0, 1]), np.array([3, 1]), 2, 4)
    ev = Evaluator(truth, exclude=train, ks=(1, 2))
    res = ev.rank(model)
    np.testing.assert_array_equal(res.top_items, [[2, 3], [1, 2]])  # seen items never ranked
    m = ev.evaluate(model)
    assert m["recall@1"] == pytest.approx(0.5) and m["recall@2"] == pytest.approx(1.0)
    assert m["mrr@2"] == pytest.approx((0.5 + 1.0) / 2)


def test_candidates_rank_and_count_only_themselves():
    # 1 user, 5 items, candidates 3 and 4; the truth holds item 0 (not a candidate) and item 4
    model = MostPopular(1, 5)
    model.popularity.copy_(torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0]))
    truth = to_csr(np.array([0, 0]), np.array([0, 4]), 1, 5)
    ev = Evaluator(truth, ks=(3,), candidates=np.array([False, False, False, True, True]))
    res = ev.rank(model)
    np.testing.assert_array_equal(res.top_items[0, :2], [3, 4])  # the two candidates, then unlisted -inf filler
    np.testing.assert_array_equal(res.hits, [[False, True, False]])  # item 0 in the filler is no hit
    np.testing.assert_array_equal(res.n_relevant, [1])  # item 0 cannot be listed: not in the denominator
    m = ev.evaluate(model)
    assert m["recall@3"] == pytest.approx(1.0) and m["precision@3"] == pytest.approx(1 / 3)
    np.testing.assert_array_equal(res.listed, [[True, True, False]])
    # beyond accuracy counts the listed items only: the filler is no recommendation
    pop = np.array([9.0, 9.0, 9.0, 1.0, 3.0])
    full = Evaluator(truth, ks=(3,), candidates=np.array([False, False, False, True, True]), item_popularity=pop,
                     item_features=torch.eye(5)).evaluate(model, beyond=True)
    assert full["coverage@3"] == pytest.approx(2 / 5) and full["popularity@3"] == pytest.approx(2.0)
    assert math.isnan(full["diversity@3"])  # no whole list of 3 to measure
    # a user whose relevant items are all outside the candidates is not evaluated
    assert len(Evaluator(to_csr(np.array([0]), np.array([0]), 1, 5), ks=(3,),
                         candidates=np.array([False, False, False, True, True])).users) == 0


def test_users_without_truth_are_not_evaluated():
    truth = to_csr(np.array([1]), np.array([0]), 3, 2)
    ev = Evaluator(truth, ks=(1,))
    np.testing.assert_array_equal(ev.users, [1])


def test_beyond_accuracy_closed_forms():
    top = np.array([[0, 1], [0, 2]])
    assert coverage(top, 4) == 0.75
    pop = np.array([3.0, 1.0, 0.0, 5.0])
    assert mean_popularity(top, pop) == pytest.approx((3 + 1 + 3 + 0) / 4)
    # p = (count + 1) / (num_users + 1) with 3 users
    expected = np.mean([-math.log2(4 / 4), -math.log2(2 / 4), -math.log2(4 / 4), -math.log2(1 / 4)])
    assert novelty(top, pop, 3) == pytest.approx(expected)
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    # list 1: orthogonal -> distance 1; list 2: identical -> 0
    assert intra_list_diversity(top, feats) == pytest.approx(0.5)


def test_beyond_in_evaluator():
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=np.float32))
    truth = to_csr(np.array([0, 1, 2]), np.array([3, 3, 1]), 3, 4)
    pop = np.asarray(train.sum(0)).ravel()
    model = MostPopular(3, 4)
    model.popularity.copy_(torch.tensor([3.0, 1.0, 0.0, 0.5]))  # hand-set scores
    ev = Evaluator(truth, train, ks=(2,), item_popularity=pop, user_activity=np.asarray(train.sum(1)).ravel())
    m = ev.evaluate(model, beyond=True)
    # lists: user 0 [1, 3], user 1 [3, 2], user 2 [1, 3]
    assert m["coverage@2"] == pytest.approx(3 / 4)
    assert m["recall@2"] == pytest.approx(1.0)
    assert m["cold_items_in_truth"] == 2.0  # item 3 has no train interaction, relevant for users 0 and 1
    assert m["recall@2[cold-items]"] == pytest.approx(1.0)
    assert "recall@2[high-activity]" in m


def test_activity_buckets_hold_the_users_they_name():
    from graphrec.eval.beyond import beyond_accuracy

    # 6 users, activity 0, 0, 0, 0, 5, 9: the 1/3 and 2/3 quantiles are 0 and 1.67
    activity = np.array([0, 0, 0, 0, 5, 9])
    truth = to_csr(np.arange(6), np.zeros(6, dtype=np.int64), 6, 2)
    model = MostPopular(6, 2)
    model.popularity.copy_(torch.tensor([1.0, 0.0]))  # every user's top-1 is the relevant item 0
    ev = Evaluator(truth, ks=(1,), user_activity=activity)
    out = beyond_accuracy(ev.rank(model), ev)
    assert out["recall@1[low-activity]"] == 1.0 and out["recall@1[high-activity]"] == 1.0
    assert "recall@1[mid-activity]" not in out  # nobody between: users without activity were reported as mid
    ev.user_activity = np.array([1, 2, 3, 4, 5, 6])
    out = beyond_accuracy(ev.rank(model), ev)
    assert {"recall@1[low-activity]", "recall@1[mid-activity]", "recall@1[high-activity]"} <= set(out)
