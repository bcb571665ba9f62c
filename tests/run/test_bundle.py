"""A run directory is a deployable model: it recommends and explains with the dataset deleted."""

import json
import os
import shutil

import numpy as np
import pytest
import torch

import graphrec
from graphrec.cli import main
from graphrec.errors import GraphrecError
from graphrec.rank import Recommender
from graphrec.run import load_config, load_run, run_experiment
from graphrec.run.bundle import BUNDLE_FILES
from graphrec.run.pipeline import export_bundle
from tests.data.test_sources import shop_files

MODELS = {
    "lightgcn": "model:\n  name: lightgcn\n  dim: 8\n  item_features: text\n  attribute_nodes: true\n",
    "itemknn": "model:\n  name: itemknn\n  k: 5\n",
    "ease": "model:\n  name: ease\n  reg: 10.0\n",
    "gf-cf": "model:\n  name: gf-cf\n  rank: 8\n",
    "bspm": "model:\n  name: bspm\n  rank: 8\n",
    "mostpop": "model:\n  name: mostpop\n",
    "graphsage": "model:\n  name: graphsage\n  dim: 8\n  fanouts: [3, 3]\ngraph:\n  user_features: text_mean\n",
}
TRAIN = "train:\n  epochs: 2\n  batch_size: 64\n  progress: false\n  threads: 1\n"


def shop_run(tmp_path, name):
    """A finished run on a tiny CSV log with an item table, and its in-memory reference recommender."""
    data = tmp_path / "data"
    data.mkdir()
    shop_files(data)
    train = TRAIN if name not in ("itemknn", "mostpop", "ease", "gf-cf", "bspm") else "train:\n  threads: 1\n  progress: false\n"
    text = "text:\n  batch_size: 32\n" if name in ("lightgcn", "graphsage") else ""
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"name: shop-{name}\ndataset:\n  name: shop\n  format: csv\n  path: {data / 'clicks.csv'}\n"
                   "  columns: {user: uid, item: sku, rating: stars, timestamp: ts}\n"
                   f"  items: {{path: {data / 'items.csv'}, id: sku, text: [title, description], "
                   f"attributes: [category, brand]}}\nsplit:\n  seed: 3\n{MODELS[name]}{train}{text}")
    run_dir, _ = run_experiment(load_config(exp), tmp_path / "run", log=lambda *_: None)
    _, prepared, model = load_run(run_dir)
    reference = Recommender(model, prepared.dataset.users, prepared.dataset.items, seen=prepared.interacted)
    return run_dir, data, reference, prepared


@pytest.mark.parametrize("name", list(MODELS))
def test_bundle_serves_with_the_data_deleted(tmp_path, name):
    run_dir, data, reference, _ = shop_run(tmp_path, name)
    users = ["u0", "u7", "u29"]
    want = reference.recommend(users, k=5)
    shutil.rmtree(data)  # the dataset is gone
    model = graphrec.load(run_dir)
    got = model.recommend(users, k=5)
    assert got[0].tolist() == want[0].tolist()
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)
    ids, _ = model.recommend_for_history(["sku1", "sku2"], k=3)
    assert len(ids) == 3 and not {"sku1", "sku2"} & set(ids.tolist())
    similar, _ = model.similar_items("sku9", k=4)
    assert len(similar) == 4 and "sku9" not in similar.tolist()
    assert model.item_label("sku9") == "Product 9"
    if name != "mostpop":
        ex = model.explain("u0", ids[0])
        assert ex.text() and np.isfinite(ex.score)
        assert sum(c.value for c in ex.via) == pytest.approx(ex.difference, abs=1e-5)
    else:
        with pytest.raises(graphrec.ConfigError, match="has no graph explanation"):
            model.explain("u0", "sku1")


def test_cli_recommends_and_explains_from_the_bundle(tmp_path, capsys):
    run_dir, data, reference, _ = shop_run(tmp_path, "lightgcn")
    shutil.rmtree(data)
    assert main(["recommend", str(run_dir), "--user", "u3", "--k", "3", "--explain"]) == 0
    out = capsys.readouterr().out
    first = reference.recommend("u3", k=3)[0][0]
    assert f"  1. item {first}" in out and "Product" in out and "is your top recommendation" in out
    assert main(["explain", str(run_dir), "--user", "u3", "--out", str(tmp_path / "why.json")]) == 0
    saved = json.loads((tmp_path / "why.json").read_text())
    assert saved["user"] == "user:23" and any(n.get("raw_id") == "u3" for n in saved["nodes"])


