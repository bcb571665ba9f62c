"""graphrec's LightGCN against LensKit's (``lenskit.graphs.lightgcn``, built on PyTorch Geometric) on identical
split files, over several seeds.

For each seed (default 2020, 2021, 2022), graphrec's per-user random 80/10/10
split of ML-100K with that seed is exported as TSV; both systems read those
files (graphrec reads them back, so both see the same users, items and rows).
Then, with dim 64, 3 layers, batch ``--batch`` (2048), Adam lr ``--lr``
(0.001), one uniform negative per train row, ``--epochs`` epochs (50) seeded
by the seed, validation (full ranking, NDCG@20) after every epoch, no early
stopping, and the test evaluated at the best-validation epoch (train and
valid items masked):

* ``graphrec``: graphrec's LightGCN as shipped, L2 ``reg · (||U_b||² +
  ||P_b||² + ||N_b||²) / (2B)`` on the batch's layer-0 rows, ``--reg`` 1e-4;
* ``lenskit``: LensKit 2025.8.1's LightGCN as shipped, in the closest
  configuration (``regularization=None``, i.e. plain Adam; LensKit's
  ``regularization`` is AdamW weight decay). What it cannot match: its L2 is
  PyG's fixed ``1e-4 · (2||U_b||² + ||P_b||² + ||N_b||²) / B`` (``--reg``
  cannot change it); PyG's Xavier initialisation over one [users + items, 64]
  table; negatives redrawn at most 10 times; and two defects of its trainer:
  it propagates over the user → item edges only, which PyG's in-degree
  normalisation turns into all-zero edge weights (every layer after 0 is
  zero: this is matrix factorisation with scores scaled by 1/16), and it never
  zeroes the gradients (each Adam step sees the sum of every gradient so far);
* ``lenskit_fixed``: the same with both defects fixed and graphrec's L2 term
  with ``--reg`` (``experiments/peers/lenskit_lightgcn.py --undirected
  --zero-grad --graphrec-reg``): the same objective as graphrec's, propagated
  by PyG's ``LGConv`` over both edge directions.

``--variants`` picks the LensKit runs (default both). LensKit's own
``train()`` has no per-epoch hook: its runner calls the trainer's
``train_epoch()`` itself, times it, and evaluates the scores LensKit's scorer
computes (checked against ``LightGCNScorer.__call__``) with numpy, using
graphrec's definitions (Recall@20 = hits / |held-out|; NDCG@20 with the ideal
list of min(|held-out|, 20) items; every item ranked but the user's known
ones).

Prints, per seed and over the seeds (mean ± sample std), test Recall@20 and
NDCG@20 of every run, then for each LensKit run: graphrec − LensKit and the
ratios graphrec / LensKit of Recall@20 and NDCG@20 (per seed, and of the
means), and the time ratio graphrec / LensKit of the median training epoch
(per seed: of the medians over epochs; overall: of the medians over every
epoch of every seed). Validation times are shown but not compared: LensKit's
is this script's numpy evaluation, not LensKit's.

Both processes run with ``--threads`` intra-op threads (``torch.set_num_threads``
in each; LensKit's ``lenskit.parallel.initialize`` with the same count; the
subprocess also gets ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS``) and the same
``OMP_WAIT_POLICY`` (PASSIVE unless set). LensKit runs in its own venv, built
by ``experiments/peers/setup_lenskit.sh`` (``--peer-venv``, or
``$LENSKIT_VENV``, or that script's default). Each run's line gives the
machine's load before and after it.

Everything printed is also written to ``--out`` (default
``experiments/results/bench_vs_lenskit.txt``); the last line is one JSON
object with every figure.

Usage: python experiments/bench_vs_lenskit.py [--epochs 50] [--seeds 2020 2021 2022] [--threads 2]
       [--variants lenskit lenskit_fixed] [--batch 2048] [--lr 0.001] [--reg 1e-4] [--device cpu]
       [--data-dir DIR] [--peer-venv DIR] [--out FILE]
"""

from __future__ import annotations

import os

# OpenMP reads this once, when torch loads; the peer subprocess gets the same value.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from bench_vs_recbole import (  # experiments/: scripts run from this folder
    K,
    diffs,
    exported_split,
    lightgcn_builder,
    mean_std,
    run_graphrec,
    run_line,
    run_summary,
    time_ratio,
)
from report import Report, peer_venv

import graphrec
from graphrec.data import load_movielens
from graphrec.nn import LightGCN

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"

#: LensKit run key -> (label, options of lenskit_lightgcn.py)
VARIANTS = {
    "lenskit": ("LensKit 2025.8.1, as shipped (Adam, PyG's L2)", []),
    "lenskit_fixed": ("LensKit 2025.8.1, fixed (undirected, zero_grad, graphrec's L2)",
                      ["--undirected", "--zero-grad", "--graphrec-reg"]),
}
GRAPHREC = "graphrec LightGCN (own L2, squared / 2B)"


