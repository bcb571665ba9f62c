import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphrec.data import Dataset, Interactions, Split, Vocabulary, leave_one_out, random_split, temporal_split
from graphrec.errors import GraphrecError

from .helpers import make_dataset


def test_random_split_sizes_follow_recbole_rule():
    # user 0: 10 interactions -> 8/1/1; user 1: 5 -> floor(0.5)=0, bumped to 1 each -> 3/1/1
    users = [0] * 10 + [1] * 5
    items = list(range(10)) + list(range(5))
    s = random_split(make_dataset(users, items), (0.8, 0.1, 0.1), seed=1)
    u = s.dataset.interactions.user
    assert [int((u[s.train] == k).sum()) for k in (0, 1)] == [8, 3]
    assert [int((u[s.valid] == k).sum()) for k in (0, 1)] == [1, 1]
    assert [int((u[s.test] == k).sum()) for k in (0, 1)] == [1, 1]


def test_ml100k_random_split_sizes(ml100k):
    s = random_split(ml100k, (0.8, 0.1, 0.1), seed=2020)
    n = np.bincount(ml100k.interactions.user)
    assert len(s.valid) == len(s.test) == int(np.floor(0.1 * n).sum())
    assert len(s.train) + len(s.valid) + len(s.test) == 100_000


def test_temporal_split_global():
    ds = make_dataset([0, 1, 0, 1, 0, 1, 0, 1, 0, 1], list(range(10)), timestamps=[9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    s = temporal_split(ds, (0.8, 0.1, 0.1))
    np.testing.assert_array_equal(s.test, [0])  # the newest
    np.testing.assert_array_equal(s.valid, [1])
    assert ds.interactions.timestamp[s.train].max() < ds.interactions.timestamp[s.valid].min()


def test_user_temporal_split():
    ds = make_dataset([0] * 10, list(range(10)), timestamps=list(range(10, 0, -1)))
    s = temporal_split(ds, (0.8, 0.1, 0.1), per_user=True)
    # positions 0..9 have timestamps 10..1: the newest (position 0) is test, the next valid
    np.testing.assert_array_equal(s.test, [0])
    np.testing.assert_array_equal(s.valid, [1])
    np.testing.assert_array_equal(s.train, np.arange(2, 10))


def test_leave_one_out():
    ds = make_dataset([0, 0, 0, 1, 1, 2], [0, 1, 2, 0, 1, 0], timestamps=[3, 1, 2, 5, 4, 1])
    s = leave_one_out(ds)
    np.testing.assert_array_equal(s.test, [0, 3])  # user 0's t=3, user 1's t=5
    np.testing.assert_array_equal(s.valid, [2])  # user 0's t=2; user 1 has only two
    np.testing.assert_array_equal(s.train, [1, 4, 5])


def test_cold_start_counted_not_dropped():
    ds = make_dataset([0, 0, 1], [0, 1, 2], timestamps=[1, 2, 3])
    s = Split(ds, np.array([0]), np.array([1]), np.array([2]), "hand")
    st_ = s.stats()
    assert st_.cold_users == {"valid": 0, "test": 1}
    assert st_.cold_items == {"valid": 1, "test": 1}
    assert st_.cold_interactions == {"valid": 1, "test": 1}


def test_split_refuses_overlap_and_duplicate_pairs():
    ds = make_dataset([0, 0], [0, 1])
    with pytest.raises(ValueError, match="overlap"):
        Split(ds, np.array([0, 1]), np.array([1]), np.array([], dtype=np.int64), "bad")
    with pytest.raises(ValueError, match="overlap at 1 interactions"):  # twice in one part
        Split(ds, np.array([0, 0]), np.array([1]), np.array([], dtype=np.int64), "bad")
    dup = make_dataset([0, 0, 0], [0, 0, 1])
    with pytest.raises(GraphrecError, match="drop_duplicates"):
        random_split(dup)
    with pytest.raises(ValueError, match="also in train"):
        Split(dup, np.array([0]), np.array([], dtype=np.int64), np.array([1]), "leaky")


def test_export_tsv(tmp_path):
    ds = make_dataset([0, 0, 1], [0, 1, 1], timestamps=[7, 8, 9])
    s = Split(ds, np.array([0, 2]), np.array([], dtype=np.int64), np.array([1]), "hand")
    paths = s.export_tsv(tmp_path)
    assert paths["train"].read_text() == "user\titem\ttimestamp\n100\t1000\t7\n101\t1001\t9\n"
    assert paths["valid"].read_text() == "user\titem\ttimestamp\n"
    assert paths["test"].read_text() == "user\titem\ttimestamp\n100\t1001\t8\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.tsv", "train.tsv", "valid.tsv"]


logs = st.integers(min_value=1, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 7), min_size=n, max_size=n),
        st.lists(st.integers(0, 11), min_size=n, max_size=n),
        st.lists(st.integers(0, 1000), min_size=n, max_size=n),
    )
)


