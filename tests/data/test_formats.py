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


def test_ids_are_kept_as_written(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("uid,sku\na,007\na,07\nb,7\nb,0070\n")
    ds = load_interactions(p, {"user": "uid", "item": "sku"})
    assert sorted(ds.items.ids.tolist()) == sorted(["007", "07", "7", "0070"])  # four items, none merged
    assert len(ds) == 4
    p.write_text("uid,sku\n1,7\n2,70\n-3,0\n")  # canonical integers stay integers
    ds = load_interactions(p, {"user": "uid", "item": "sku"})
    assert ds.items.ids.dtype == np.int64 and ds.users.ids.tolist() == [-3, 1, 2]
    edges = [0, 9, 10, 99, 100, 999, 1000, 10**15 - 1, 10**15, -1, -10]  # where digit counts change
    p.write_text("uid,sku\n" + "".join(f"1,{v}\n" for v in edges))
    assert sorted(load_interactions(p, {"user": "uid", "item": "sku"}).items.ids.tolist()) == sorted(edges)
    p.write_text("uid,sku\n1,100\n2,010\n")
    assert sorted(load_interactions(p, {"user": "uid", "item": "sku"}).items.ids.tolist()) == ["010", "100"]
    p.write_text("uid,sku\n1,7.0\n2,12.0\n3,5\n")  # integers as pandas writes them from a float column
    assert sorted(load_interactions(p, {"user": "uid", "item": "sku"}).items.ids.tolist()) == [5, 7, 12]
    p.write_text("uid,sku\n1,7.5\n2,12.0\n")
    assert sorted(load_interactions(p, {"user": "uid", "item": "sku"}).items.ids.tolist()) == ["12.0", "7.5"]
    p.write_text("uid,sku\n1,10\n,11\n3,12\n")  # an empty cell is no id
    with pytest.raises(DataFormatError, match=r"line 3: column 'uid' \(user\) is empty"):
        load_interactions(p, {"user": "uid", "item": "sku"})
    p.write_text("uid,sku\n1,+7\n2,7\n")
    assert sorted(load_interactions(p, {"user": "uid", "item": "sku"}).items.ids.tolist()) == ["+7", "7"]
    p.write_text("uid|sku\n1|0001\n2|0002\n")  # a separator Arrow reads too
    assert load_interactions(p, {"user": "uid", "item": "sku"}, sep="|").items.ids.tolist() == ["0001", "0002"]


def test_format_decides_the_reader_not_the_name(tmp_path):
    data = tmp_path / "clicks.data"
    pd.DataFrame({"u": [1, 2], "i": [3, 4]}).to_parquet(data)
    ds = load_interactions(data, {"user": "u", "item": "i"}, format="parquet")
    assert len(ds) == 2
    with pytest.raises(DataFormatError, match=r"clicks\.data: is not UTF-8 text .*format: parquet"):
        load_interactions(data, {"user": "u", "item": "i"}, format="csv")
    text = tmp_path / "clicks.csv"
    text.write_text("u,i\n1,3\n")
    with pytest.raises(DataFormatError, match=r"clicks\.csv: is not a Parquet file .*format: csv"):
        load_interactions(text, {"user": "u", "item": "i"}, format="parquet")
    pq = tmp_path / "clicks.parquet"
    pd.DataFrame({"u": [1], "i": [3]}).to_parquet(pq)
    with pytest.raises(DataFormatError, match=r"clicks\.parquet: is not UTF-8 text .*format: parquet"):
        load_interactions(pq, {"user": "u", "item": "i"}, format="csv")  # the format given reads it


def test_a_tsv_is_split_by_tabs_and_a_wrong_separator_is_named(tmp_path):
    p = tmp_path / "log.tsv"
    p.write_text("user\titem\n1\t2\n")
    assert len(load_interactions(p)) == 1
    with pytest.raises(DataFormatError, match=r"line 1: has one column 'user\\titem' split by ','.*'\\t': set sep"):
        load_interactions(p, sep=",")


def test_lines_count_blank_lines_and_empty_cells_are_named(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("user,item,rating\n1,2,3\n\n   \n1,3,4\n2,3,abc\n")  # an empty and a whitespace-only line
    with pytest.raises(DataFormatError, match=r"log\.csv line 6: column 'rating' expected a number, found 'abc'"):
        load_interactions(p, {"rating": "rating"})
    p.write_text("user,item,rating\n1,2,3\n1,3,\n")
    with pytest.raises(DataFormatError, match=r"line 3: column 'rating' expected a number, found an empty cell"):
        load_interactions(p, {"rating": "rating"})


def test_dates_in_any_common_form_and_the_bad_one_named(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("user,item,ts\n1,2,2020-09-05\n1,3,2020-12-05T13:39:37\n2,3,2020-12-05T13:39:37+01:00\n")
    ts = load_interactions(p, {"timestamp": "ts"}).frame()["timestamp"].tolist()
    assert ts == [1599264000, 1607175577, 1607171977]  # a date is its midnight, UTC; an offset counts
    p.write_text("user,item,ts\n1,2,2020-09-05\n1,3,not a date\n")
    with pytest.raises(DataFormatError, match=r"line 3: column 'ts' expected a date or seconds since the epoch, "
                                              r"found 'not a date'"):
        load_interactions(p, {"timestamp": "ts"})


def test_parquet_timestamps_are_seconds(tmp_path):
    p = tmp_path / "log.parquet"
    when = pd.to_datetime(["2020-10-11 05:33:45", "2021-01-01 00:00:00"])
    for t in (when, when.tz_localize("Europe/Paris")):
        pd.DataFrame({"u": [1, 2], "i": [3, 4], "t": t}).to_parquet(p)
        got = load_interactions(p, {"user": "u", "item": "i", "timestamp": "t"}).interactions.timestamp
        want = [1602394425, 1609459200] if t.tz is None else [1602387225, 1609455600]
        np.testing.assert_array_equal(got, want)


def test_a_log_is_named_by_its_file_less_the_known_suffixes():
    from graphrec.data.formats import table_name

    assert [table_name(p) for p in ("data/clicks.csv.gz", "2024.01.clicks.csv", ".clicks.csv", "log.parquet",
                                    "events.tsv", "notes.data")] == \
        ["clicks", "2024.01.clicks", ".clicks", "log", "events", "notes.data"]