@pytest.fixture
def bundled(tmp_path):
    run_dir, _, _, _ = shop_run(tmp_path, "itemknn")
    return run_dir


def test_damaged_bundles_are_named(bundled):
    weights = bundled / "weights.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[: len(original) // 2])  # truncated
    with pytest.raises(GraphrecError, match=r"weights\.safetensors: checksum differs from bundle\.json's"):
        graphrec.load(bundled)
    meta = json.loads((bundled / "bundle.json").read_text())
    import hashlib

    meta["files"]["weights.safetensors"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (bundled / "bundle.json").write_text(json.dumps(meta))  # a truncated file whose checksum was recorded
    with pytest.raises(GraphrecError, match=r"weights\.safetensors: not a readable safetensors file"):
        graphrec.load(bundled)
    weights.write_bytes(original)
    meta["files"]["weights.safetensors"] = hashlib.sha256(original).hexdigest()
    meta["format_version"] = 99
    (bundled / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(GraphrecError, match=r"bundle\.json: bundle format 99 is newer than this graphrec reads \(1\)"):
        graphrec.load(bundled)
    (bundled / "bundle.json").write_text("{\"format_version\": 1, ")
    with pytest.raises(GraphrecError, match=r"bundle\.json: not a valid bundle description"):
        graphrec.load(bundled)
    (bundled / "arrays.safetensors").unlink()
    (bundled / "bundle.json").write_text(json.dumps({**meta, "format_version": 1}))
    with pytest.raises(GraphrecError, match=r"arrays\.safetensors: missing; the bundle is incomplete"):
        graphrec.load(bundled)


def test_recommend_with_explanations_refuses_a_model_without_them_before_printing(tmp_path, capsys):
    run_dir, _, _, _ = shop_run(tmp_path, "mostpop")
    assert main(["recommend", str(run_dir), "--user", "u1", "--k", "3", "--explain"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "MostPopular has no graph explanation" in err


def test_explanations_say_rated_only_where_the_data_had_ratings(bundled):
    model = graphrec.load(bundled)
    assert model.verb == "rated"  # the shop log has its stars column
    dataset = model.meta["provenance"]["config"]["dataset"]
    dataset["columns"]["rating"] = None  # a log of clicks
    assert model.verb == "interacted with"
    assert "because you interacted with" in model.explain("u1", model.recommend("u1", k=1)[0][0]).text() or \
        "the items you interacted with" in model.explain("u1", model.recommend("u1", k=1)[0][0]).text()
    dataset.update(format="movielens")
    assert model.verb == "rated"


def test_an_item_weights_model_explains_from_its_bundle(bundled, capsys):
    assert main(["recommend", str(bundled), "--user", "u1", "--k", "2", "--explain"]) == 0  # ItemKNN
    out = capsys.readouterr().out
    assert out.count("because you rated") + out.count("from many of the items you rated") >= 1, out
    assert main(["explain", str(bundled), "--user", "u1"]) == 0
    out = capsys.readouterr().out
    assert "ItemKNN (item-weights)" in out and "by history item:" in out


def test_a_run_without_bundle_gets_one(bundled, capsys):
    want = graphrec.load(bundled).recommend("u1", k=3)[0].tolist()
    for f in BUNDLE_FILES:
        (bundled / f).unlink()
    with pytest.raises(GraphrecError, match=r"bundle\.json: no bundle there \(written before bundles existed"):
        graphrec.load(bundled)
    assert main(["recommend", str(bundled), "--user", "u1", "--k", "3"]) == 0  # writes it once from the data
    assert "no bundle yet" in capsys.readouterr().err
    assert graphrec.load(bundled).recommend("u1", k=3)[0].tolist() == want
    export_bundle(bundled)  # idempotent


def test_a_deployed_model_leaves_out_every_item_a_user_has(tmp_path):
    """The bundle's seen items are the whole log's: test items were held out to measure the model, but the
    user has them, so they are neither recommended nor explained as a recommendation; an older bundle (train
    and valid only) is served with a warning."""
    run_dir, _, _, prepared = shop_run(tmp_path, "lightgcn")
    model = graphrec.load(run_dir)
    users, items = prepared.dataset.users.ids, prepared.dataset.items.ids
    u = int(np.argmax(np.diff(prepared.test.indptr)))  # a user with test items
    held_out = items[prepared.test[u].indices].tolist()
    assert held_out
    listed = [x for x in model.recommend(users[u], k=len(items))[0].tolist() if x is not None]  # None: no more
    has = set(items[prepared.interacted[u].indices].tolist())
    assert not has & set(listed) and len(listed) == len(items) - len(has)
    ex = model.explain(users[u], held_out[0])
    assert ex.seen and ex.rank is None
    meta = json.loads((run_dir / "bundle.json").read_text())
    del meta["seen"]
    (run_dir / "bundle.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"bundle\.json: written before bundles left out every item a user has"):
        graphrec.load(run_dir)


@pytest.mark.parametrize("command", ["recommend", "explain"])
def test_a_closed_pipe_stops_the_cli_quietly_and_keeps_its_file(tmp_path, command):
    """``graphrec recommend ... | head``: the reader is gone before the first line; no traceback, exit 141
    (as SIGPIPE would give); explain --out writes its file before printing."""
    import subprocess
    import sys
    from pathlib import Path

    run_dir, _, _, _ = shop_run(tmp_path, "itemknn" if command == "recommend" else "lightgcn")
    out = tmp_path / "why.json"
    args = ["--user", "u1", "--k", "5"] if command == "recommend" else ["--user", "u1", "--item", "sku1", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "graphrec", command, str(run_dir), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # the reader leaves before anything is printed
    err = proc.stderr.read().decode()
    assert proc.wait() == 141 and "Traceback" not in err, err
    if command == "explain":
        assert json.loads(out.read_text())["item"]


def test_nothing_is_pickled(bundled):
    assert not any(p.suffix in (".pkl", ".pickle") for p in bundled.iterdir())
    from safetensors.torch import load_file

    assert all(isinstance(t, torch.Tensor) for t in load_file(str(bundled / "arrays.safetensors")).values())


def test_library_sorted_titles_of_an_older_bundle_are_shown_as_read(bundled):
    meta = json.loads((bundled / "bundle.json").read_text())
    labels = meta["nodes"]["item"]["labels"]
    labels[9] = "Shining, The (1980)"  # as bundles stored MovieLens titles before
    labels[3] = labels[4] = "Money Talks (1997)"  # one film under two ids, as ML-100K lists 18
    (bundled / "bundle.json").write_text(json.dumps(meta))
    graph = graphrec.load(bundled).graph
    shown, ids = graph.node_labels["item"], graph.node_raw_ids["item"]
    assert shown[9] == "The Shining (1980)"
    assert shown[3:5] == [f"Money Talks (1997) [item {ids[3]}]", f"Money Talks (1997) [item {ids[4]}]"]


def test_tensors_are_written_from_their_own_memory_and_shared_ones_once_each(tmp_path, monkeypatch):
    """One storage under two names (an edge type and its reverse), a slice of it, a lone slice at an offset of
    another storage, an empty tensor and a transposed (non-contiguous) one round-trip; only the second name of
    the shared storage, its slice and the transposed tensor are copied."""
    import safetensors.torch
    from safetensors.torch import load_file

    from graphrec.run.bundle import _save_tensors

    base = torch.arange(12, dtype=torch.int64).view(2, 6)
    tensors = {"edge": base, "rev": base, "tail": base.view(-1)[7:], "none": torch.empty(0),
               "t": torch.arange(6.0).view(2, 3).t(), "lone": torch.arange(10.0)[3:]}
    written = {}
    save_file = safetensors.torch.save_file

    def spy(out, filename, *args, **kwargs):
        written.update({k: v.data_ptr() for k, v in out.items()})
        return save_file(out, filename, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", spy)
    path = tmp_path / "a.safetensors"
    _save_tensors(tensors, path)
    same = {k for k, v in tensors.items() if v.numel() and written[k] == v.data_ptr()}
    assert same == {"edge", "lone"}
    back = load_file(path)
    assert sorted(back) == sorted(tensors)
    for key, value in tensors.items():
        assert torch.equal(back[key], value), key
    assert tensors["edge"] is base  # the caller's tensors are left as they were
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # not the 0600 safetensors gives its own files
