import numpy as np
import pytest

from graphrec.matrices import count_repeats, in_sorted, sorted_unique, stable_argsort


def test_stable_argsort_breaks_ties_by_position():
    values = np.array([3, 1, 3, 0, 1])
    assert stable_argsort(values).tolist() == [3, 1, 4, 0, 2]


@pytest.mark.parametrize("values", [
    np.array([2, -1, 2, -5]),  # negative: falls back to numpy's stable argsort
    np.array([2**62, 0, 2**62]),  # too wide to pack with a position
    np.array([], dtype=np.int64),
    np.array([7], dtype=np.uint32),
])
def test_stable_argsort_equals_numpy(values):
    assert np.array_equal(stable_argsort(values), np.argsort(values, kind="stable"))


def test_stable_argsort_random_against_numpy():
    values = np.random.default_rng(0).integers(0, 50, 10_000)
    assert np.array_equal(stable_argsort(values), np.argsort(values, kind="stable"))


def test_stable_argsort_refuses_floats():
    with pytest.raises(TypeError, match="integer"):
        stable_argsort(np.array([0.5, 1.0]))


def test_in_sorted():
    assert in_sorted(np.array([[5, 2], [9, 0]]), np.array([0, 2, 4])).tolist() == [[False, True], [False, True]]
    assert in_sorted(np.array([1.5, 2.0]), np.array([2.0])).tolist() == [False, True]


def test_sorted_unique_and_count_repeats():
    values = np.array([5, 2, 5, 9, 2, 5])
    assert sorted_unique(values).tolist() == [2, 5, 9]
    assert count_repeats(values) == 3  # one 2 and two 5s after their first
    assert sorted_unique(np.array([], dtype=np.int64)).tolist() == [] and count_repeats(np.array([7])) == 0