def run_lenskit(venv: str, paths: dict[str, Path], seed: int, a: argparse.Namespace,
                options: list[str]) -> dict[str, Any]:
    """LensKit's LightGCN (experiments/peers/lenskit_lightgcn.py) on the split files; its JSON line, plus
    wall_seconds. Exits when it fails."""
    cmd = [str(Path(venv) / "bin" / "python"), str(PEERS / "lenskit_lightgcn.py"),
           "--train", str(paths["train"]), "--valid", str(paths["valid"]), "--test", str(paths["test"]),
           "--epochs", str(a.epochs), "--batch", str(a.batch), "--dim", "64", "--layers", "3", "--lr", str(a.lr),
           "--reg", str(a.reg), "--k", str(K), "--seed", str(seed), "--threads", str(a.threads), *options]
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"LensKit {' '.join(options)} exited with status {out.returncode}:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    return result


def ratios(xs: list[dict[str, Any]], ys: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """graphrec / peer of a test metric: per seed, and the ratio of the means."""
    per = [x[f"test_{metric}"] / y[f"test_{metric}"] for x, y in zip(xs, ys, strict=True)]
    of_means = statistics.mean(x[f"test_{metric}"] for x in xs) / statistics.mean(y[f"test_{metric}"] for y in ys)
    return {"per_seed": [round(v, 3) for v in per], "of_means": round(of_means, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--seeds", type=int, nargs="+", default=[2020, 2021, 2022],
                   help="each seed sets the split and both systems' training")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads of each process")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                   help="LensKit runs: as shipped, and with its two defects fixed and graphrec's L2")
    p.add_argument("--batch", type=int, default=2048, help="batch size of every run")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of every run")
    p.add_argument("--reg", type=float, default=1e-4,
                   help="L2 weight of graphrec and of lenskit_fixed (LensKit as shipped: PyG's fixed 1e-4)")
    p.add_argument("--device", default="cpu", help="graphrec's device (LensKit runs on the CPU)")
    p.add_argument("--data-dir", default=None, help="MovieLens folder (default $GRAPHREC_DATA_DIR)")
    p.add_argument("--peer-venv", default=None, help="LensKit's venv (default: setup_lenskit.sh's choice)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "bench_vs_lenskit.txt")
    a = p.parse_args()
    if a.threads < 1:
        p.error("--threads must be >= 1")
    if a.epochs < 1 or a.batch < 1:
        p.error("--epochs and --batch must be >= 1")
    variants = [v for v in VARIANTS if v in a.variants]

    say = Report()
    venv = peer_venv("setup_lenskit.sh", a.peer_venv)
    torch.set_num_threads(a.threads)
    data = load_movielens("ml-100k", a.data_dir, download=False)
    today = datetime.date.today().isoformat()
    say(f"# graphrec LightGCN vs LensKit 2025.8.1 LightGCN, {today}")
    say(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}; graphrec {getattr(graphrec, '__version__', '?')} on torch {torch.__version__} "
        f"({a.device}); LensKit's venv: {venv}")
    say(f"machine load (1-min average) at the start: {os.getloadavg()[0]:.2f}; each run's line gives it before -> after "
        "(other people's jobs share this machine; timings under load are less trustworthy)")
    say(f"threads: {a.threads} per process (torch.set_num_threads in both, lenskit.parallel.initialize; "
        f"OMP_NUM_THREADS=MKL_NUM_THREADS={a.threads} for LensKit); OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} "
        "for both")
    say(f"ML-100K per-user random 80/10/10, seeds {a.seeds}; dim 64, 3 layers, batch {a.batch}, Adam lr {a.lr:g}, "
        f"1 uniform negative per train row, {a.epochs} epochs, valid every epoch, test at the best-valid epoch")
    say("L2 on the batch's layer-0 rows (U_b, P_b, N_b: [B, 64] embeddings of users, positives, negatives):")
    say(f"  graphrec, LensKit fixed:   {a.reg:g} * (|U_b|^2 + |P_b|^2 + |N_b|^2) / (2B)")
    say("  LensKit as shipped (PyG): 1e-4 * (2|U_b|^2 + |P_b|^2 + |N_b|^2) / B   (fixed: LensKit passes no lambda_reg)")
    say("LensKit as shipped propagates over user->item edges only: PyG's LGConv normalises by in-degree, zero for "
        "every user, so every edge weight is 0 and layers 1-3 are zero (matrix factorisation, scores / 16); it also "
        "never zeroes the gradients. 'fixed' adds the item->user edges and zero_grad before each batch.")
    say("LensKit's epochs: trainer.train_epoch() timed one by one (LensKit's train() has no per-epoch hook); its "
        "scores evaluated with numpy, graphrec's metric definitions")

    labels = {"graphrec": GRAPHREC, **{v: VARIANTS[v][0] for v in variants}}
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in labels}
    width = max(len(label) for label in labels.values())

    for seed in a.seeds:
        with exported_split(data, seed, say) as (paths, same):
            for key in labels:
                load_before = os.getloadavg()[0]
                if key == "graphrec":
                    r = run_graphrec(same, seed, a, lightgcn_builder(LightGCN, a))
                else:
                    r = run_lenskit(venv, paths, seed, a, VARIANTS[key][1])
                r["load_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
                runs[key].append(r)
                say(run_line(labels[key], r, width))
                if key != "graphrec" and len(runs[key]) == 1:
                    say(f"  {'':{width}} settings: {json.dumps(r['config'])}")
                    say(f"  {'':{width}} max |score - LensKit scorer's| (two users, every item): "
                        f"{r['score_check_max_abs_diff']:.2e}")

    med = statistics.median
    seeds = ", ".join(map(str, a.seeds))
    say()
    say(f"## LightGCN, mean ± sample std over seeds {seeds} (test, best-valid epoch)")
    say()
    say("| system | test Recall@20 | test NDCG@20 | median train epoch | median valid eval | best epochs |")
    say("| --- | --- | --- | --- | --- | --- |")
    for key, label in labels.items():
        rs = runs[key]
        say(f"| {label} | {mean_std([r[f'test_recall@{K}'] for r in rs])} "
            f"| {mean_std([r[f'test_ndcg@{K}'] for r in rs])} "
            f"| {med([s for r in rs for s in r['epoch_seconds']]):.3f} s "
            f"| {med([s for r in rs for s in r['valid_eval_seconds']]):.4f} s "
            f"| {', '.join(str(r['best_epoch']) for r in rs)} |")
    say()
    say("## graphrec / LensKit: quality (Δ = graphrec − LensKit, mean ± sample std of the per-seed differences; "
        "ratio per seed and of the means) and time (median train epoch; overall: medians over every epoch of every "
        "seed)")
    say()
    say("| LensKit run | Δ Recall@20 | Δ NDCG@20 | Recall@20 ratio | NDCG@20 ratio | train epoch ratio per seed "
        "| train epoch ratio overall |")
    say("| --- | --- | --- | --- | --- | --- | --- |")
    g = runs["graphrec"]
    quality: dict[str, Any] = {}
    time_ratios: dict[str, Any] = {}
    for key in variants:
        peer = runs[key]
        d_rec, d_ndcg = diffs(g, peer, f"recall@{K}"), diffs(g, peer, f"ndcg@{K}")
        r_rec, r_ndcg = ratios(g, peer, f"recall@{K}"), ratios(g, peer, f"ndcg@{K}")
        ep = time_ratios[f"graphrec/{key} epoch_seconds"] = time_ratio(g, peer, "epoch_seconds")
        quality[f"graphrec-{key}"] = {f"recall@{K}": [round(v, 4) for v in d_rec],
                                      f"ndcg@{K}": [round(v, 4) for v in d_ndcg]}
        quality[f"graphrec/{key}"] = {f"recall@{K}": r_rec, f"ndcg@{K}": r_ndcg}
        say(f"| {labels[key]} | {mean_std(d_rec)} | {mean_std(d_ndcg)} "
            f"| {', '.join(f'{v:.3f}' for v in r_rec['per_seed'])} (means {r_rec['of_means']:.3f}) "
            f"| {', '.join(f'{v:.3f}' for v in r_ndcg['per_seed'])} (means {r_ndcg['of_means']:.3f}) "
            f"| {', '.join(f'{v:.3f}' for v in ep['per_seed'])} | {ep['overall']:.3f} |")
    say()
    say("Valid eval: graphrec's Evaluator against this benchmark's numpy evaluation of LensKit's embeddings (not "
        "LensKit's own code): shown, not compared.")

    summary: dict[str, Any] = {
        "date": today, "epochs": a.epochs, "seeds": a.seeds, "threads": a.threads, "batch": a.batch, "lr": a.lr,
        "reg": a.reg, "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "torch": torch.__version__,
        "lenskit": runs[variants[0]][0]["lenskit"] if variants else None,
        "torch_geometric": runs[variants[0]][0]["torch_geometric"] if variants else None,
        "runs": {key: run_summary(labels[key], rs) for key, rs in runs.items()},
        "ratios": time_ratios, "quality": quality,
    }
    say(json.dumps(summary))
    say.save(a.out)


if __name__ == "__main__":
    main()
