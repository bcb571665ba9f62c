import numpy as np
import pytest

from graphrec.data import drop_duplicates, k_core, to_implicit

from .helpers import make_dataset


def test_drop_duplicates_policies():
    # pair (0, 1) three times: ratings 2 (t=5), 5 (t=1), 3 (t=9)
    ds = make_dataset([0, 0, 0, 1], [1, 1, 1, 0], ratings=[2, 5, 3, 4], timestamps=[5, 1, 9, 2])
    last = drop_duplicates(ds, "last")
    np.testing.assert_array_equal(last.interactions.rating, [3, 4])
    first = drop_duplicates(ds, "first")
    np.testing.assert_array_equal(first.interactions.rating, [5, 4])
    best = drop_duplicates(ds, "max")
    np.testing.assert_array_equal(best.interactions.rating, [5, 4])
    with pytest.raises(ValueError, match=r"\(user 100, item 1001\) occurs more than once .*row 2.*2 repeats"):
        drop_duplicates(ds, "error")


def test_to_implicit_threshold():
    ds = make_dataset([0, 0, 1], [0, 1, 0], ratings=[5, 3, 4])
    imp = to_implicit(ds, 4)
    assert imp.implicit
    np.testing.assert_array_equal(imp.interactions.item, [0, 0])
    np.testing.assert_array_equal(imp.interactions.rating, [1, 1])
    assert len(to_implicit(ds)) == 3


def test_k_core_iterates_to_fixpoint():
    # user 2 has 1 interaction -> removed; then item 2 has 1 -> removed; then user 1 has 1 -> removed
    users = [0, 0, 0, 1, 1, 2, 3, 3, 3]
    items = [0, 1, 2, 0, 2, 3, 0, 1, 2]
    core = k_core(make_dataset(users, items), k=2)
    assert core.num_users == 3 and core.num_items == 3
    per_user = np.bincount(core.interactions.user)
    per_item = np.bincount(core.interactions.item)
    assert per_user.min() >= 2 and per_item.min() >= 2
    np.testing.assert_array_equal(core.users.ids, [100, 101, 103])
    np.testing.assert_array_equal(core.items.ids, [1000, 1001, 1002])
