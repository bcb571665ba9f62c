"""A small end-to-end run on ML-100K: the loss falls and LightGCN beats MostPopular by far."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from graphrec.cli import main
from graphrec.run import load_config, load_run, run_experiment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    base = tmp_path_factory.mktemp("runs")
    data = {"dataset.data_dir": str(data_dir)}
    over = {"mostpop": data, "lightgcn": {**data, "train.epochs": 6, "train.lr": 0.01, "train.progress": False}}
    out = {}
    for name in ("mostpop", "lightgcn"):
        cfg = load_config(f"experiments/ml100k-{name}.yaml", over[name])
        out[name] = run_experiment(cfg, base / name, log=lambda *_: None)
    return out


def test_loss_falls_and_beats_most_popular(runs):
    run_dir, metrics = runs["lightgcn"]
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history) == 6
    assert history[-1]["loss"] < 0.7 * history[0]["loss"]
    pop = runs["mostpop"][1]["test"]["recall@20"]
    assert metrics["test"]["recall@20"] > pop + 0.03


def test_run_directory(runs):
    run_dir, metrics = runs["lightgcn"]
    for f in ("config.yaml", "metrics.json", "history.json", "history.csv", "best.pt", "last.pt", "curve.png"):
        assert (run_dir / f).is_file(), f
    assert json.loads((run_dir / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    with Image.open(run_dir / "curve.png") as im:
        assert im.format == "PNG" and im.size[0] > 400
    assert {"recall@20", "ndcg@20", "coverage@20", "novelty@20", "diversity@20", "recall@20[cold-items]"} <= set(metrics["test"])
    # the test metrics per user: their means are the reported figures (what a paired test compares)
    per_user = np.load(run_dir / "test_per_user.npz")
    assert len(per_user["users"]) == len(set(per_user["users"].tolist())) > 900
    for key in ("recall@20", "ndcg@10"):
        assert per_user[key].mean() == pytest.approx(metrics["test"][key], abs=1e-6)


def test_load_run_rebuilds_best_model(runs):
    run_dir, metrics = runs["lightgcn"]
    from graphrec.run import evaluators

    config, data, model = load_run(run_dir)
    _, test_ev = evaluators(config, data)
    assert test_ev.evaluate(model)["recall@20"] == pytest.approx(metrics["test"]["recall@20"], abs=1e-6)


def test_cli_reports_config_errors_before_work(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: lightgcn\n  layers: 3\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "model: lightgcn has no key(s) ['layers']; its keys: ['dim', 'num_layers'," in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_graphsage_run_with_attributes(tmp_path, data_dir):
    over = {"dataset.data_dir": str(data_dir), "train.epochs": 3, "train.progress": False, "train.batch_size": 8192,
            "train.lr": 0.01, "model.dim": 16, "model.fanouts": [5, 3]}
    cfg = load_config("experiments/ml100k-graphsage-attrs.yaml", over)
    run_dir, metrics = run_experiment(cfg, tmp_path / "sage", log=lambda *_: None)
    # chance is 0.0127 (a constant or broken model scores it); 30 steps learn ~0.08
    assert metrics["epochs_run"] == 3 and metrics["test"]["recall@20"] > 0.05
    config, data, model = load_run(run_dir)
    assert config.model.name == "graphsage" and type(model).__name__ == "GraphSAGE"
    assert {"genre", "decade", "occupation", "age", "gender"} <= set(data.graph.node_types)
    assert data.graph["item"].x.shape == (1682, 384) and data.graph["user"].x.shape == (943, 384)
    # its explanation: integrated gradients over the real computation subgraph; every edge is a graph edge
    from graphrec.explain import Explainer
    from tests.explain.test_explainer import assert_edges_exist

    ex = Explainer(model, data.graph, steps=8).explain(196, 50)
    assert ex.method == "integrated-gradients"
    from tests.explain.test_explainer import sage_scores_with_and_without_messages

    u, i = data.dataset.users.index(196), data.dataset.items.index(50)
    f1, f0 = sage_scores_with_and_without_messages(model, u, i)
    edges = sum(c.value for c in (*ex.contributions, *ex.remainder) if c.group == "edge")
    assert abs(edges - (f1 - f0)) < 0.05 * abs(f1 - f0), (edges, f1 - f0)
    assert_edges_exist(ex, data.graph)
    assert ex.node(ex.item).label == "Star Wars (1977)"


def test_cli_run_and_resume(tmp_path, data_dir, capsys):
    args = ["run", "experiments/ml100k-mf-bpr.yaml", "--set", f"dataset.data_dir={data_dir}", "--set", "model.dim=8", "--quiet"]
    assert main([*args, "--set", "train.epochs=2", "--out", str(tmp_path / "r")]) == 0
    assert "recall@20" in capsys.readouterr().out
    first = json.loads((tmp_path / "r" / "history.json").read_text())
    # a longer budget on the same run directory continues from epoch 3
    assert main([*args, "--set", "train.epochs=3", "--resume", str(tmp_path / "r")]) == 0
    history = json.loads((tmp_path / "r" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[:2] == first


def test_cli_recommend_from_run(runs, capsys):
    run_dir, _ = runs["lightgcn"]
    assert main(["recommend", str(run_dir), "--user", "196", "--k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("top 3 for user 196 (LightGCN")
    assert len(out) == 4 and out[1].lstrip().startswith("1. item")
    assert main(["recommend", str(run_dir), "--user", "99999"]) == 2
    assert "unknown user id(s): 99999" in capsys.readouterr().err


def test_cli_recommend_with_explanations(runs, capsys):
    run_dir, _ = runs["lightgcn"]
    assert main(["recommend", str(run_dir), "--user", "196", "--k", "2", "--explain"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 5
    for line in (out[2], out[4]):
        assert line.strip().startswith("\u201c") and ("for you" in line or "top recommendation" in line)


def test_cli_explain_writes_png_json_html(runs, tmp_path, capsys):
    from graphrec.explain import Explanation

    run_dir, _ = runs["lightgcn"]
    assert main(["explain", str(run_dir), "--user", "196", "--out", str(tmp_path / "why.png")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("\u201c") and "top recommendation" in out and "LightGCN (exact): score" in out
    assert "rank 1 " in out and "relative to the mean of your candidates" in out
    with Image.open(tmp_path / "why.png") as im:
        assert im.size[0] > 400
    assert main(["explain", str(run_dir), "--user", "196", "--item", "50", "--out", str(tmp_path / "why.json")]) == 0
    ex = Explanation.from_json((tmp_path / "why.json").read_text())
    assert ex.node(ex.item).raw_id == 50 and ex.node(ex.item).label == "Star Wars (1977)"
    assert abs(ex.total - ex.difference) < 1e-5
    assert main(["explain", str(run_dir), "--user", "196", "--item", "50", "--out", str(tmp_path / "why.html")]) == 0
    assert "Star Wars (1977)" in (tmp_path / "why.html").read_text()
    capsys.readouterr()
    assert main(["explain", str(run_dir), "--user", "196", "--item", "99999"]) == 2
    assert "unknown item id 99999" in capsys.readouterr().err
    assert main(["explain", str(run_dir), "--user", "196", "--out", str(tmp_path / "why.svg")]) == 2
    assert "unknown explanation format" in capsys.readouterr().err
    assert not (tmp_path / "why.svg").exists()


def test_mostpop_run_cannot_be_explained(runs, capsys):
    run_dir, _ = runs["mostpop"]
    assert main(["explain", str(run_dir), "--user", "196"]) == 2
    assert "MostPopular has no graph explanation" in capsys.readouterr().err


def test_lightgcn_over_genre_nodes_run_and_explanation(tmp_path, data_dir, runs):
    over = {"dataset.data_dir": str(data_dir), "train.epochs": 2, "train.lr": 0.01, "train.progress": False,
            "model.attribute_nodes": True, "graph.item_attributes": ["genre"]}
    cfg = load_config("experiments/ml100k-lightgcn.yaml", over)
    run_dir, metrics = run_experiment(cfg, tmp_path / "genres", log=lambda *_: None)
    assert metrics["test"]["recall@20"] > runs["mostpop"][1]["test"]["recall@20"] + 0.03
    _, data, model = load_run(run_dir)
    assert model.node_layout[2] == ("genre", 19) and data.adj.shape == (943 + 1682 + 19,) * 2
    from graphrec.explain import Explainer

    ex = Explainer(model, data.graph).explain(196, 50)
    assert abs(ex.total - ex.difference) < 1e-5
    assert {n.label for n in ex.nodes if n.role == "attribute"} <= {"Action", "Adventure", "Romance", "Sci-Fi", "War"}
    assert any(n.role == "attribute" and n.importance != 0 for n in ex.nodes)


def test_no_held_out_tag_reaches_the_item_texts(data_dir, monkeypatch):
    """ml-latest-small, seed-2020 split: tags applied only on valid/test pairs are in no encoded text."""
    import numpy as np

    import graphrec.run.pipeline as pipeline
    from graphrec.run import prepare

    texts: list[str] = []

    class Recorder:
        def __init__(self, *args, **kwargs):
            pass

        def encode(self, batch):
            import torch

            texts.extend(batch)
            return torch.zeros(len(batch), 4)

    monkeypatch.setattr(pipeline, "TextEncoder", Recorder)
    cfg = load_config("experiments/mlsmall-text-lightgcn.yaml", {"dataset.data_dir": str(data_dir)})
    data = prepare(cfg)
    ds, split = data.dataset, data.split
    tags = ds.tag_assignments.assign(tag=ds.tag_assignments["tag"].str.lower())
    held = ds.interactions.pair_keys(ds.num_items)[np.concatenate([split.valid, split.test])]
    on_held = np.isin(tags["user"].to_numpy() * ds.num_items + tags["item"].to_numpy(), held)
    assert on_held.sum() > 500  # the channel this test closes is real: hundreds of such applications
    only_held = set(tags["tag"][on_held]) - set(tags["tag"][~on_held])
    encoded_tags = {tag for t in texts if ". Tags: " in t for tag in t.split(". Tags: ", 1)[1].split(", ")}
    assert len(texts) == ds.num_items and len(encoded_tags) > 100
    assert not encoded_tags & only_held


def test_fixed_split_without_valid_trains_every_epoch_and_serves(tmp_path, data_dir, capsys):
    """u1.base / u1.test has no valid part: train the configured epochs, keep the last, recommend and explain."""
    over = {"dataset.data_dir": str(data_dir), "split.method": "fixed", "split.fixed": "u1", "train.epochs": 3,
            "train.patience": 1, "train.progress": False, "model.dim": 8}
    cfg = load_config("experiments/ml100k-lightgcn.yaml", over)
    run_dir, metrics = run_experiment(cfg, tmp_path / "u1", log=lambda *_: None)
    assert metrics["valid"] is None and metrics["epochs_run"] == 3 and metrics["best_epoch"] == 3
    assert json.loads((run_dir / "metrics.json").read_text())["valid"] is None  # null, not NaN
    assert [h["epoch"] for h in json.loads((run_dir / "history.json").read_text())] == [1, 2, 3]
    import torch

    assert torch.load(run_dir / "best.pt", weights_only=True)["epoch"] == 3
    assert main(["recommend", str(run_dir), "--user", "1", "--k", "3"]) == 0
    assert main(["explain", str(run_dir), "--user", "1"]) == 0
    assert "top recommendation" in capsys.readouterr().out


def test_run_directory_rules(tmp_path, data_dir, capsys):
    args = ["run", "experiments/ml100k-mostpop.yaml", "--set", f"dataset.data_dir={data_dir}"]
    out = tmp_path / "r"
    assert main([*args, "--out", str(out)]) == 0
    before = (out / "metrics.json").read_bytes()
    # an existing run is never mixed with a new one
    assert main([*args, "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "metrics.json").read_bytes() == before
    assert main([*args, "--out", str(out), "--overwrite"]) == 0
    # files get the mode the umask gives any new file, not mkstemp's 0600
    mask = os.umask(0)
    os.umask(mask)
    assert (out / "metrics.json").stat().st_mode & 0o777 == 0o666 & ~mask
    # --resume of nothing, of a different configuration
    assert main(["run", "--resume", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert main(["run", "experiments/ml100k-itemknn.yaml", "--set", f"dataset.data_dir={data_dir}", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert "differs from the run's own config.yaml" in err and "model.name: 'mostpop' -> 'itemknn'" in err
    assert (out / "config.yaml").read_text().count("mostpop") >= 1  # never overwritten


def test_resume_takes_the_runs_own_configuration(tmp_path, data_dir):
    args = ["run", "experiments/ml100k-mf-bpr.yaml", "--set", f"dataset.data_dir={data_dir}", "--set", "model.dim=8", "--quiet"]
    out = tmp_path / "r"
    assert main([*args, "--set", "train.epochs=2", "--out", str(out)]) == 0
    saved = (out / "config.yaml").read_text()
    assert main(["run", "--resume", str(out), "--set", "train.epochs=3", "--quiet"]) == 0  # no CONFIG: the run's own
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1, 2, 3]
    # the raised budget is recorded as the run's own (it was left at 2 while 3 epochs ran)
    assert (out / "config.yaml").read_text() == saved.replace("epochs: 2", "epochs: 3")
    assert json.loads((out / "metrics.json").read_text())["resumed_with"] == {"train.epochs": 3, "config.yaml": 2}
    assert main(["run", "--resume", str(out), "--set", "train.lr=0.1"]) == 2  # only train.epochs may change
    assert main(["run", "--resume", str(out), "--set", "train.epochs=2"]) == 2  # nor fall below what ran


def test_cli_mistakes_are_named_errors_not_tracebacks(runs, tmp_path, capsys):
    run_dir, _ = runs["lightgcn"]
    for k, message in (("0", "k must be in [1, 1682]"), ("5000", "k must be in [1, 1682]")):
        assert main(["recommend", str(run_dir), "--user", "196", "--k", k]) == 2
        assert message in capsys.readouterr().err
    empty = tmp_path / "unfinished"
    empty.mkdir()
    (empty / "config.yaml").write_text((run_dir / "config.yaml").read_text())
    assert main(["recommend", str(empty), "--user", "196"]) == 2
    assert "no best.pt there" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: lightgcn\ntrain:\n  device: gpu\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "train.device: 'gpu' is not a device" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_run_written_by_0_1_with_every_default_still_loads(runs, tmp_path):
    """graphrec 0.1 saved every model's keys in config.yaml: such a run still recommends and resumes."""
    import shutil

    run_dir, _ = runs["lightgcn"]
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    text = (old / "config.yaml").read_text().replace("model:\n  name: lightgcn\n", "model:\n  name: lightgcn\n  k: 100\n")
    (old / "config.yaml").write_text(text)
    config, _, model = load_run(old)
    assert config.model.name == "lightgcn" and type(model).__name__ == "LightGCN"
    with pytest.raises(Exception, match=r"lightgcn has no key\(s\) \['k'\]"):
        load_config(old / "config.yaml")  # an experiment file is still held to every key
