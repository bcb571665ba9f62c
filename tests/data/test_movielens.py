import zipfile

import numpy as np
import pytest

from graphrec.data import fixed_split, load_movielens
from graphrec.errors import DataFormatError, DatasetNotFoundError

GENRES = "unknown|0\nAction|1\nComedy|2\n"
ITEMS = (
    "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|1\n"
    "2|GoldenEye (1995)|01-Jan-1995||http://y|0|1|0\n"
    "3|unknown||||1|0|0\n"
)
USERS = "1|24|M|technician|85711\n2|53|F|other|T8H1N\n"
DATA = "1\t1\t5\t100\n1\t2\t3\t50\n2\t3\t4\t70\n"


def make_100k(root, data=DATA):
    d = root / "ml-100k"
    d.mkdir(parents=True)
    (d / "u.genre").write_text(GENRES, encoding="latin-1")
    (d / "u.item").write_text(ITEMS, encoding="latin-1")
    (d / "u.user").write_text(USERS, encoding="latin-1")
    (d / "u.data").write_text(data)
    (d / "u1.base").write_text("1\t1\t5\t100\n2\t3\t4\t70\n")
    (d / "u1.test").write_text("1\t2\t3\t50\n")
    return d


def test_100k_tiny_exact(tmp_path):
    make_100k(tmp_path)
    ds = load_movielens("ml-100k", tmp_path, download=False)
    assert (ds.num_users, ds.num_items, len(ds)) == (2, 3, 3)
    np.testing.assert_array_equal(ds.interactions.user, [0, 0, 1])
    np.testing.assert_array_equal(ds.interactions.item, [0, 1, 2])
    np.testing.assert_array_equal(ds.interactions.rating, [5, 3, 4])
    np.testing.assert_array_equal(ds.interactions.timestamp, [100, 50, 70])
    assert ds.item_info["title"].tolist() == ["Toy Story (1995)", "GoldenEye (1995)", "unknown"]
    assert ds.item_info["genres"].tolist() == [["Comedy"], ["Action"], ["unknown"]]
    assert ds.item_info["year"].tolist()[:2] == [1995, 1995]
    assert ds.item_info["year"].isna().tolist()[2]
    assert ds.user_info["occupation"].tolist() == ["technician", "other"]
    assert ds.user_info["zip"].tolist() == ["85711", "T8H1N"]
    assert ds.fixed_splits == ("u1",)
    split = fixed_split(ds, "u1")
    np.testing.assert_array_equal(split.train, [0, 2])
    np.testing.assert_array_equal(split.test, [1])


def test_100k_from_zip_and_folder_itself(tmp_path):
    d = make_100k(tmp_path / "a")
    ds_folder = load_movielens("ml-100k", d, download=False)  # data_dir is the extracted folder itself
    archive = tmp_path / "b" / "ml-100k.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        for f in d.iterdir():
            zf.write(f, f"ml-100k/{f.name}")
    ds_zip = load_movielens("ml-100k", archive.parent, download=False)
    np.testing.assert_array_equal(ds_folder.interactions.item, ds_zip.interactions.item)
    assert fixed_split(ds_zip, "u1").test.tolist() == [1]


def test_100k_unknown_item_in_ratings(tmp_path):
    make_100k(tmp_path, data="1\t1\t5\t100\n2\t9\t4\t70\n")
    with pytest.raises(DataFormatError, match=r"u\.data line 2: item id 9 is not in the item table"):
        load_movielens("ml-100k", tmp_path, download=False)