def unique_pairs(users, items, ts):
    seen, out = set(), ([], [], [])
    for u, i, t in zip(users, items, ts, strict=False):
        if (u, i) not in seen:
            seen.add((u, i))
            out[0].append(u), out[1].append(i), out[2].append(t)
    return out


@settings(max_examples=60, deadline=None)
@given(logs, st.integers(0, 2**32 - 1), st.sampled_from(["random", "random-global", "temporal", "user-temporal", "loo"]))
def test_split_invariants(log, seed, method):
    users, items, ts = unique_pairs(*log)
    ds = make_dataset(users, items, timestamps=ts, num_users=8, num_items=12)
    make = {
        "random": lambda: random_split(ds, (0.7, 0.15, 0.15), seed=seed),
        "random-global": lambda: random_split(ds, (0.7, 0.15, 0.15), seed=seed, shuffle="global"),
        "temporal": lambda: temporal_split(ds, (0.7, 0.15, 0.15)),
        "user-temporal": lambda: temporal_split(ds, (0.7, 0.15, 0.15), per_user=True),
        "loo": lambda: leave_one_out(ds),
    }[method]
    s = make()
    parts = [set(s.train.tolist()), set(s.valid.tolist()), set(s.test.tolist())]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert set().union(*parts) == set(range(len(ds)))  # nothing dropped
    pairs = lambda pos: {(int(ds.interactions.user[p]), int(ds.interactions.item[p])) for p in pos}  # noqa: E731
    assert not pairs(s.train) & (pairs(s.valid) | pairs(s.test))
    again = make()
    np.testing.assert_array_equal(again.test, s.test)  # same seed, same split
    if method != "loo":
        u = ds.interactions.user
        for k in range(8):
            n = int((u == k).sum())
            if n:
                assert int((u[s.train] == k).sum()) >= 1 or method == "temporal"


def test_different_seed_different_split(ml100k):
    a, b = random_split(ml100k, seed=1), random_split(ml100k, seed=2)
    assert not np.array_equal(a.test, b.test)
    np.testing.assert_array_equal(random_split(ml100k, seed=1).test, a.test)


def test_the_global_shuffle_is_the_split_of_the_recorded_figures(ml100k):
    """shuffle="global" is, entry for entry, the split every figure before 2026-12-07 was measured on: one
    permutation of the log, regrouped by user in its order, each user's last floor(10%) test, the 10% before
    valid (ML-100K users have >= 20 interactions: no share rounds to zero)."""
    s = random_split(ml100k, (0.8, 0.1, 0.1), seed=2020, shuffle="global")
    user = ml100k.interactions.user
    perm = np.random.default_rng(2020).permutation(len(user))
    order = perm[np.argsort(user[perm], kind="stable")]
    n = np.bincount(user)
    end = np.cumsum(n)
    tenth = n // 10
    want_test = np.concatenate([order[e - t:e] for e, t in zip(end, tenth, strict=True)])
    want_valid = np.concatenate([order[e - 2 * t:e - t] for e, t in zip(end, tenth, strict=True)])
    np.testing.assert_array_equal(s.test, np.sort(want_test))
    np.testing.assert_array_equal(s.valid, np.sort(want_valid))
    assert s.method == "random 0.8/0.1/0.1 seed=2020"  # the name the recorded runs carry
    grouped = random_split(ml100k, (0.8, 0.1, 0.1), seed=2020)
    assert grouped.method == "random 0.8/0.1/0.1 seed=2020 shuffle=grouped" and not np.array_equal(grouped.test, s.test)


@pytest.mark.parametrize("shuffle", ["grouped", "global"])
def test_each_interaction_of_a_user_is_equally_likely_held_out(shuffle):
    """Two users of 10 interactions: each split holds out 1 of each user's 10 in valid and 1 in test. Over 2,000
    seeds every interaction's test count is Binomial(2000, 0.1): mean 200, sd 13.4; 200 +- 60 is 4.5 sd."""
    ds = make_dataset([0] * 10 + [1] * 10, list(range(10)) * 2)
    test, valid = np.zeros(20), np.zeros(20)
    for seed in range(2000):
        s = random_split(ds, (0.8, 0.1, 0.1), seed=seed, shuffle=shuffle)
        test[s.test] += 1
        valid[s.valid] += 1
    assert 140 < test.min() and test.max() < 260 and 140 < valid.min() and valid.max() < 260


