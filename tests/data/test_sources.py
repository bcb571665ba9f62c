"""Dataset sources and manifests: every format through one registry, each run end to end by ``graphrec run``."""

import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from graphrec.cli import main
from graphrec.data import load_lightgcn_format
from graphrec.data.manifests import manifests, read_manifest
from graphrec.data.sources import (
    LightGCNSource,
    MovieLensSource,
    SyntheticSource,
    TableSource,
    source_config,
    synthetic_dataset,
)
from graphrec.errors import ConfigError, DataFormatError, DatasetNotFoundError
from graphrec.fs import file_digest
from graphrec.run import load_config, run_experiment
from tests.conftest import REPO

# --- tiny datasets, one per format, written by the tests ---

# two groups: users 0-3 use items 0-4, users 4-7 items 5-9; each user's test item is one of its group's
WITHHELD = {u: (u // 4) * 5 + u % 4 for u in range(8)}
LIGHTGCN_TRAIN = "\n".join(f"{u} " + " ".join(str(i) for i in range((u // 4) * 5, (u // 4) * 5 + 5) if i != WITHHELD[u])
                           for u in range(8))
LIGHTGCN_TEST = "\n".join(f"{u} {WITHHELD[u]}" for u in range(8))


def lightgcn_folder(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.txt").write_text(LIGHTGCN_TRAIN + "\n")
    (root / "test.txt").write_text(LIGHTGCN_TEST + "\n")
    return root


def shop_files(root):
    """A click log with string ids, ratings and timestamps, and an item table with text and attributes."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(30):
        group = u % 3
        for i in rng.choice(8, 5, replace=False):
            rows.append((f"u{u}", f"sku{group * 8 + i}", int(rng.integers(1, 6)), 1_600_000_000 + len(rows)))
    log = root / "clicks.csv"
    pd.DataFrame(rows, columns=["uid", "sku", "stars", "ts"]).to_csv(log, index=False)
    items = pd.DataFrame({"sku": [f"sku{j}" for j in range(24)],
                          "title": [f"Product {j}" for j in range(24)],
                          "description": [f"a {['red', 'green', 'blue'][j // 8]} thing" for j in range(24)],
                          "category": [["shoes", "hats", "bags"][j // 8] for j in range(24)],
                          "brand": [f"b{j % 4}|b{j % 5}" for j in range(24)]})
    items.to_csv(root / "items.csv", index=False)
    return log


def run_yaml(tmp_path, dataset_yaml, model_yaml, split_yaml="split:\n  method: random\n  seed: 1\n", extra=""):
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"name: t\n{dataset_yaml}{split_yaml}{model_yaml}"
                   "train:\n  epochs: 2\n  batch_size: 64\n  progress: false\n  threads: 1\n" + extra)
    return exp


def run_cli(exp, out, *options):
    assert main(["run", str(exp), "--out", str(out), "--quiet", *options]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_lightgcn_folder_runs_with_its_official_split(tmp_path):
    lightgcn_folder(tmp_path / "data" / "tiny")
    dataset, split = "dataset:\n  name: tiny\n  format: lightgcn\n", "split:\n  method: fixed\n  fixed: official\n"
    model = "model:\n  name: lightgcn\n  dim: 8\n  num_layers: 2\n"
    # cut-offs beyond the catalogue are an error, not a crash
    too_long = load_config(run_yaml(tmp_path, dataset, model, split), {"dataset.data_dir": str(tmp_path / "data")})
    with pytest.raises(ConfigError, match=r"cut-offs \[10, 20\]: k=20 is more than the 10 items"):
        run_experiment(too_long, tmp_path / "r0", log=lambda *_: None)
    exp = run_yaml(tmp_path, dataset, model, split, extra="eval:\n  ks: [1]\n")
    metrics = run_cli(exp, tmp_path / "run", "--data-dir", str(tmp_path / "data"), "--set", "train.metric=recall@1",
                      "--set", "train.epochs=60", "--set", "train.batch_size=8", "--set", "train.lr=0.05")
    assert metrics["valid"] is None and metrics["epochs_run"] == 60  # no valid part: every epoch, the last kept
    # each user's one unseen in-group item among 6 candidates: chance is 1/6, the group structure gives 1
    assert metrics["test"]["recall@1"] >= 0.75
    assert metrics["data_source"] == str(tmp_path / "data" / "tiny")


def test_csv_log_with_item_table_runs(tmp_path):
    shop_files(tmp_path)
    dataset = ("dataset:\n  name: shop\n  format: csv\n  path: clicks.csv\n"
               "  columns: {user: uid, item: sku, rating: stars, timestamp: ts}\n"
               "  items: {path: items.csv, id: sku, text: [title, description], attributes: [category, brand]}\n"
               f"  data_dir: {tmp_path}\n")
    cfg = source_config({"name": "shop", "format": "csv", "path": str(tmp_path / "clicks.csv"),
                         "columns": {"user": "uid", "item": "sku", "rating": "stars", "timestamp": "ts"},
                         "items": {"path": str(tmp_path / "items.csv"), "id": "sku", "text": ["title", "description"],
                                   "attributes": ["category", "brand"]}})
    ds = cfg.load()
    assert ds.default_item_attributes == ("category", "brand")
    j = ds.items.encode(["sku9"])[0]
    assert ds.item_info["category"][j] == ["hats"] and ds.item_info["brand"][j] == ["b1", "b4"]
    from graphrec.text import item_texts

    assert item_texts(ds, None)[j] == "Product 9. a green thing"
    # the graph: the item table's attributes become nodes; no MovieLens column is assumed
    from graphrec.graph import GraphBuilder, GraphConfig

    graph = GraphBuilder(GraphConfig()).build(ds)
    assert {"category", "brand"} <= set(graph.node_types) and graph["category"].num_nodes == 3
    # end to end: text-aware LightGCN propagating over the attribute nodes
    exp = run_yaml(tmp_path, dataset, "model:\n  name: lightgcn\n  dim: 8\n  item_features: text\n  attribute_nodes: true\n",
                   extra="text:\n  batch_size: 32\n")
    metrics = run_cli(exp, tmp_path / "run")
    assert metrics["epochs_run"] == 2 and metrics["model"].startswith("LightGCN(")
    assert "extra_nodes={'category': 3, 'brand': 5}" in metrics["model"]  # the item table's attribute nodes


def test_a_relative_path_is_read_from_here_then_the_data_folder_and_a_miss_says_where_it_looked(
        tmp_path, monkeypatch):
    shop_files(tmp_path)
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    monkeypatch.delenv("GRAPHREC_DATA_DIR", raising=False)
    log = {"name": "shop", "format": "csv", "path": "clicks.csv",
           "columns": {"user": "uid", "item": "sku", "rating": "stars", "timestamp": "ts"}}
    here = tmp_path / "here" / "clicks.csv"
    with pytest.raises(DatasetNotFoundError, match=rf"dataset.path 'clicks.csv': not found at {re.escape(str(here))}; "
                                                   r".*\$GRAPHREC_DATA_DIR, neither of which is set\)"):
        source_config(log).load()
    assert len(source_config({**log, "data_dir": str(tmp_path)}).load()) == 150  # --data-dir
    pd.read_csv(tmp_path / "clicks.csv").head(10).to_csv(here, index=False)
    assert len(source_config({**log, "data_dir": str(tmp_path)}).load()) == 10  # the current folder's first
    here.unlink()
    monkeypatch.setenv("GRAPHREC_DATA_DIR", str(tmp_path))  # the environment's, for a log as for a folder
    assert len(source_config(log).load()) > 0
    items = {"path": "goods.csv", "id": "sku", "text": ["title"]}
    with pytest.raises(DatasetNotFoundError, match=rf"dataset.items.path 'goods.csv': not found at "
                                                   rf"{re.escape(str(here.with_name('goods.csv')))} nor at "
                                                   rf"{re.escape(str(tmp_path / 'goods.csv'))}; a relative path"):
        source_config({**log, "items": items}).load()


def test_parquet_log_runs(tmp_path):
    rows = [(u, (u % 3) * 10 + i) for u in range(30) for i in range(8)]
    pd.DataFrame(rows, columns=["user", "item"]).to_parquet(tmp_path / "log.parquet")
    exp = run_yaml(tmp_path, f"dataset:\n  name: pq\n  format: parquet\n  path: {tmp_path / 'log.parquet'}\n",
                   "model:\n  name: mf-bpr\n  dim: 8\n")
    metrics = run_cli(exp, tmp_path / "run")
    assert metrics["epochs_run"] == 2


def test_synthetic_runs_and_is_seeded(tmp_path):
    a = synthetic_dataset(50, 40, 600, seed=3)
    b = synthetic_dataset(50, 40, 600, seed=3)
    assert (a.num_users, a.num_items, len(a)) == (50, 40, 600)
    np.testing.assert_array_equal(a.interactions.user, b.interactions.user)
    np.testing.assert_array_equal(a.interactions.item, b.interactions.item)
    assert len(np.unique(a.interactions.pair_keys(40))) == 600  # distinct pairs
    assert np.bincount(a.interactions.user, minlength=50).min() >= 1
    assert np.bincount(a.interactions.item, minlength=40).min() >= 1
    counts = np.sort(np.bincount(a.interactions.item, minlength=40))[::-1]
    assert counts[:4].sum() > 2 * counts[-4:].sum()  # power law: a popular head
    assert not np.array_equal(synthetic_dataset(50, 40, 600, seed=4).interactions.item, a.interactions.item)
    dense = synthetic_dataset(5, 4, 20, seed=0)  # every pair
    assert len(dense) == 20
    exp = run_yaml(tmp_path, "dataset:\n  name: syn\n  format: synthetic\n  users: 60\n  items: 30\n  interactions: 900\n",
                   "model:\n  name: lightgcn\n  dim: 8\n")
    assert run_cli(exp, tmp_path / "run")["epochs_run"] == 2


@pytest.mark.parametrize(("train", "test", "message"), [
    ("0 1 2\n1 0\n", "0 0\n5 1\n", r"test\.txt line 2: user 5 does not occur in train\.txt"),
    ("0 1 2\n1 0\n", "0 0\n1 0 7\n", r"test\.txt line 2: item 7 does not occur in train\.txt"),
    ("0 1 2\n1 a\n", "0 0\n", r"train\.txt line 2: expected a non-negative integer id, found 'a'"),
    ("0 1 2\n1 1.5\n", "0 0\n", r"train\.txt line 2: expected a non-negative integer id, found '1.5'"),
    ("0 1 2\n\n1 0\n", "0 0\n", r"train\.txt line 2: empty line in the middle of the file"),
])
def test_lightgcn_errors_name_file_and_line(tmp_path, train, test, message):
    (tmp_path / "train.txt").write_text(train)
    (tmp_path / "test.txt").write_text(test)
    with pytest.raises(DataFormatError, match=message):
        load_lightgcn_format(tmp_path)


def test_trailing_blank_lines_are_fine(tmp_path):
    (tmp_path / "train.txt").write_text("0 1 2\n1 0\n\n\n")
    (tmp_path / "test.txt").write_text("0 0\n")
    assert len(load_lightgcn_format(tmp_path)) == 4


@pytest.mark.parametrize(("values", "message"), [
    ({"name": "shop"}, r"dataset.name: 'shop' is no known dataset \(known: .*gowalla.*\); for your own files give "
                       r"dataset.format"),
    ({"name": "x", "format": "xml"}, r"dataset.format: unknown format 'xml'"),
    ({"name": "x", "format": "csv"}, "dataset.path: a csv dataset needs the log's path"),
    ({"name": "x", "format": "synthetic", "path": "a"}, r"a synthetic dataset has no key\(s\) \['path'\]; its keys: "),
    ({"name": "x", "format": "synthetic", "users": 10, "items": 10, "interactions": 5},
     r"interactions must be in \[max\(users, items\), users × items\] = \[10, 100\]"),
    ({"name": "ml-100k", "k_core": 0}, "k_core must be >= 1"),
    ({"name": "ml-3m", "format": "movielens"}, "'ml-3m' is no MovieLens release"),
    ({"name": "x", "format": "csv", "path": "a.csv", "items": {"path": "i.csv", "text": ["a"], "attributes": ["a"]}},
     r"\['a'\] are both text and attributes"),
    ({"name": "x", "format": "csv", "path": "a.csv", "implicit_threshold": 4},  # 1 and below keep every one
     r"implicit_threshold .* this log has no ratings \(columns.rating is not set\)"),
    ({"name": "x", "format": "csv", "path": "a.csv", "duplicates": "newest"},
     r"dataset.duplicates: expected one of \['last', 'first', 'max', 'error'\], found 'newest'"),
])
def test_source_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        source_config(values)


def test_format_is_inferred_from_the_name():
    assert isinstance(source_config({"name": "ml-100k"}), MovieLensSource)
    assert isinstance(source_config({"name": "gowalla"}), LightGCNSource)  # from datasets/gowalla.yaml
    assert isinstance(source_config({"name": "s", "format": "synthetic"}), SyntheticSource)
    assert isinstance(source_config({"name": "p", "format": "parquet", "path": "x.parquet"}), TableSource)
    # your own log without a name is named by its file, not taken for the default dataset
    assert source_config({"format": "csv", "path": "logs/clicks.csv.gz"}).name == "clicks"
    assert source_config({}).name == "ml-100k"
    with pytest.raises(ConfigError, match="reads no files: --data-dir does not apply"):
        source_config({"name": "s", "format": "synthetic"}).with_data_dir("/data")


def test_every_manifest_is_complete():
    found = manifests()
    assert {"ml-100k", "ml-latest-small", "gowalla", "yelp2018", "amazon-book"} <= set(found)
    for name, m in found.items():
        assert m.path is not None and m.path.parent == REPO / "datasets" and m.path.stem == name
        assert m.homepage.startswith("http") and m.archive.startswith("http") and m.licence and m.citation
        assert read_manifest(m.path) == m
    assert found["gowalla"].checksums["train.txt"]["git_blob_sha1"] == "a27782bd7a1d4d0744148dc0460ea94da74763f2"
    assert found["ml-100k"].fixed_splits == ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


def test_manifest_errors_name_the_file(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("name: mine\nformat: xml\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml: missing \['description'"):
        read_manifest(bad)
    bad.write_text("name: other\nformat: csv\ndescription: d\nhomepage: h\narchive: a\nlicence: l\ncitation: c\n")
    with pytest.raises(ConfigError, match="name 'other' differs from the file name 'mine'"):
        read_manifest(bad)


def test_user_manifests_are_listed(tmp_path, monkeypatch, capsys):
    (tmp_path / "mine.yaml").write_text("name: mine\nformat: lightgcn\ndescription: my own\nhomepage: https://x\n"
                                        "archive: https://x/a\nlicence: mine\ncitation: me\n")
    monkeypatch.setenv("GRAPHREC_DATASETS", str(tmp_path))
    assert main(["datasets", "list"]) == 0
    assert "mine             lightgcn   my own" in capsys.readouterr().out
    assert isinstance(source_config({"name": "mine"}), LightGCNSource)


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_blob_checksum_is_gits_object_id(tmp_path):
    f = tmp_path / "train.txt"
    f.write_text(LIGHTGCN_TRAIN)
    expected = subprocess.run(["git", "hash-object", str(f)], capture_output=True, text=True, check=True).stdout.strip()
    assert file_digest(f, "git_blob_sha1") == expected


def test_datasets_info_and_split_take_any_source(tmp_path, capsys):
    lightgcn_folder(tmp_path / "tiny")
    spec = tmp_path / "tiny.yaml"
    spec.write_text(f"dataset:\n  name: tiny\n  format: lightgcn\n  path: {tmp_path / 'tiny'}\n")
    assert main(["datasets", "info", str(spec), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["users"], info["items"], info["interactions"]) == (8, 10, 40)
    assert main(["split", str(spec), "--method", "fixed", "--fixed", "official", "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "test.tsv").read_text().count("\n") == 9  # header + 8 pairs


def test_movielens_layout_written_by_the_test_runs(tmp_path):
    """A tiny copy in ml-latest-small's CSV layout, found through dataset.data_dir."""
    root = tmp_path / "data" / "ml-latest-small"
    root.mkdir(parents=True)
    genres = ["Action", "Comedy", "Drama"]
    (root / "movies.csv").write_text("movieId,title,genres\n" + "".join(
        f"{m},Movie {m} (199{m % 10}),{genres[m % 3]}|{genres[(m + 1) % 3]}\n" for m in range(1, 31)))
    rng = np.random.default_rng(1)
    rows = [f"{u},{m},{rng.integers(1, 6)}.0,{1_000_000 + 10 * u + m}\n"
            for u in range(1, 41) for m in rng.choice(np.arange(1, 31), 8, replace=False)]
    (root / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "".join(rows))
    exp = run_yaml(tmp_path, f"dataset:\n  name: ml-latest-small\n  data_dir: {tmp_path / 'data'}\n",
                   "model:\n  name: lightgcn\n  dim: 8\n  attribute_nodes: true\n",
                   extra="eval:\n  ks: [5, 10]\n")
    metrics = run_cli(exp, tmp_path / "run", "--set", "train.metric=ndcg@10")
    assert metrics["epochs_run"] == 2 and metrics["data_source"] == str(root)


# --- adding a format: one config class with read() and one line in SOURCES (monkeypatched in) ---


def test_an_added_format_is_parsed_and_runs(tmp_path, monkeypatch):
    from dataclasses import dataclass
    from typing import Literal

    from graphrec.data import Dataset, Interactions, Vocabulary
    from graphrec.data.sources import SOURCES, SourceConfig

    @dataclass(frozen=True)
    class PairsSource(SourceConfig):
        """``user:item`` tokens separated by spaces, in one line."""

        format: Literal["pairs"] = "pairs"
        text: str = ""

        def read(self, download: bool = False) -> Dataset:
            pairs = [tuple(int(x) for x in tok.split(":")) for tok in self.text.split()]
            u, i = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
            users, items = Vocabulary.from_values(u, "user"), Vocabulary.from_values(i, "item")
            inter = Interactions(users.encode(u), items.encode(i), np.ones(len(u), dtype=np.float32))
            return Dataset(self.name, inter, users, items, implicit=True)

    monkeypatch.setitem(SOURCES, "pairs", PairsSource)  # the registry line
    text = " ".join(f"{u}:{(u % 3) * 10 + j}" for u in range(30) for j in range(8))
    cfg = source_config({"name": "p", "format": "pairs", "text": text})
    assert isinstance(cfg, PairsSource) and len(cfg.load()) == 240
    with pytest.raises(ConfigError, match=r"a pairs dataset has no key\(s\) \['path'\]"):
        source_config({"name": "p", "format": "pairs", "path": "x"})
    exp = run_yaml(tmp_path, f"dataset:\n  name: p\n  format: pairs\n  text: '{text}'\n",
                   "model:\n  name: mf-bpr\n  dim: 8\n")
    assert run_cli(exp, tmp_path / "run")["epochs_run"] == 2


def test_files_are_checked_against_the_manifest(tmp_path, monkeypatch, capsys):
    folder = lightgcn_folder(tmp_path / "data" / "mine")
    import hashlib

    good = hashlib.sha256((folder / "train.txt").read_bytes()).hexdigest()
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "mine.yaml").write_text(
        "name: mine\nformat: lightgcn\ndescription: d\nhomepage: https://x\narchive: https://x/a\nlicence: l\n"
        f"citation: c\nchecksums:\n  train.txt: {{sha256: {good}}}\n  test.txt: {{sha256: {'0' * 64}}}\n")
    monkeypatch.setenv("GRAPHREC_DATASETS", str(tmp_path / "m"))
    assert main(["datasets", "info", "mine", "--data-dir", str(tmp_path / "data")]) == 0
    assert "files against datasets/mine.yaml: train.txt ok, test.txt differs" in capsys.readouterr().out


def test_synthetic_dataset_refuses_sizes_no_log_has():
    from graphrec.data.sources import synthetic_dataset

    # 3 users and 5 items need 5 pairs at least (every item once) and allow 15 at most
    with pytest.raises(ConfigError, match=r"interactions must be in .* = \[5, 15\], got 4"):
        synthetic_dataset(3, 5, 4)
    with pytest.raises(ConfigError, match=r"= \[5, 15\], got 16"):
        synthetic_dataset(3, 5, 16)
    assert len(synthetic_dataset(3, 5, 5).interactions) == 5 and len(synthetic_dataset(3, 5, 15).interactions) == 15


def test_filters_that_leave_nothing_and_tables_that_match_nothing_say_so(tmp_path):
    shop_files(tmp_path)
    base = {"name": "shop", "format": "csv", "path": str(tmp_path / "clicks.csv"),
            "columns": {"user": "uid", "item": "sku", "rating": "stars", "timestamp": "ts"}}
    with pytest.raises(ConfigError, match=r"dataset.k_core: the 500-core of shop is empty .* lower k_core"):
        source_config({**base, "k_core": 500}).load()
    with pytest.raises(ConfigError, match=r"dataset.implicit_threshold: no interaction of shop is rated 99"):
        source_config({**base, "implicit_threshold": 99}).load()
    items = pd.read_csv(tmp_path / "items.csv", dtype=str)
    items["sku"] = "x-" + items["sku"]  # ids of another system
    items.to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(DataFormatError, match=r"other\.csv: none of the log's 24 items has a row here: the log's "
                                              r"item ids are like \['sku0', 'sku1', 'sku10'\], column 'sku' holds "
                                              r"ones like \['x-sku0'"):
        source_config({**base, "items": {"path": str(tmp_path / "other.csv"), "id": "sku", "text": ["title"]}}).load()
    items.iloc[:5].assign(sku=lambda f: f["sku"].str[2:]).to_csv(tmp_path / "few.csv", index=False)
    with pytest.warns(UserWarning, match=r"few\.csv: only 5 of the log's 24 items have a row"):
        source_config({**base, "items": {"path": str(tmp_path / "few.csv"), "id": "sku", "text": ["title"]}}).load()


def test_the_duplicates_policy_is_a_key(tmp_path, capsys):
    p = tmp_path / "log.csv"
    p.write_text("u,i,r\n1,2,5\n1,2,1\n")
    base = {"name": "log", "format": "csv", "path": str(p), "columns": {"user": "u", "item": "i", "rating": "r"}}
    assert source_config(base).read().frame()["rating"].tolist() == [1.0]  # the last, by default
    assert source_config(base).load().repeats_dropped == 1
    spec = tmp_path / "log.yaml"
    spec.write_text(f"dataset:\n  format: csv\n  path: {p}\n  columns: {{user: u, item: i, rating: r}}\n")
    assert main(["datasets", "info", str(spec)]) == 0
    assert "(repeats of a (user, item) pair left out: 1; see dataset.duplicates)" in capsys.readouterr().out
    assert source_config({**base, "duplicates": "max"}).read().frame()["rating"].tolist() == [5.0]
    with pytest.raises(ValueError, match=r"\(user 1, item 2\) occurs more than once"):
        source_config({**base, "duplicates": "error"}).read()


def test_graph_build_takes_an_item_tables_attributes(tmp_path, capsys):
    shop_files(tmp_path)
    spec = tmp_path / "shop.yaml"
    spec.write_text(f"dataset:\n  format: csv\n  path: {tmp_path / 'clicks.csv'}\n"
                    "  columns: {user: uid, item: sku, rating: stars, timestamp: ts}\n"
                    f"  items: {{path: {tmp_path / 'items.csv'}, id: sku, attributes: [category, brand]}}\n")
    assert main(["graph", "build", str(spec), "--no-text"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("clicks: graph")  # named by its file
    assert re.search(r"category\s+3 ", out) and re.search(r"brand\s+5 ", out)


def test_a_run_records_its_relative_files_so_that_it_reads_them_from_anywhere(tmp_path, monkeypatch):
    from dataclasses import replace

    from graphrec.run.pipeline import check_resumable

    shop_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    exp = tmp_path / "exp.yaml"
    exp.write_text("dataset:\n  name: shop\n  format: csv\n  path: clicks.csv\n"
                   "  columns: {user: uid, item: sku, rating: stars, timestamp: ts}\n"
                   "  items: {path: items.csv, id: sku, text: [title]}\nmodel:\n  name: mostpop\n")
    run_dir, _ = run_experiment(load_config(exp), tmp_path / "run", log=lambda *_: None)
    saved = load_config(run_dir / "config.yaml", strict=False)
    assert saved.dataset.path == str((tmp_path / "clicks.csv").resolve())
    assert saved.dataset.items.path == str((tmp_path / "items.csv").resolve())
    check_resumable(saved, load_config(exp), run_dir)  # the experiment file, relative paths and all, continues it
    n = len(load_config(exp).dataset.load())
    monkeypatch.chdir(tmp_path / "run")  # graphrec retrain from another folder
    assert len(saved.dataset.load()) == n
    monkeypatch.setenv("GRAPHREC_DATA_DIR", str(tmp_path))  # found through the data folder: stays relative
    through_data_dir = load_config(exp).dataset.anchored()
    assert through_data_dir.path == "clicks.csv" and len(through_data_dir.load()) == n
    assert saved.dataset.sep == ","  # the separator read, recorded
    # a run written before 2026-12-07 (no sep recorded; no name given read ml-100k) resumes with its file
    old = replace(saved, dataset=replace(saved.dataset, name="ml-100k", sep=None))
    monkeypatch.chdir(tmp_path)
    check_resumable(old, load_config(exp.with_name("exp.yaml")), run_dir)