def test_1m_dat_layout(tmp_path):
    d = tmp_path / "ml-1m"
    d.mkdir()
    (d / "ratings.dat").write_text("1::10::5::978300760\n2::20::3::978302109\n1::20::4::978301968\n")
    (d / "movies.dat").write_bytes("10::Amélie (2001)::Comedy|Romance\n20::Heat (1995)::Action\n".encode("latin-1"))
    (d / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    ds = load_movielens("ml-1m", tmp_path, download=False)
    assert (ds.num_users, ds.num_items, len(ds)) == (2, 2, 3)
    assert ds.item_info["title"].tolist() == ["Amélie (2001)", "Heat (1995)"]
    assert ds.item_info["genres"].tolist() == [["Comedy", "Romance"], ["Action"]]
    assert ds.user_info["occupation"].tolist() == ["K-12 student", "self-employed"]
    assert ds.user_info["age_group"].tolist() == ["Under 18", "56+"]
    np.testing.assert_array_equal(ds.interactions.item, [0, 1, 1])


def test_csv_layout_with_tags(tmp_path):
    d = tmp_path / "ml-latest-small"
    d.mkdir()
    (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n7,1,4.5,10\n7,2,3.0,11\n9,2,0.5,12\n")
    (d / "movies.csv").write_text('movieId,title,genres\n1,"Heat, The (1995)",Action|Crime\n2,Nothing (2000),(no genres listed)\n3,Unrated (1999),Drama\n')
    (d / "tags.csv").write_text("userId,movieId,tag,timestamp\n7,1,Pacino,5\n9,1,pacino,6\n9,1,heist,7\n")
    ds = load_movielens("ml-latest-small", tmp_path, download=False)
    assert (ds.num_users, ds.num_items, len(ds)) == (2, 3, 3)
    assert ds.item_info["title"].tolist()[0] == "Heat, The (1995)"
    assert ds.item_info["genres"].tolist() == [["Action", "Crime"], [], ["Drama"]]
    assert ds.item_info["tags"].tolist() == [["pacino", "heist"], [], []]
    assert len(ds.tag_assignments) == 3
    np.testing.assert_array_equal(ds.interactions.rating, [4.5, 3.0, 0.5])


def test_not_found_says_where_to_put_files(tmp_path, monkeypatch):
    monkeypatch.delenv("GRAPHREC_DATA_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError, match=r"(?s)Put the official ml-1m.zip.*" + str(tmp_path)):
        load_movielens("ml-1m", tmp_path, download=False)
    with pytest.raises(DatasetNotFoundError, match="unknown dataset 'ml-2k'"):
        load_movielens("ml-2k", tmp_path)


def test_env_data_dir(tmp_path, monkeypatch):
    make_100k(tmp_path)
    monkeypatch.setenv("GRAPHREC_DATA_DIR", str(tmp_path))
    assert len(load_movielens("ml-100k", download=False)) == 3


# --- the real files in ../shared/datasets --------------------------------------

def test_ml100k_counts(ml100k):
    assert (ml100k.num_users, ml100k.num_items, len(ml100k)) == (943, 1682, 100_000)
    assert ml100k.item_info.loc[49, "title"] == "Star Wars (1977)"
    assert ml100k.item_info.loc[49, "genres"] == ["Action", "Adventure", "Romance", "Sci-Fi", "War"]


def test_ml100k_official_split_u1(ml100k):
    split = fixed_split(ml100k, "u1")
    assert (len(split.train), len(split.test)) == (80_000, 20_000)
    tests = np.concatenate([fixed_split(ml100k, f"u{k}").test for k in range(1, 6)])
    np.testing.assert_array_equal(np.sort(tests), np.arange(100_000))  # u1..u5 tests partition u.data


def test_ml_latest_small_counts(data_dir):
    ds = load_movielens("ml-latest-small", data_dir, download=False)
    assert (ds.num_users, ds.num_items, len(ds)) == (610, 9742, 100_836)
    assert len(ds.tag_assignments) == 3683


def test_an_incomplete_copy_is_named_never_passed_over(tmp_path, data_dir, monkeypatch):
    import shutil

    from graphrec.data import load_movielens
    from graphrec.errors import DatasetNotFoundError

    broken = tmp_path / "ml-100k"
    shutil.copytree(data_dir / "ml-100k", broken)
    (broken / "u.data").unlink()
    monkeypatch.setenv("GRAPHREC_DATA_DIR", str(data_dir))  # a good copy elsewhere must not be used instead
    with pytest.raises(DatasetNotFoundError, match=r"ml-100k: this copy of ml-100k is incomplete: u\.data missing"):
        load_movielens("ml-100k", tmp_path, download=False)
    # an explicit --data-dir without any copy: not found there, whatever $GRAPHREC_DATA_DIR holds
    with pytest.raises(DatasetNotFoundError, match="was not found locally"):
        load_movielens("ml-100k", tmp_path / "elsewhere", download=False)
