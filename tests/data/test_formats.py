import numpy as np
import pandas as pd
import pytest

from graphrec.data import fixed_split, load_interactions, load_lightgcn_format
from graphrec.errors import DataFormatError


def test_lightgcn_format(tmp_path):
    (tmp_path / "train.txt").write_text("0 1 2\n1 0\n2\n3 2 1\n")
    (tmp_path / "test.txt").write_text("0 0\n1 2\n")
    ds = load_lightgcn_format(tmp_path, name="tiny")
    assert (ds.num_users, ds.num_items, len(ds)) == (4, 3, 7)
    assert ds.implicit and ds.interactions.timestamp is None
    np.testing.assert_array_equal(ds.interactions.user, [0, 0, 1, 3, 3, 0, 1])
    np.testing.assert_array_equal(ds.interactions.item, [1, 2, 0, 2, 1, 0, 2])
    split = fixed_split(ds, "official")
    np.testing.assert_array_equal(split.train, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(split.test, [5, 6])


def test_lightgcn_bad_token(tmp_path):
    (tmp_path / "train.txt").write_text("0 1 2\n1 x\n")
    (tmp_path / "test.txt").write_text("0 0\n")
    with pytest.raises(DataFormatError, match=r"train\.txt line 2: expected a non-negative integer id, found 'x'"):
        load_lightgcn_format(tmp_path)


def test_csv_with_mapping(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("uid,iid,stars,when\nalice,x,4,2020-01-01\nbob,y,2,2020-01-02\nalice,y,5,2020-01-03\nalice,x,1,2020-01-04\n")
    ds = load_interactions(p, {"user": "uid", "item": "iid", "rating": "stars", "timestamp": "when"})
    assert ds.name == "log" and not ds.implicit
    assert ds.users.ids.tolist() == ["alice", "bob"]
    # duplicate (alice, x): the later one (rating 1) is kept
    frame = ds.frame()
    assert frame.to_dict("records") == [
        {"user": "bob", "item": "y", "rating": 2.0, "timestamp": 1577923200},
        {"user": "alice", "item": "y", "rating": 5.0, "timestamp": 1578009600},
        {"user": "alice", "item": "x", "rating": 1.0, "timestamp": 1578096000},
    ]


def test_parquet_implicit(tmp_path):
    p = tmp_path / "log.parquet"
    pd.DataFrame({"u": [3, 1, 3], "i": [10, 10, 20]}).to_parquet(p)
    ds = load_interactions(p, {"user": "u", "item": "i"})
    assert ds.implicit
    np.testing.assert_array_equal(ds.users.ids, [1, 3])
    np.testing.assert_array_equal(ds.interactions.user, [1, 0, 1])


def test_parquet_timestamps_and_arrow_pool(tmp_path):
    import pyarrow as pa

    p = tmp_path / "log.parquet"
    pd.DataFrame({"u": [3, 1], "i": [10, 20], "t": np.array([5, 7], dtype=np.int32)}).to_parquet(p)
    before = pa.default_memory_pool().backend_name
    ds = load_interactions(p, {"user": "u", "item": "i", "timestamp": "t"})
    assert ds.interactions.timestamp.dtype == np.int64
    np.testing.assert_array_equal(ds.interactions.timestamp, [5, 7])
    assert pa.default_memory_pool().backend_name == before  # the system pool only while reading
    pd.DataFrame({"u": [3, 1], "i": [10, 20], "t": [5.0, np.nan]}).to_parquet(p)
    with pytest.raises(DataFormatError, match=r"column 't' expected a number at row 1"):
        load_interactions(p, {"user": "u", "item": "i", "timestamp": "t"})
    assert pa.default_memory_pool().backend_name == before
    pd.DataFrame({"u": [3, 1], "i": [10, 20], "t": pd.array([5, None], dtype="Int64")}).to_parquet(p)
    with pytest.raises(DataFormatError, match=r"column 't' expected a number at row 1"):
        load_interactions(p, {"user": "u", "item": "i", "timestamp": "t"})


def test_the_arrow_pool_is_restored_when_a_read_fails(tmp_path, monkeypatch):
    import pyarrow as pa

    from graphrec.data import formats

    before = pa.default_memory_pool().backend_name
    seen = []

    def fail(*args, **kwargs):
        seen.append(pa.default_memory_pool().backend_name)
        raise OSError("disk gone")

    monkeypatch.setattr(pd, "read_parquet", fail)
    with pytest.raises(OSError, match="disk gone"):
        formats.read_parquet(tmp_path / "x.parquet")
    assert seen == ["system"] and pa.default_memory_pool().backend_name == before


def test_csv_errors_name_file_and_line(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("user,item,rating\n1,2,3\n1,3,high\n")
    with pytest.raises(DataFormatError, match=r"log\.csv line 3: column 'rating' expected a number, found 'high'"):
        load_interactions(p, {"rating": "rating"})
    with pytest.raises(DataFormatError, match=r"column 'stars' \(mapped to rating\) not found"):
        load_interactions(p, {"rating": "stars"})
    p.write_text("user,item\n1,2\n1,3,4,5\n")
    with pytest.raises(DataFormatError, match=r"log\.csv line 3: expected 2 fields, found 4"):
        load_interactions(p)
    p.write_text("")
    with pytest.raises(DataFormatError, match="file is empty"):
        load_interactions(p)
