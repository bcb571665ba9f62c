"""experiments/compare.py --collect: runs are paired only when they share a split, and the header says which."""

import json
import subprocess
import sys

import numpy as np
import yaml

from tests.conftest import REPO

SCRIPT = REPO / "experiments" / "compare.py"


def fake_run(root, name, model, split, seed=2020, recall=(0.5, 0.25, 0.0)):
    """A finished run directory as graphrec run writes it: config.yaml, metrics.json, test_per_user.npz."""
    run = root / f"{name}-{seed}"
    run.mkdir()
    run.joinpath("config.yaml").write_text(yaml.safe_dump({
        "name": name, "dataset": {"name": "ml-100k"}, "split": {**split, "seed": seed},
        "model": {"name": model}, "train": {"seed": seed, "epochs": 0, "patience": 0}}))
    test = {"recall@20": float(np.mean(recall)), "ndcg@20": float(np.mean(recall)) / 2}
    run.joinpath("metrics.json").write_text(json.dumps({"epochs_run": 0, "best_epoch": 0, "seconds": 1.0,
                                                        "test": test}))
    np.savez(run / "test_per_user.npz", users=np.arange(len(recall)), **{"recall@20": np.array(recall),
                                                                       "ndcg@20": np.array(recall) / 2})
    return run


def collect(*args):
    return subprocess.run([sys.executable, str(SCRIPT), "--collect", *args], capture_output=True, text=True,
                          cwd=REPO / "experiments")


RANDOM = {"method": "random", "ratios": [0.8, 0.1, 0.1], "shuffle": "global"}


def test_runs_of_one_split_are_tabled_and_paired(tmp_path):
    a = fake_run(tmp_path, "ml100k-ease", "ease", RANDOM)
    b = fake_run(tmp_path, "ml100k-itemknn", "itemknn", RANDOM, recall=(0.25, 0.25, 0.0))
    out = collect(str(a), str(b), "--out", str(tmp_path / "r.md"))
    assert out.returncode == 0, out.stderr
    table = (tmp_path / "r.md").read_text()
    assert "each seed sets the per-user random 80/10/10 split and the training" in table
    assert "**ease** vs itemknn (3 (seed, user) pairs)" in table
    assert "NOTES" not in table and "16 trials" not in table  # the committed table's remarks stay with it


def test_runs_of_different_splits_are_not_paired(tmp_path):
    a = fake_run(tmp_path, "ml100k-ease", "ease", RANDOM)
    b = fake_run(tmp_path, "ml100k-itemknn", "itemknn", {"method": "temporal", "ratios": [0.8, 0.1, 0.1]})
    out = collect(str(a), str(b), "--out", str(tmp_path / "r.md"))
    assert out.returncode != 0 and not (tmp_path / "r.md").exists()
    assert "ml-100k: the runs do not share a split, so they cannot be compared or paired" in out.stderr
    assert "temporal" in out.stderr and str(b) in out.stderr


def test_collect_needs_out_and_leaves_the_committed_table_alone(tmp_path):
    a = fake_run(tmp_path, "ml100k-ease", "ease", RANDOM)
    before = (REPO / "experiments" / "results.md").read_bytes()
    out = collect(str(a))
    assert out.returncode == 2 and "give --out" in out.stderr
    assert (REPO / "experiments" / "results.md").read_bytes() == before


def saved(path, model, split=None, recall=(0.5, 0.25, 0.0)):
    """A results JSON as an earlier call saved it (``split`` None: as saved before runs recorded theirs)."""
    run = {"seed": 2020, "config": f"experiments/ml100k-{model}.yaml", "budget": None, "epochs_run": 0,
           "best_epoch": 0, "seconds": 1.0, "test": {"recall@20": float(np.mean(recall))},
           "per_user": {"users": list(range(len(recall))), "recall@20": list(recall),
                        "ndcg@20": [x / 2 for x in recall]}}
    if split is not None:
        run["split"] = split
    path.write_text(json.dumps({"command": "c", "device": "d", "date": "2026-12-01",
                                "results": {f"ml-100k/ml100k-{model}": [run]}}))
    return path


def test_results_saved_before_runs_recorded_their_split_read_as_the_global_random_split(tmp_path):
    old = saved(tmp_path / "old.json", "ease")
    new = saved(tmp_path / "new.json", "itemknn", {"method": "random", "ratios": [0.8, 0.1, 0.1], "shuffle": "global",
                                                   "cold_fraction": 0.1, "fixed": None}, recall=(0.25, 0.25, 0.0))
    out = subprocess.run([sys.executable, str(SCRIPT), "--render", str(old), str(new), "--out", str(tmp_path / "r.md")],
                         capture_output=True, text=True, cwd=REPO / "experiments")
    assert out.returncode == 0, out.stderr
    assert "**ease** vs itemknn (3 (seed, user) pairs)" in (tmp_path / "r.md").read_text()
    grouped = saved(tmp_path / "grouped.json", "itemknn", {"method": "random", "ratios": [0.8, 0.1, 0.1],
                                                           "shuffle": "grouped"})
    out = subprocess.run([sys.executable, str(SCRIPT), "--render", str(old), str(grouped), "--out",
                          str(tmp_path / "r2.md")], capture_output=True, text=True, cwd=REPO / "experiments")
    assert out.returncode != 0 and "do not share a split" in out.stderr  # another draw of the split


def test_the_header_says_what_the_seed_sets(tmp_path):
    a = fake_run(tmp_path, "ml100k-ease", "ease", {"method": "temporal", "ratios": [0.8, 0.1, 0.1]})
    assert collect(str(a), "--out", str(tmp_path / "r.md")).returncode == 0
    assert "(the temporal split 0.8/0.1/0.1, the same for every seed; each seed sets the training)" in \
        (tmp_path / "r.md").read_text()
