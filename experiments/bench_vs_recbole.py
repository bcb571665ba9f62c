"""graphrec's LightGCN against RecBole 1.2.1's, on identical split files, over several seeds.

For each seed (default 2020, 2021, 2022):

1. graphrec's per-user random 80/10/10 split of ML-100K with that seed is
   exported as TSV; both systems read those files (graphrec reads them back,
   so both see the same users, items and rows).
2. Four runs, each with dim 64, 3 layers, batch 2048, Adam lr 0.001, L2
   weight ``--reg`` (1e-4), ``--epochs`` epochs (50) seeded by the seed,
   validation (full ranking, NDCG@20) every epoch, no early stopping, and the
   test evaluated at the best-validation epoch (train and valid items masked):

   * ``graphrec``: graphrec's LightGCN with its own regulariser;
   * ``RecBole, require_pow``: RecBole with ``require_pow=True``, which is
     graphrec's regulariser term for term (see below);
   * ``graphrec, RecBole reg``: graphrec's LightGCN with RecBole's default
     regulariser (:class:`LightGCNRecBoleReg` below: graphrec has no option
     for it, so this script subclasses the model and changes only the L2 term);
   * ``RecBole, default``: RecBole's LightGCN as shipped (``require_pow=False``).

   The regularisers, with ``B`` the batch size and ``U_b, P_b, N_b`` the
   ``[B, 64]`` layer-0 (pre-propagation) embeddings of the batch's users,
   positive items and negative items (rows repeat when an id repeats):

   * graphrec (``graphrec/nn/lightgcn.py`` ``LightGCN.loss``; the same form as
     ``graphrec.nn.l2_reg``): ``reg · (||U_b||²_F + ||P_b||²_F + ||N_b||²_F) / (2B)``;
   * RecBole 1.2.1 default (``LightGCN.calculate_loss`` → ``EmbLoss(norm=2)``
     with ``require_pow=False``): ``reg · (||U_b||_F + ||P_b||_F + ||N_b||_F) / B``,
     Frobenius norms not squared, so its gradient ``reg · U_b / (B ||U_b||_F)``
     shrinks as the embeddings grow;
   * RecBole with ``require_pow=True``: ``reg · (||U_b||²_F + ||P_b||²_F + ||N_b||²_F) / B / 2``,
     identical to graphrec's.

   Both add it to BPR on the propagated embeddings, averaged over the batch
   (graphrec ``softplus(s⁻ − s⁺)``, RecBole ``−log(1e-10 + σ(s⁺ − s⁻))``).

3. Prints, per seed and over the seeds (mean ± sample std), test Recall@20 and
   NDCG@20 of every run, the differences graphrec − RecBole for the two pairs
   with the same objective, and the time ratios of graphrec as shipped over
   RecBole (with ``require_pow=True``, the same objective, and as shipped) of
   the median training epoch and of the median full-ranking valid evaluation;
   "overall" is the ratio of the medians over every epoch of every seed.

Both processes run with ``--threads`` intra-op threads (``torch.set_num_threads``
in each; the RecBole subprocess also gets ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS``) and the same ``OMP_WAIT_POLICY`` (PASSIVE unless set).
RecBole runs in its own venv, built by ``experiments/peers/setup_recbole.sh``
(``--peer-venv``, or ``$RECBOLE_VENV``, or that script's default), with
``experiments/peers/recbole_lightgcn.py``.

Everything printed is also written to ``--out`` (default
``experiments/results/bench_vs_recbole.txt``); the last line is one JSON object.

Usage: python experiments/bench_vs_recbole.py [--epochs 50] [--seeds 2020 2021 2022] [--threads 2]
       [--reg 1e-4] [--device cpu] [--data-dir DIR] [--peer-venv DIR] [--out FILE]
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
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from report import Report  # experiments/report.py: scripts run from this folder
from torch import Tensor

import graphrec
from graphrec.data import Dataset, Interactions, Split, Vocabulary, load_movielens, random_split
from graphrec.eval import Evaluator, to_csr
from graphrec.graph import normalized_adjacency
from graphrec.nn import LightGCN, bpr_loss, propagate
from graphrec.train import TrainConfig, Trainer

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
K = 20

#: run key -> (label in the tables, system, regulariser form)
RUNS = {
    "graphrec": ("graphrec, own reg (squared / 2B)", "graphrec", "squared"),
    "recbole_pow": ("RecBole 1.2.1, require_pow=True (= graphrec's reg)", "recbole", "squared"),
    "graphrec_rbreg": ("graphrec, RecBole's default reg (unsquared / B)", "graphrec", "unsquared"),
    "recbole": ("RecBole 1.2.1, default (require_pow=False)", "recbole", "unsquared"),
}
#: (graphrec run, RecBole run) with the same objective
PAIRS = [("graphrec", "recbole_pow"), ("graphrec_rbreg", "recbole")]
#: time ratios: graphrec as shipped against RecBole with the same objective, and against RecBole as shipped
#: (graphrec_rbreg's own extra gather of layer-0 rows is this script's, not graphrec's, so it is not timed against)
TIME_PAIRS = [("graphrec", "recbole_pow", "same objective"), ("graphrec", "recbole", "each as shipped")]


class LightGCNRecBoleReg(LightGCN):
    """graphrec's LightGCN with RecBole 1.2.1's default L2 term: ``reg · (||U_b||_F + ||P_b||_F + ||N_b||_F) / B``.

    Everything else (propagation, BPR, initialisation) is graphrec's.
    """

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        batch = users.shape[0]
        e0 = self.layer0_all()  # [N, D]
        final = propagate(self.adj, e0, self.alphas)  # [N, D]
        rows = torch.cat([users, pos_items + self.num_users, neg_items + self.num_users])  # [3B]
        e_u, e_p, e_n = final.index_select(0, rows).split(batch)  # [B, D] each
        rank = bpr_loss((e_u * e_p).sum(-1), (e_u * e_n).sum(-1))
        g_u, g_p, g_n = e0.index_select(0, rows).split(batch)  # layer 0, [B, D] each
        reg = (torch.linalg.vector_norm(g_u) + torch.linalg.vector_norm(g_p) + torch.linalg.vector_norm(g_n)) / batch
        return rank + self.reg * reg


def dataset_from_tsv(paths: dict[str, Path]) -> Split:
    """The split as graphrec reads it back from the exported files (what RecBole reads too)."""
    frames = {name: pd.read_csv(p, sep="\t", dtype={"user": str, "item": str}) for name, p in paths.items()}
    allf = pd.concat([frames[n] for n in ("train", "valid", "test")], ignore_index=True)
    users = Vocabulary(sorted(allf["user"].unique()), "user")
    items = Vocabulary(sorted(allf["item"].unique()), "item")
    inter = Interactions(users.encode(allf["user"].to_numpy()), items.encode(allf["item"].to_numpy()),
                         np.ones(len(allf), np.float32), allf["timestamp"].to_numpy())
    ds = Dataset("ml-100k-tsv", inter, users, items, implicit=True)
    sizes = np.cumsum([len(frames[n]) for n in ("train", "valid", "test")])
    return Split(ds, np.arange(sizes[0]), np.arange(sizes[0], sizes[1]), np.arange(sizes[1], sizes[2]), "exported")


def peer_venv(a: argparse.Namespace) -> str:
    """RecBole's venv: built (or found) by setup_recbole.sh, which prints its path last."""
    cmd = ["bash", str(PEERS / "setup_recbole.sh")] + ([a.peer_venv] if a.peer_venv else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1]


