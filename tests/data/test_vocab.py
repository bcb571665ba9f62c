import numpy as np
import pytest

from graphrec.data import Vocabulary
from graphrec.errors import UnknownIdError


def test_int_ids_roundtrip():
    v = Vocabulary([10, 3, 7], name="item")
    assert len(v) == 3
    np.testing.assert_array_equal(v.encode([7, 10, 3]), [2, 0, 1])
    np.testing.assert_array_equal(v.decode([0, 2]), [10, 7])
    assert v.index(3) == 1
    assert 7 in v and 8 not in v


def test_string_ids_and_mixed_input():
    v = Vocabulary(["b", "a"], name="user")
    np.testing.assert_array_equal(v.encode(np.array(["a", "b"])), [1, 0])


def test_unknown_policy_raise_names_ids():
    v = Vocabulary([1, 2, 3], name="user")
    with pytest.raises(UnknownIdError, match=r"unknown user id\(s\): 99"):
        v.encode([1, 99])


def test_unknown_policy_mask():
    v = Vocabulary([1, 2, 3], name="user")
    np.testing.assert_array_equal(v.encode([3, 99], unknown="mask"), [2, -1])


def test_bad_policy_and_duplicates():
    with pytest.raises(ValueError, match="policy"):
        Vocabulary([1]).encode([1], unknown="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duplicates"):
        Vocabulary([1, 1])


def test_decode_out_of_range():
    with pytest.raises(IndexError):
        Vocabulary([1, 2]).decode([2])


def test_from_values_sorted():
    v = Vocabulary.from_values(np.array([5, 1, 5, 3]))
    np.testing.assert_array_equal(v.ids, [1, 3, 5])