def test_a_random_split_refuses_an_unknown_shuffle(ml100k):
    with pytest.raises(ValueError, match=r"shuffle must be one of \['grouped', 'global'\], got 'local'"):
        random_split(ml100k, shuffle="local")  # type: ignore[arg-type]


def test_cold_item_split_holds_items_out_entirely(ml100k):
    from graphrec.data import cold_item_split

    s = cold_item_split(ml100k, 0.1, seed=3)
    inter = ml100k.interactions
    train_items = set(inter.item[s.train].tolist())
    test_items = set(inter.item[s.test].tolist())
    cold = test_items - train_items - set(inter.item[s.valid].tolist())
    # 168 items held out, plus the few whose only interactions a random cut puts in test
    base = random_split(ml100k, seed=3)
    base_cold = set(inter.item[base.test].tolist()) - set(inter.item[base.train].tolist()) - set(inter.item[base.valid].tolist())
    assert len(cold) >= round(0.1 * 1682) and len(cold) - len(base_cold) >= 150
    # every interaction of a cold item is in test
    in_cold = np.isin(inter.item, list(cold))
    assert set(np.flatnonzero(in_cold).tolist()) <= set(s.test.tolist())
    assert cold_item_split(ml100k, 0.1, seed=3).test.tolist() == s.test.tolist()
    # the same items held out with either shuffle (drawn first); the warm interactions' cut differs
    old = cold_item_split(ml100k, 0.1, seed=3, shuffle="global")
    total = np.bincount(inter.item, minlength=ml100k.num_items)
    held = lambda sp: set(np.flatnonzero(np.bincount(inter.item[sp.test], minlength=ml100k.num_items) == total))  # noqa: E731
    assert len(held(old) & held(s)) >= round(0.1 * 1682) and not np.array_equal(old.test, s.test)


def _tagged() -> Dataset:
    # u0: i0 (t=1), i1 (t=2), i2 (t=3); u1: i0 (t=4), i1 (t=5)
    inter = Interactions([0, 0, 0, 1, 1], [0, 1, 2, 0, 1], [1] * 5, [1, 2, 3, 4, 5])
    tags = pd.DataFrame({"user": [0, 0, 1, 1, 0], "item": [0, 2, 0, 1, 3], "tag": ["a", "held", "b", "late", "new"],
                         "timestamp": [1, 3, 4, 9, 2]})
    items = pd.DataFrame({"title": ["A", "B", "C", "D"], "tags": [[], [], [], []]})
    ds = Dataset("tagged", inter, Vocabulary([0, 1], "user"), Vocabulary([0, 1, 2, 3], "item"), items,
                 tag_assignments=tags)
    return ds.with_tags(tags)


def test_train_view_drops_tags_of_held_out_pairs_and_new_items():
    ds = _tagged()
    split = Split(ds, np.array([0, 1, 3, 4]), np.array([], dtype=np.int64), np.array([2]), "hand")
    view = split.train_view()
    # "held" sits on the test pair (u0, i2); "new" on item 3, which has no train interaction
    assert sorted(view.tag_assignments["tag"]) == ["a", "b", "late"]
    assert view.item_info["tags"].tolist() == [["a", "b"], ["late"], [], []]
    assert ds.item_info["tags"].tolist() == [["a", "b"], ["late"], ["held"], ["new"]]  # the dataset is untouched
    assert view.interactions is ds.interactions


def test_train_view_of_temporal_splits_drops_tags_after_the_cut():
    ds = _tagged()
    # global: the newest interaction (u1-i1, t=5) is test; the train cut-off is t=4
    split = temporal_split(ds, ratios=(0.8, 0.0, 0.2))
    assert split.test.tolist() == [4] and split.time_cutoff == "global"
    # (u0, i2) is train here, so "held" stays; "late" (t=9) is after t=4
    assert sorted(split.train_view().tag_assignments["tag"]) == ["a", "b", "held"]
    # per user: u0 keeps i0, i1 (cut t=2), u1 keeps i0 (cut t=4)
    per_user = temporal_split(ds, ratios=(0.5, 0.0, 0.5), per_user=True)
    assert per_user.time_cutoff == "per-user"
    assert sorted(per_user.train_view().tag_assignments["tag"]) == ["a", "b"]
