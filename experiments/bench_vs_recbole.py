"""graphrec's LightGCN against RecBole 1.2.1's, on identical split files, in one run.

1. Exports graphrec's ML-100K per-user random 80/10/10 split (seed 2020) as TSV.
2. Runs ``../shared/peers/recbole/run_lightgcn.py`` in RecBole's own venv
   (made by ``../shared/peers/recbole/setup.sh``) on those files.
3. Trains graphrec's LightGCN on the same files with the same hyperparameters
   (dim 64, 3 layers, batch 2048, Adam lr 0.001, reg 1e-4) for the same number
   of epochs, validating every epoch and testing the best-validation epoch,
   as the RecBole script does.
4. Prints both systems' test Recall@20 / NDCG@20 and the ratios graphrec/RecBole
   of the median training-epoch time and of the median full-ranking
   evaluation time (valid, every epoch).

Usage: python experiments/bench_vs_recbole.py [--epochs 50] [--threads 2] [--device cpu] [--data-dir DIR]
Last line: {"epochs": ..., "graphrec_recall@20": ..., "recbole_recall@20": ..., "graphrec_ndcg@20": ...,
            "recbole_ndcg@20": ..., "epoch_time_ratio": ..., "eval_time_ratio": ...}
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from graphrec.data import Dataset, Interactions, Split, Vocabulary, load_movielens, random_split
from graphrec.eval import Evaluator, to_csr
from graphrec.graph import normalized_adjacency
from graphrec.nn import LightGCN
from graphrec.train import TrainConfig, Trainer

REPO = Path(__file__).resolve().parents[1]
PEER = REPO.parent / "shared" / "peers" / "recbole"


def dataset_from_tsv(paths: dict[str, Path]) -> Split:
    """The split as graphrec reads it back from the exported files (what RecBole reads too)."""
    frames = {name: pd.read_csv(p, sep="\t", dtype={"user": str, "item": str}) for name, p in paths.items()}
    allf = pd.concat(frames.values(), ignore_index=True)
    users = Vocabulary(sorted(allf["user"].unique()), "user")
    items = Vocabulary(sorted(allf["item"].unique()), "item")
    inter = Interactions(users.encode(allf["user"].to_numpy()), items.encode(allf["item"].to_numpy()),
                         np.ones(len(allf), np.float32), allf["timestamp"].to_numpy())
    ds = Dataset("ml-100k-tsv", inter, users, items, implicit=True)
    sizes = np.cumsum([len(frames[n]) for n in ("train", "valid", "test")])
    return Split(ds, np.arange(sizes[0]), np.arange(sizes[0], sizes[1]), np.arange(sizes[1], sizes[2]), "exported")


def run_recbole(paths: dict[str, Path], a: argparse.Namespace) -> dict:
    venv = subprocess.run(["bash", str(PEER / "setup.sh")], check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    cmd = [f"{venv}/bin/python", str(PEER / "run_lightgcn.py"), "--train", str(paths["train"]), "--valid", str(paths["valid"]),
           "--test", str(paths["test"]), "--epochs", str(a.epochs), "--threads", str(a.threads), "--seed", "2020"]
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"RecBole failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - t
    return result


def run_graphrec(split: Split, a: argparse.Namespace) -> dict:
    torch.set_num_threads(a.threads)
    ds = split.dataset
    n_users, n_items = ds.num_users, ds.num_items
    parts = {n: split.part(n) for n in ("train", "valid", "test")}
    csr = {n: to_csr(p.user, p.item, n_users, n_items) for n, p in parts.items()}
    torch.manual_seed(2020)
    model = LightGCN(n_users, n_items, normalized_adjacency(csr["train"]), dim=64, num_layers=3, reg=1e-4)
    cfg = TrainConfig(epochs=a.epochs, batch_size=2048, lr=1e-3, seed=2020, patience=0, metric="ndcg@20",
                      progress=False, device=a.device)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(model, csr["train"], Evaluator(csr["valid"], csr["train"], ks=(20,), metrics=("recall", "ndcg")),
                          cfg, run_dir)
        t = time.perf_counter()
        history = trainer.fit()
        wall = time.perf_counter() - t
        trainer.load_best()
    test_ev = Evaluator(csr["test"], (csr["train"] + csr["valid"]).tocsr(), ks=(20,), metrics=("recall", "ndcg"))
    t = time.perf_counter()
    test = test_ev.evaluate(trainer.model)
    test_s = time.perf_counter() - t
    return {"epoch_seconds": [h["train_seconds"] for h in history], "valid_eval_seconds": [h["eval_seconds"] for h in history],
            "test_eval_seconds": test_s, "best_epoch": trainer.best_epoch - 1, "test_recall@20": test["recall@20"],
            "test_ndcg@20": test["ndcg@20"], "wall_seconds": wall, "users": n_users, "items": n_items}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="graphrec's device (RecBole's script runs on the CPU)")
    p.add_argument("--data-dir", default=None)
    a = p.parse_args()
    split = random_split(load_movielens("ml-100k", a.data_dir, download=False), (0.8, 0.1, 0.1), seed=2020)
    with tempfile.TemporaryDirectory() as tmp:
        paths = split.export_tsv(tmp)
        sizes = {n: sum(1 for _ in open(p)) - 1 for n, p in paths.items()}
        print(f"ML-100K random 80/10/10 seed 2020: {sizes}; {a.epochs} epochs; {a.threads} threads")
        same = dataset_from_tsv(paths)
        ours = run_graphrec(same, a)
        theirs = run_recbole(paths, a)
    med = statistics.median
    rows = [
        ("test Recall@20 (best valid epoch)", ours["test_recall@20"], theirs["test_recall@20"]),
        ("test NDCG@20", ours["test_ndcg@20"], theirs["test_ndcg@20"]),
        ("median train epoch (s)", med(ours["epoch_seconds"]), med(theirs["epoch_seconds"])),
        ("median valid full-ranking eval (s)", med(ours["valid_eval_seconds"]), med(theirs["valid_eval_seconds"])),
        ("test full-ranking eval (s)", ours["test_eval_seconds"], theirs["test_eval_seconds"]),
        ("best epoch (0-based)", ours["best_epoch"], theirs["best_epoch"]),
    ]
    print(f"{'':38}{'graphrec':>12}{'RecBole':>12}{'ratio':>9}")
    for label, g, r in rows:
        ratio = g / r if r else float("nan")
        print(f"{label:38}{g:>12.4f}{r:>12.4f}{ratio:>9.3f}")
    print(f"users/items: graphrec {ours['users']}/{ours['items']}, RecBole {theirs['users']}/{theirs['items']}")
    result = {
        "epochs": a.epochs,
        "graphrec_recall@20": round(ours["test_recall@20"], 4), "recbole_recall@20": round(theirs["test_recall@20"], 4),
        "graphrec_ndcg@20": round(ours["test_ndcg@20"], 4), "recbole_ndcg@20": round(theirs["test_ndcg@20"], 4),
        "epoch_time_ratio": round(med(ours["epoch_seconds"]) / med(theirs["epoch_seconds"]), 3),
        "eval_time_ratio": round(med(ours["valid_eval_seconds"]) / med(theirs["valid_eval_seconds"]), 3),
    }
    print("goals: recall >= RecBole's - 0.005; epoch time ratio <= 0.25; eval time ratio <= 0.5")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