def run_recbole(venv: str, paths: dict[str, Path], seed: int, require_pow: bool, a: argparse.Namespace) -> dict[str, Any]:
    cmd = [str(Path(venv) / "bin" / "python"), str(PEERS / "recbole_lightgcn.py"),
           "--train", str(paths["train"]), "--valid", str(paths["valid"]), "--test", str(paths["test"]),
           "--epochs", str(a.epochs), "--batch", "2048", "--dim", "64", "--layers", "3", "--lr", "0.001",
           "--reg", str(a.reg), "--k", str(K), "--seed", str(seed), "--threads", str(a.threads)]
    if require_pow:
        cmd.append("--require-pow")
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}
    with tempfile.TemporaryDirectory() as cwd:  # RecBole writes log/ and log_tensorboard/ where it runs
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
        wall = time.perf_counter() - t
    if out.returncode != 0:
        sys.exit(f"RecBole failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    return result


def run_graphrec(split: Split, seed: int, model_cls: type[LightGCN], a: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(a.threads)
    ds = split.dataset
    n_users, n_items = ds.num_users, ds.num_items
    parts = {n: split.part(n) for n in ("train", "valid", "test")}
    csr = {n: to_csr(p.user, p.item, n_users, n_items) for n, p in parts.items()}
    torch.manual_seed(seed)
    model = model_cls(n_users, n_items, normalized_adjacency(csr["train"]), dim=64, num_layers=3, reg=a.reg)
    cfg = TrainConfig(epochs=a.epochs, batch_size=2048, lr=1e-3, seed=seed, patience=0, metric=f"ndcg@{K}",
                      progress=False, device=a.device, threads=a.threads)
    valid_ev = Evaluator(csr["valid"], csr["train"], ks=(K,), metrics=("recall", "ndcg"))
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(model, csr["train"], valid_ev, cfg, run_dir)
        t = time.perf_counter()
        history = trainer.fit()
        wall = time.perf_counter() - t
        trainer.load_best()
    test_ev = Evaluator(csr["test"], (csr["train"] + csr["valid"]).tocsr(), ks=(K,), metrics=("recall", "ndcg"))
    t = time.perf_counter()
    test = test_ev.evaluate(trainer.model)
    test_s = time.perf_counter() - t
    return {"threads": torch.get_num_threads(), "users": n_users, "items": n_items,
            "epoch_seconds": [h["train_seconds"] for h in history],
            "valid_eval_seconds": [h["eval_seconds"] for h in history], "test_eval_seconds": test_s,
            "losses": [h["loss"] for h in history], "best_epoch": trainer.best_epoch - 1,
            f"valid_ndcg@{K}": trainer.best_value,
            f"test_recall@{K}": test[f"recall@{K}"], f"test_ndcg@{K}": test[f"ndcg@{K}"], "wall_seconds": wall}


def mean_std(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.4f} ± {sd:.4f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--seeds", type=int, nargs="+", default=[2020, 2021, 2022],
                   help="each seed sets the split and both systems' training")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads of each process")
    p.add_argument("--reg", type=float, default=1e-4, help="L2 weight of every run")
    p.add_argument("--device", default="cpu", help="graphrec's device (RecBole runs on the CPU)")
    p.add_argument("--data-dir", default=None, help="MovieLens folder (default $GRAPHREC_DATA_DIR)")
    p.add_argument("--peer-venv", default=None, help="RecBole's venv (default: setup_recbole.sh's choice)")
    p.add_argument("--no-loss-check", action="store_true", help="skip experiments/peers/loss_check.py")
    p.add_argument("--out", type=Path, default=HERE / "results" / "bench_vs_recbole.txt")
    a = p.parse_args()
    if a.threads < 1:
        p.error("--threads must be >= 1")

    say = Report()
    venv = peer_venv(a)
    torch.set_num_threads(a.threads)
    data = load_movielens("ml-100k", a.data_dir, download=False)
    say(f"# graphrec LightGCN vs RecBole 1.2.1 LightGCN, {datetime.date.today().isoformat()}")
    say(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}; graphrec {getattr(graphrec, '__version__', '?')} on torch {torch.__version__} "
        f"({a.device})")
    say(f"machine load (1-min average) at the start: {os.getloadavg()[0]:.2f}; each run's line gives it before -> after "
        "(other people's jobs share this machine; timings under load are less trustworthy)")
    say(f"threads: {a.threads} per process (torch.set_num_threads in both; OMP_NUM_THREADS=MKL_NUM_THREADS="
        f"{a.threads} for RecBole); OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} for both")
    say(f"ML-100K per-user random 80/10/10, seeds {a.seeds}; dim 64, 3 layers, batch 2048, Adam lr 0.001, "
        f"reg {a.reg:g}, {a.epochs} epochs, valid every epoch, test at the best-valid epoch")
    say("regularisers (U_b, P_b, N_b: the batch's layer-0 [B, 64] embeddings of users, positives, negatives):")
    say("  graphrec, and RecBole require_pow=True:  reg * (|U_b|^2 + |P_b|^2 + |N_b|^2) / (2B)")
    say("  RecBole default, and graphrec subclass:   reg * (|U_b| + |P_b| + |N_b|) / B   (Frobenius, not squared)")
    if not a.no_loss_check:
        say("loss check (experiments/peers/loss_check.py: same weights, same batch; loss graphrec, RecBole):")
        cmd = [sys.executable, str(PEERS / "loss_check.py"), "--peer-venv", venv, "--seed", str(a.seeds[0])]
        check = subprocess.run(cmd + (["--data-dir", a.data_dir] if a.data_dir else []), capture_output=True, text=True)
        if check.returncode != 0:
            sys.exit(f"loss check failed:\n{check.stderr[-3000:]}")
        for line in check.stdout.strip().splitlines():
            say(f"  {line}")

    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in RUNS}
    for seed in a.seeds:
        split = random_split(data, (0.8, 0.1, 0.1), seed=seed)
        with tempfile.TemporaryDirectory() as tmp:
            paths = split.export_tsv(tmp)
            sizes = {n: sum(1 for _ in open(path)) - 1 for n, path in paths.items()}
            same = dataset_from_tsv(paths)
            say()
            say(f"## seed {seed}: rows {sizes}")
            for key, (label, system, form) in RUNS.items():
                load_before = os.getloadavg()[0]
                if system == "graphrec":
                    r = run_graphrec(same, seed, LightGCN if form == "squared" else LightGCNRecBoleReg, a)
                else:
                    r = run_recbole(venv, paths, seed, form == "squared", a)
                r["load_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
                runs[key].append(r)
                say(f"  {label:52} Recall@20 {r[f'test_recall@{K}']:.4f}  NDCG@20 {r[f'test_ndcg@{K}']:.4f}  "
                    f"best epoch {r['best_epoch']:>2}  median epoch {statistics.median(r['epoch_seconds']):.3f} s  "
                    f"median eval {statistics.median(r['valid_eval_seconds']):.4f} s  "
                    f"users/items {r['users']}/{r['items']}  threads {r['threads']}  wall {r['wall_seconds']:.0f} s  "
                    f"load {r['load_1min'][0]:.1f}->{r['load_1min'][1]:.1f}")

    med = statistics.median
    say()
    say(f"## Accuracy, mean ± sample std over seeds {', '.join(map(str, a.seeds))} (test, best-valid epoch)")
    say()
    say("| system (regulariser) | test Recall@20 | test NDCG@20 | median train epoch | median valid eval | best epochs |")
    say("| --- | --- | --- | --- | --- | --- |")
    for key, (label, _, _) in RUNS.items():
        rs = runs[key]
        all_ep = [s for r in rs for s in r["epoch_seconds"]]
        all_ev = [s for r in rs for s in r["valid_eval_seconds"]]
        say(f"| {label} | {mean_std([r[f'test_recall@{K}'] for r in rs])} | {mean_std([r[f'test_ndcg@{K}'] for r in rs])} "
            f"| {med(all_ep):.3f} s | {med(all_ev):.4f} s | {', '.join(str(r['best_epoch']) for r in rs)} |")
    say()
    say("## Same objective, graphrec − RecBole (mean ± sample std of the per-seed differences)")
    say()
    say("| pair | Δ Recall@20 | Δ NDCG@20 | goal |")
    say("| --- | --- | --- | --- |")
    for g, rb in PAIRS:
        d_rec = [x[f"test_recall@{K}"] - y[f"test_recall@{K}"] for x, y in zip(runs[g], runs[rb], strict=True)]
        d_ndcg = [x[f"test_ndcg@{K}"] - y[f"test_ndcg@{K}"] for x, y in zip(runs[g], runs[rb], strict=True)]
        say(f"| {RUNS[g][0]} vs {RUNS[rb][0]} | {mean_std(d_rec)} | {mean_std(d_ndcg)} | Δ Recall >= -0.005 |")
    say()
    say("## Time ratios graphrec / RecBole (median over epochs; overall: medians over every epoch of every seed)")
    say()
    say("| pair | what | " + " | ".join(f"seed {s}" for s in a.seeds) + " | overall | goal |")
    say("| --- | --- | " + " | ".join("---" for _ in a.seeds) + " | --- | --- |")
    ratios: dict[str, dict[str, Any]] = {}
    for g, rb, why in TIME_PAIRS:
        for what, field, goal in (("train epoch", "epoch_seconds", "<= 0.25"),
                                  ("full-ranking valid eval", "valid_eval_seconds", "<= 0.5")):
            per = [med(x[field]) / med(y[field]) for x, y in zip(runs[g], runs[rb], strict=True)]
            overall = med([s for x in runs[g] for s in x[field]]) / med([s for y in runs[rb] for s in y[field]])
            ratios[f"{g}/{rb} {field}"] = {"per_seed": [round(v, 3) for v in per], "overall": round(overall, 3)}
            say(f"| {g} / {rb} ({why}) | {what} | " + " | ".join(f"{v:.3f}" for v in per) + f" | {overall:.3f} | {goal} |")
    say()
    say("Rows: graphrec = graphrec.nn.LightGCN as shipped; recbole_pow = RecBole 1.2.1 with require_pow=True; "
        "graphrec_rbreg = LightGCNRecBoleReg (this script: an extra gather of the batch's layer-0 rows, "
        "so its epochs are slower than graphrec's own, and not timed against RecBole); recbole = RecBole 1.2.1 as shipped.")

    summary: dict[str, Any] = {
        "date": datetime.date.today().isoformat(), "epochs": a.epochs, "seeds": a.seeds, "threads": a.threads,
        "reg": a.reg, "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "torch": torch.__version__,
        "runs": {key: {"label": RUNS[key][0],
                       **{f"{m}_per_seed": [round(x[f"test_{m}"], 4) for x in rs] for m in (f"recall@{K}", f"ndcg@{K}")},
                       "best_epoch_per_seed": [x["best_epoch"] for x in rs],
                       "load_1min_per_seed": [x["load_1min"] for x in rs],
                       "median_epoch_seconds_per_seed": [round(med(x["epoch_seconds"]), 4) for x in rs],
                       "median_valid_eval_seconds_per_seed": [round(med(x["valid_eval_seconds"]), 4) for x in rs]}
                 for key, rs in runs.items()},
        "ratios": ratios,
    }
    say(json.dumps(summary))
    say.save(a.out)


if __name__ == "__main__":
    main()
