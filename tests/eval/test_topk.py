"""Ties are broken at random: a model that ties items scores as chance."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.eval import Evaluator, to_csr
from graphrec.eval.topk import topk
from graphrec.nn import MostPopular
from graphrec.rank import Recommender


class Constant(MostPopular):
    """The same score for every item."""

    def fit(self, train):  # type: ignore[no-untyped-def]
        self.popularity.fill_(1.0)
        return self


def test_distinct_scores_keep_their_order_exactly():
    # neighbours one float32 step apart, negative and positive, and an excluded item
    a = torch.tensor(1.0)
    s = torch.tensor([[torch.nextafter(a, torch.tensor(2.0)), -2.0, 1.0, torch.nextafter(torch.tensor(-2.0), a), -torch.inf]])
    s = torch.cat([s, torch.tensor([[3.0, 3.0, 0.0, 0.0, 0.0]])])  # row 1 has ties: forces the random path
    values, idx = topk(s, 4, torch.Generator().manual_seed(0))
    assert idx[0].tolist() == [0, 2, 3, 1]
    assert values[0].tolist() == s[0, [0, 2, 3, 1]].tolist()
    assert sorted(idx[1, :2].tolist()) == [0, 1] and values[1].tolist() == [3.0, 3.0, 0.0, 0.0]


def test_ties_at_the_boundary_are_uniform():
    # items 0..3 tie for 2 places: each is chosen half the time; item 4 is always first
    s = torch.tensor([[1.0, 1.0, 1.0, 1.0, 2.0]]).expand(4000, -1)
    idx = topk(s, 3, torch.Generator().manual_seed(1))[1]
    assert (idx[:, 0] == 4).all()
    share = torch.bincount(idx[:, 1:].reshape(-1), minlength=5)[:4].float() / 4000
    assert torch.allclose(share, torch.full((4,), 0.5), atol=0.04)  # sd of each share ~0.008


def test_constant_model_scores_exactly_what_chance_would():
    # relevant items are the low indices, where torch.topk's own tie order looks first
    n_users, n_items, k = 200, 100, 10
    truth = to_csr(np.repeat(np.arange(n_users), 5), np.tile(np.arange(5), n_users), n_users, n_items)
    model = Constant(n_users, n_items).fit(truth)
    recall = Evaluator(truth, ks=(k,), metrics=("recall",)).evaluate(model)["recall@10"]
    # E[hits] = k * 5 / 100 per user: recall 0.1; hypergeometric sd of the mean ~ 0.0075
    assert recall == pytest.approx(0.1, abs=0.03)


def _chance_recall(truth: sp.csr_matrix, exclude: sp.csr_matrix, k: int) -> tuple[float, float]:
    """Mean and standard error of Recall@k under a uniformly random ranking of each user's candidates."""
    users = np.flatnonzero(np.diff(truth.indptr))
    n_rel = np.diff(truth.indptr)[users].astype(float)
    n_cand = truth.shape[1] - np.diff(exclude.indptr)[users]
    mean = np.minimum(k, n_cand) / n_cand
    m = np.minimum(k, n_cand)
    var_hits = m * (n_rel / n_cand) * (1 - n_rel / n_cand) * (n_cand - m) / np.maximum(n_cand - 1, 1)  # hypergeometric
    return float(mean.mean()), float(np.sqrt((var_hits / n_rel**2).sum()) / len(users))


@pytest.mark.slow
def test_constant_model_on_ml100k_is_chance(ml100k):
    """The seed-2020 80/10/10 split: topk's own tie order gave 0.0449 against 0.0127 expected."""
    from graphrec.data import random_split

    split = random_split(ml100k, (0.8, 0.1, 0.1), seed=2020)
    part = {p: split.part(p) for p in ("train", "valid", "test")}
    csr = {p: to_csr(v.user, v.item, ml100k.num_users, ml100k.num_items) for p, v in part.items()}
    seen = (csr["train"] + csr["valid"]).tocsr()
    seen.data[:] = 1
    model = Constant(ml100k.num_users, ml100k.num_items).fit(csr["train"])
    got = Evaluator(csr["test"], seen, ks=(20,), metrics=("recall",)).evaluate(model)["recall@20"]
    mean, se = _chance_recall(csr["test"], seen, 20)
    assert mean == pytest.approx(0.0127, abs=5e-4)
    assert abs(got - mean) < 4 * se, (got, mean, se)


def test_most_popular_with_tied_counts_is_chance_within_ties():
    # counts: item 0 has 3, items 1..6 have 1 each, items 7..9 none. Top-3 of a user who has none of them:
    # item 0, then 2 of the 6 tied items at random.
    rng = np.random.default_rng(0)
    train = to_csr(np.array([0, 1, 2, 3, 4, 5, 6, 7, 8]), np.array([0, 0, 0, 1, 2, 3, 4, 5, 6]), 3000, 10)
    users = np.arange(9, 3000)
    rel = rng.integers(1, 3, size=len(users))  # item 1 or 2: the low indices among the tied ones
    truth = to_csr(users, rel, 3000, 10)
    model = MostPopular(3000, 10).fit(train)
    recall = Evaluator(truth, train, ks=(3,), metrics=("recall",)).evaluate(model)["recall@3"]
    # each tied item makes the list with probability 2/6; sd of the mean ~ 0.0086
    assert recall == pytest.approx(1 / 3, abs=0.035)


def test_recommender_breaks_ties_at_random_and_reproducibly():
    from graphrec.data import Vocabulary

    model = Constant(1, 50).fit(None)
    users, items = Vocabulary([7], "user"), Vocabulary(list(range(50)), "item")
    firsts = [Recommender(model, users, items, seed=s).recommend(7, k=5)[0][0] for s in range(300)]
    counts = np.bincount(np.array(firsts, dtype=np.int64), minlength=50)
    assert (counts > 0).sum() >= 45 and counts.max() <= 20  # ~6 each: uniform over the 50 tied items
    rec = Recommender(model, users, items, seed=3)
    assert rec.recommend(7, k=5)[0].tolist() == rec.recommend(7, k=5)[0].tolist()  # the same request, the same list
