"""graphrec against RecBole 1.2.1 on identical split files, over several seeds: LightGCN, EASE, and graphrec's
XSimGCL against RecBole's SGL, NCL and SimpleX.

For each seed (default 2020, 2021, 2022), graphrec's per-user random 80/10/10
split of ML-100K with that seed is exported as TSV; both systems read those
files (graphrec reads them back, so both see the same users, items and rows).
Then, for each model set of ``--models`` (default ``lightgcn``; any of
``lightgcn ease sgl ncl simplex xsimgcl``):

``lightgcn``: graphrec's LightGCN against RecBole 1.2.1's.

1. Four runs, each with dim 64, 3 layers, batch ``--batch`` (2048), Adam lr
   ``--lr`` (0.001), L2 weight ``--reg`` (1e-4), ``--epochs`` epochs (50)
   seeded by the seed, validation (full ranking, NDCG@20) every epoch, no
   early stopping, and the test evaluated at the best-validation epoch (train
   and valid items masked):

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
   ``experiments/peers/loss_check.py`` first checks that both compute the same
   loss on the same weights and batch (``--no-loss-check`` skips it).

2. Prints, per seed and over the seeds (mean ± sample std), test Recall@20 and
   NDCG@20 of every run, the differences graphrec − RecBole for the two pairs
   with the same objective, and the time ratios of graphrec as shipped over
   RecBole (with ``require_pow=True``, the same objective, and as shipped) of
   the median training epoch and of the median full-ranking valid evaluation;
   "overall" is the ratio of the medians over every epoch of every seed.

``ease``: graphrec's EASE (``graphrec/nn/ease.py``) against RecBole's, the
same closed form with the same λ (``--ease-reg``, 250: graphrec's ``reg`` and
RecBole's ``reg_weight`` default alike; graphrec solves it in float64 by
Cholesky, RecBole in float32 with ``np.linalg.inv``). Each is fitted on train,
evaluated once on valid, then on test (train and valid items masked). Prints
test Recall@20 and NDCG@20, graphrec − RecBole (the same model: goal |Δ| ≤
0.005), and the fit time with its ratio graphrec / RecBole (RecBole fits when
the model is built: that is what is timed).

``sgl``, ``ncl``, ``simplex``: RecBole models that graphrec does not have;
graphrec's counterpart is its XSimGCL (``graphrec/nn/simgcl.py``), trained
whenever one of them (or ``xsimgcl``) is asked for. Every one of these runs:
``--epochs`` epochs, batch ``--batch``, Adam lr ``--lr``, dim 64, valid
(full ranking, NDCG@20) every epoch, no early stopping, test at the
best-valid epoch. Everything else is each system's default:

* graphrec XSimGCL: ``XSimGCLConfig``'s defaults (2 layers, reg 1e-4, eps 0.2,
  cl_weight 0.2, temperature 0.2, contrast layer 1: the paper's); override
  with ``--xsimgcl-set KEY=VALUE ...``, KEY a model key or one of the training
  keys lr, batch_size, optimizer, weight_decay (``--xsimgcl-set lr=0.002
  cl_weight=0.1``);
* RecBole: ``recbole/properties/model/<Model>.yaml`` over
  ``properties/overall.yaml``; override with ``--recbole-set MODEL.KEY=VALUE
  ...`` (``--recbole-set sgl.ssl_weight=0.1 simplex.train_neg_sample_args="{sample_num: 100}"``).
  SGL: type ED, 3 layers, ssl_tau 0.5, ssl_weight 0.05, drop_ratio 0.1,
  reg_weight 1e-5. NCL: 3 layers, reg_weight 1e-4, ssl_temp 0.1, ssl_reg 1e-7,
  hyper_layers 1, alpha 1, proto_reg 8e-8, m_step 1, and **num_clusters 100**
  (this script's one change: RecBole's 1000 cannot run on ML-100K, whose 943
  users are fewer than the clusters faiss's k-means is asked for). SimpleX:
  mean aggregator, margin 0.5, negative_weight 10, gamma 0.5, history_len 50,
  reg_weight 1e-5, dropout_prob 0.1, and RecBole's one uniform negative per
  positive (``train_neg_sample_args``; the SimpleX paper samples many). The
  settings each peer read are printed (and are in the JSON).

  NCL's epoch time includes its E-step (faiss k-means of the user and item
  embeddings every ``m_step`` epochs, run before the epoch as RecBole's
  ``NCLTrainer`` does), which is also reported on its own. NCL needs faiss in
  RecBole's venv (``setup_recbole.sh`` installs faiss-cpu): a peer model that
  cannot run there is skipped, with the reason in the output, and the others
  go on.

  Prints each model's test Recall@20 and NDCG@20 (mean ± sample std), graphrec
  XSimGCL − peer (mean ± sample std of the per-seed differences; goal > 0
  against SGL and NCL) and the time ratios graphrec XSimGCL / peer of the
  median training epoch (goal < 1 against SGL and NCL) and of the median
  valid evaluation.

Both processes run with ``--threads`` intra-op threads (``torch.set_num_threads``
in each; the RecBole subprocess also gets ``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS``) and the same ``OMP_WAIT_POLICY`` (PASSIVE unless set).
RecBole runs in its own venv, built by ``experiments/peers/setup_recbole.sh``
(``--peer-venv``, or ``$RECBOLE_VENV``, or that script's default), with
``experiments/peers/recbole_run.py``. Each run's line gives the machine's load
before and after it.

Everything printed is also written to ``--out`` (default
``experiments/results/bench_vs_recbole.txt`` for ``--models lightgcn``, else
``experiments/results/bench_vs_recbole_<models, joined by ->.txt``); the last
line is one JSON object with every figure.

Usage: python experiments/bench_vs_recbole.py [--models lightgcn [ease sgl ncl simplex xsimgcl]] [--epochs 50]
       [--seeds 2020 2021 2022] [--threads 2] [--batch 2048] [--lr 0.001] [--reg 1e-4] [--ease-reg 250]
       [--xsimgcl-set KEY=VALUE ...] [--recbole-set MODEL.KEY=VALUE ...] [--device cpu] [--data-dir DIR]
       [--peer-venv DIR] [--no-loss-check] [--out FILE]
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import yaml
from report import Report, peer_venv  # experiments/report.py: scripts run from this folder
from torch import Tensor

import graphrec
from graphrec.data import Dataset, Interactions, Split, Vocabulary, load_movielens, random_split
from graphrec.errors import ConfigError
from graphrec.eval import Evaluator, to_csr
from graphrec.graph import normalized_adjacency
from graphrec.nn import LightGCN, bpr_loss, propagate
from graphrec.nn.base import ScoringModel
from graphrec.nn.registry import model_config, model_spec
from graphrec.nn.spec import ModelConfig, ModelInputs
from graphrec.train import TrainConfig, Trainer, seed_everything

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
K = 20

#: what --models accepts, in the order the runs and tables come
MODELS = ("lightgcn", "ease", "sgl", "ncl", "simplex", "xsimgcl")
#: RecBole models graphrec's XSimGCL is measured against: --models name -> RecBole's name
CL_PEERS = {"sgl": "SGL", "ncl": "NCL", "simplex": "SimpleX"}
#: the peers the issue's goal names (XSimGCL better and faster); SimpleX is reported only
CL_GOAL = ("sgl", "ncl")
#: this script's changes to RecBole's defaults, per peer (--recbole-set overrides them): NCL's 1000 clusters
#: cannot run on ML-100K (faiss's k-means needs at least as many points, and there are 943 users)
RECBOLE_CHANGES: dict[str, dict[str, Any]] = {"ncl": {"num_clusters": 100}}
#: the training settings --xsimgcl-set may change (the rest: the same for every run, or this script's)
XSIMGCL_TRAIN_KEYS = ("lr", "batch_size", "optimizer", "weight_decay")

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


@contextmanager
def exported_split(data: Dataset, seed: int, say: Callable[..., Any]) -> Iterator[tuple[dict[str, Path], Split]]:
    """Seed ``seed``'s per-user random 80/10/10 split, exported as TSV files into a temporary folder that lives
    for the ``with`` block: ``(paths, the split as graphrec reads those files back)``; prints the seed's heading."""
    split = random_split(data, (0.8, 0.1, 0.1), seed=seed, shuffle="global")  # the split of the recorded figures
    with tempfile.TemporaryDirectory() as tmp:
        paths = split.export_tsv(tmp)
        sizes = {}
        for name, path in paths.items():
            with open(path) as f:
                sizes[name] = sum(1 for _ in f) - 1  # less the header
        say()
        say(f"## seed {seed}: rows {sizes}")
        yield paths, dataset_from_tsv(paths)


class PeerFailed(Exception):
    """A RecBole run that could not run here (exit status 3: the peer names why) or failed."""


def run_recbole(venv: str, paths: dict[str, Path], seed: int, a: argparse.Namespace, model: str,
                options: list[str] | None = None, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """One RecBole model (experiments/peers/recbole_run.py) on the split files; its JSON line, plus wall_seconds.

    ``options``: further options of recbole_run.py; ``config``: further RecBole settings (``--config-json``).
    Raises PeerFailed with the reason; exits on a bad setting (status 2: this command line's mistake).
    """
    cmd = [str(Path(venv) / "bin" / "python"), str(PEERS / "recbole_run.py"), "--model", model,
           "--train", str(paths["train"]), "--valid", str(paths["valid"]), "--test", str(paths["test"]),
           "--epochs", str(a.epochs), "--batch", str(a.batch), "--dim", "64", "--lr", str(a.lr),
           "--k", str(K), "--seed", str(seed), "--threads", str(a.threads), *(options or [])]
    if config:
        cmd += ["--config-json", json.dumps(config)]
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}
    with tempfile.TemporaryDirectory() as cwd:  # RecBole writes log/ and log_tensorboard/ where it runs
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
        wall = time.perf_counter() - t
    if out.returncode == 2:
        sys.exit(f"RecBole {model}: bad settings:\n{out.stderr[-3000:]}")
    if out.returncode != 0:
        lines = [line.strip() for line in out.stderr.splitlines() if line.strip()]
        why = lines[-1] if out.returncode == 3 and lines else " | ".join(lines[-3:])
        raise PeerFailed(f"RecBole {model} exited with status {out.returncode}: {why}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = wall
    return result


def run_graphrec(split: Split, seed: int, a: argparse.Namespace,
                 build: Callable[[int, int, sp.csr_matrix], ScoringModel],
                 train: dict[str, Any] | None = None) -> dict[str, Any]:
    """graphrec's model ``build(num_users, num_items, train_csr)`` (built after seeding with ``seed``) on ``split``.

    Trainable models: ``--epochs`` epochs (batch ``--batch``, lr ``--lr``, ``train`` overriding TrainConfig's
    keys), valid every epoch, test at the best-valid epoch. Others (EASE): ``fit`` on train (timed as
    ``fit_seconds``), valid once, test.
    """
    torch.set_num_threads(a.threads)
    ds = split.dataset
    n_users, n_items = ds.num_users, ds.num_items
    parts = {n: split.part(n) for n in ("train", "valid", "test")}
    csr = {n: to_csr(p.user, p.item, n_users, n_items) for n, p in parts.items()}
    seed_everything(seed)
    model = build(n_users, n_items, csr["train"])
    valid_ev = Evaluator(csr["valid"], csr["train"], ks=(K,), metrics=("recall", "ndcg"))
    test_ev = Evaluator(csr["test"], (csr["train"] + csr["valid"]).tocsr(), ks=(K,), metrics=("recall", "ndcg"))
    out: dict[str, Any] = {"users": n_users, "items": n_items}
    if model.trainable:
        cfg = TrainConfig.from_dict({"epochs": a.epochs, "batch_size": a.batch, "lr": a.lr, "seed": seed,
                                     "patience": 0, "metric": f"ndcg@{K}", "progress": False, "device": a.device,
                                     "threads": a.threads, **(train or {})})
        with tempfile.TemporaryDirectory() as run_dir:
            trainer = Trainer(model, csr["train"], valid_ev, cfg, run_dir)
            t = time.perf_counter()
            history = trainer.fit()
            wall = time.perf_counter() - t
            trainer.load_best()
        model = trainer.model
        out.update({"epoch_seconds": [h["train_seconds"] for h in history],
                    "valid_eval_seconds": [h["eval_seconds"] for h in history],
                    "losses": [h["loss"] for h in history], "best_epoch": trainer.best_epoch - 1,
                    f"valid_ndcg@{K}": trainer.best_value})
    else:
        model = model.to(a.device)
        t = time.perf_counter()
        model.fit(csr["train"])
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        valid = valid_ev.evaluate(model)
        eval_s = time.perf_counter() - t
        wall = fit_s + eval_s
        out.update({"epoch_seconds": [], "fit_seconds": fit_s, "valid_eval_seconds": [eval_s], "losses": [],
                    "best_epoch": 0, f"valid_ndcg@{K}": valid[f"ndcg@{K}"]})
    t = time.perf_counter()
    test = test_ev.evaluate(model)
    out.update({"threads": torch.get_num_threads(), "test_eval_seconds": time.perf_counter() - t,
                f"test_recall@{K}": test[f"recall@{K}"], f"test_ndcg@{K}": test[f"ndcg@{K}"], "wall_seconds": wall})
    return out


def lightgcn_builder(model_cls: type[LightGCN], a: argparse.Namespace) -> Callable[[int, int, sp.csr_matrix], LightGCN]:
    return lambda n_users, n_items, train: model_cls(n_users, n_items, normalized_adjacency(train), dim=64,
                                                     num_layers=3, reg=a.reg)


def spec_builder(config: ModelConfig, seed: int) -> Callable[[int, int, sp.csr_matrix], ScoringModel]:
    """A registry model (``graphrec.nn.registry``) from its typed config, as ``graphrec run`` builds it."""
    spec = model_spec(config.name)
    needs = config.needs()
    return lambda n_users, n_items, train: spec.create(config, ModelInputs(
        n_users, n_items, train=train, adjacency=normalized_adjacency(train) if needs.adjacency else None, seed=seed))


def mean_std(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.4f} ± {sd:.4f}"


def parse_sets(items: list[str], option: str, p: argparse.ArgumentParser) -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` → ``{KEY: VALUE}``, each value read as YAML (``0.1`` a float, ``{a: 1}`` a mapping)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            p.error(f"{option}: expected KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            p.error(f"{option} {item!r}: the value is not YAML: {e}")
    return out


def xsimgcl_settings(sets: dict[str, Any], p: argparse.ArgumentParser) -> tuple[ModelConfig, dict[str, Any]]:
    """(XSimGCL's typed config, its training overrides) from ``--xsimgcl-set``; the config's defaults otherwise."""
    spec = model_spec("xsimgcl")
    model = {k: v for k, v in sets.items() if k in spec.keys()}
    train = {k.removeprefix("train."): v for k, v in sets.items() if k.removeprefix("train.") in XSIMGCL_TRAIN_KEYS}
    unknown = [k for k in sets if k not in model and k.removeprefix("train.") not in XSIMGCL_TRAIN_KEYS]
    if unknown:
        p.error(f"--xsimgcl-set: unknown key(s) {unknown}; XSimGCL's keys: {spec.keys()}, training keys: "
                f"{list(XSIMGCL_TRAIN_KEYS)}")
    try:
        config = model_config({"name": "xsimgcl", **model}, "--xsimgcl-set")
        TrainConfig.from_dict(train)  # types and ranges
    except ConfigError as e:
        p.error(str(e))
    return config, train


def recbole_settings(sets: dict[str, Any], models: list[str], p: argparse.ArgumentParser) -> dict[str, dict[str, Any]]:
    """Per peer: this script's changes to RecBole's defaults, then ``--recbole-set MODEL.KEY=VALUE`` over them."""
    out = {m: dict(RECBOLE_CHANGES.get(m, {})) for m in CL_PEERS}
    for key, value in sets.items():
        model, dot, name = key.partition(".")
        if not dot or model not in CL_PEERS or not name:
            p.error(f"--recbole-set: expected MODEL.KEY=VALUE with MODEL one of {list(CL_PEERS)}, got {key!r}")
        if model not in models:
            p.error(f"--recbole-set {key}: {model} is not in --models")
        out[model][name] = value
    return out


def run_line(label: str, r: dict[str, Any], width: int = 52) -> str:
    if r["epoch_seconds"]:
        timing = (f"best epoch {r['best_epoch']:>2}  median epoch {statistics.median(r['epoch_seconds']):.3f} s  "
                  f"median eval {statistics.median(r['valid_eval_seconds']):.4f} s  ")
        if r.get("e_step_seconds"):
            timing += f"(E-step in the epoch {statistics.median(r['e_step_seconds']):.3f} s)  "
    else:
        timing = f"fit {r['fit_seconds']:.3f} s  valid eval {r['valid_eval_seconds'][0]:.4f} s  "
    return (f"  {label:{width}} Recall@20 {r[f'test_recall@{K}']:.4f}  NDCG@20 {r[f'test_ndcg@{K}']:.4f}  {timing}"
            f"users/items {r['users']}/{r['items']}  threads {r['threads']}  wall {r['wall_seconds']:.0f} s  "
            f"load {r['load_1min'][0]:.1f}->{r['load_1min'][1]:.1f}")


def run_summary(label: str, rs: list[dict[str, Any]]) -> dict[str, Any]:
    """A run's figures for the JSON line."""
    med = statistics.median
    out: dict[str, Any] = {
        "label": label,
        **{f"{m}_per_seed": [round(x[f"test_{m}"], 4) for x in rs] for m in (f"recall@{K}", f"ndcg@{K}")},
        "best_epoch_per_seed": [x["best_epoch"] for x in rs],
        "load_1min_per_seed": [x["load_1min"] for x in rs],
        "median_valid_eval_seconds_per_seed": [round(med(x["valid_eval_seconds"]), 4) for x in rs]}
    if rs and rs[0]["epoch_seconds"]:
        out["median_epoch_seconds_per_seed"] = [round(med(x["epoch_seconds"]), 4) for x in rs]
    else:
        out["fit_seconds_per_seed"] = [round(x["fit_seconds"], 4) for x in rs]
    if rs and rs[0].get("e_step_seconds"):
        out["median_e_step_seconds_per_seed"] = [round(med(x["e_step_seconds"]), 4) for x in rs]
    if rs and "config" in rs[0]:
        out["config"] = rs[0]["config"]
    return out


def diffs(xs: list[dict[str, Any]], ys: list[dict[str, Any]], metric: str) -> list[float]:
    """Per-seed ``x − y`` of a test metric."""
    return [x[f"test_{metric}"] - y[f"test_{metric}"] for x, y in zip(xs, ys, strict=True)]


def time_ratio(xs: list[dict[str, Any]], ys: list[dict[str, Any]], field: str) -> dict[str, Any]:
    """Per seed: ratio of the medians over epochs; overall: ratio of the medians over every epoch of every seed."""
    med = statistics.median
    per = [med(x[field]) / med(y[field]) for x, y in zip(xs, ys, strict=True)]
    overall = med([s for x in xs for s in x[field]]) / med([s for y in ys for s in y[field]])
    return {"per_seed": [round(v, 3) for v in per], "overall": round(overall, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["lightgcn"], choices=MODELS,
                   help="lightgcn: graphrec's LightGCN against RecBole's (4 runs); ease: the two EASEs; sgl, ncl, "
                        "simplex: RecBole's model against graphrec's XSimGCL; xsimgcl: graphrec's XSimGCL alone")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--seeds", type=int, nargs="+", default=[2020, 2021, 2022],
                   help="each seed sets the split and both systems' training")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads of each process")
    p.add_argument("--batch", type=int, default=2048, help="batch size of every trained run")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate of every trained run")
    p.add_argument("--reg", type=float, default=1e-4, help="L2 weight of every LightGCN run")
    p.add_argument("--ease-reg", type=float, default=250.0, help="EASE's λ, both systems")
    p.add_argument("--xsimgcl-set", nargs="+", default=[], metavar="KEY=VALUE",
                   help=f"graphrec XSimGCL's settings other than its config defaults (training keys: "
                        f"{', '.join(XSIMGCL_TRAIN_KEYS)})")
    p.add_argument("--recbole-set", nargs="+", default=[], metavar="MODEL.KEY=VALUE",
                   help=f"RecBole settings of {', '.join(CL_PEERS)} other than RecBole's defaults "
                        "(and this script's NCL num_clusters 100)")
    p.add_argument("--device", default="cpu", help="graphrec's device (RecBole runs on the CPU)")
    p.add_argument("--data-dir", default=None, help="MovieLens folder (default $GRAPHREC_DATA_DIR)")
    p.add_argument("--peer-venv", default=None, help="RecBole's venv (default: setup_recbole.sh's choice)")
    p.add_argument("--no-loss-check", action="store_true", help="skip experiments/peers/loss_check.py")
    p.add_argument("--out", type=Path, default=None,
                   help="default: experiments/results/bench_vs_recbole.txt for --models lightgcn, else "
                        "bench_vs_recbole_<models joined by ->.txt there")
    a = p.parse_args()
    if a.threads < 1:
        p.error("--threads must be >= 1")
    if a.epochs < 1 or a.batch < 1:
        p.error("--epochs and --batch must be >= 1")
    models = [m for m in MODELS if m in a.models]  # the canonical order, once each
    if a.out is None:
        name = "bench_vs_recbole" + ("" if models == ["lightgcn"] else "_" + "-".join(models))
        a.out = HERE / "results" / f"{name}.txt"
    peers = [m for m in models if m in CL_PEERS]
    with_xsimgcl = bool(peers) or "xsimgcl" in models
    xsim_config, xsim_train = xsimgcl_settings(parse_sets(a.xsimgcl_set, "--xsimgcl-set", p), p)
    if a.xsimgcl_set and not with_xsimgcl:
        p.error("--xsimgcl-set: no model of --models trains graphrec's XSimGCL")
    rb_sets = recbole_settings(parse_sets(a.recbole_set, "--recbole-set", p), peers, p)
    if "ease" in models and not a.ease_reg > 0:
        p.error("--ease-reg must be > 0")

    say = Report()
    venv = peer_venv("setup_recbole.sh", a.peer_venv)
    torch.set_num_threads(a.threads)
    data = load_movielens("ml-100k", a.data_dir, download=False)
    today = datetime.date.today().isoformat()
    if models == ["lightgcn"]:
        say(f"# graphrec LightGCN vs RecBole 1.2.1 LightGCN, {today}")
    else:
        names = {"lightgcn": "LightGCN", "ease": "EASE", "xsimgcl": "XSimGCL", **CL_PEERS}
        say(f"# graphrec vs RecBole 1.2.1 ({', '.join(names[m] for m in models)}"
            f"{'; graphrec XSimGCL against RecBole ' + ', '.join(CL_PEERS[m] for m in peers) if peers else ''}), "
            f"{today}")
    say(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}; graphrec {getattr(graphrec, '__version__', '?')} on torch {torch.__version__} "
        f"({a.device})")
    say(f"machine load (1-min average) at the start: {os.getloadavg()[0]:.2f}; each run's line gives it before -> after "
        "(other people's jobs share this machine; timings under load are less trustworthy)")
    say(f"threads: {a.threads} per process (torch.set_num_threads in both; OMP_NUM_THREADS=MKL_NUM_THREADS="
        f"{a.threads} for RecBole); OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} for both")
    if "lightgcn" in models:
        say(f"LightGCN: ML-100K per-user random 80/10/10, seeds {a.seeds}; dim 64, 3 layers, batch {a.batch}, "
            f"Adam lr {a.lr:g}, reg {a.reg:g}, {a.epochs} epochs, valid every epoch, test at the best-valid epoch")
        say("regularisers (U_b, P_b, N_b: the batch's layer-0 [B, 64] embeddings of users, positives, negatives):")
        say("  graphrec, and RecBole require_pow=True:  reg * (|U_b|^2 + |P_b|^2 + |N_b|^2) / (2B)")
        say("  RecBole default, and graphrec subclass:   reg * (|U_b| + |P_b| + |N_b|) / B   (Frobenius, not squared)")
    if "ease" in models:
        say(f"EASE: the same split; closed form, lambda {a.ease_reg:g} both (graphrec reg, RecBole reg_weight); "
            "fit on train, valid once, test with train and valid masked")
    if with_xsimgcl:
        say(f"XSimGCL{' and its peers' if peers else ''}: the same split; dim 64, batch {a.batch}, Adam lr {a.lr:g}, "
            f"{a.epochs} epochs, valid every epoch, test at the best-valid epoch; everything else each system's default")
        say(f"  graphrec XSimGCL: {json.dumps({k: v for k, v in asdict(xsim_config).items() if k != 'name'})}"
            + (f"; training overrides {json.dumps(xsim_train)}" if xsim_train else ""))
        for m in peers:
            say(f"  RecBole {CL_PEERS[m]}: RecBole's defaults"
                + (f", changed here: {json.dumps(rb_sets[m])}" if rb_sets[m] else "")
                + " (every setting it read: its first run's 'settings' line)")
    if "lightgcn" in models and not a.no_loss_check:
        say("loss check (experiments/peers/loss_check.py: same weights, same batch; loss graphrec, RecBole):")
        cmd = [sys.executable, str(PEERS / "loss_check.py"), "--peer-venv", venv, "--seed", str(a.seeds[0])]
        check = subprocess.run(cmd + (["--data-dir", a.data_dir] if a.data_dir else []), capture_output=True, text=True)
        if check.returncode != 0:
            sys.exit(f"loss check failed:\n{check.stderr[-3000:]}")
        for line in check.stdout.strip().splitlines():
            say(f"  {line}")

    #: run key -> label, in the order they run
    labels: dict[str, str] = {}
    if "lightgcn" in models:
        labels.update({key: label for key, (label, _, _) in RUNS.items()})
    if "ease" in models:
        labels.update({"graphrec_ease": f"graphrec EASE (lambda {a.ease_reg:g})",
                       "recbole_ease": f"RecBole 1.2.1 EASE (lambda {a.ease_reg:g})"})
    if with_xsimgcl:
        labels["graphrec_xsimgcl"] = "graphrec XSimGCL"
    labels.update({f"recbole_{m}": f"RecBole 1.2.1 {CL_PEERS[m]}" for m in peers})
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in labels}
    skipped: dict[str, str] = {}  # run key -> why
    width = max(52, *(len(label) for label in labels.values()))

    def record(key: str, r: dict[str, Any], load_before: float) -> None:
        r["load_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        runs[key].append(r)
        say(run_line(labels[key], r, width))
        if "config" in r and len(runs[key]) == 1:
            say(f"  {'':{width}} settings: {json.dumps(r['config'])}")

    for seed in a.seeds:
        with exported_split(data, seed, say) as (paths, same):
            for key in labels:
                if key in skipped:
                    continue
                load_before = os.getloadavg()[0]
                if key in RUNS:  # LightGCN: a failing peer stops everything, as before
                    _, system, form = RUNS[key]
                    if system == "graphrec":
                        r = run_graphrec(same, seed, a, lightgcn_builder(
                            LightGCN if form == "squared" else LightGCNRecBoleReg, a))
                    else:
                        try:
                            r = run_recbole(venv, paths, seed, a, "LightGCN",
                                            ["--layers", "3", "--reg", str(a.reg)]
                                            + (["--require-pow"] if form == "squared" else []))
                        except PeerFailed as e:
                            sys.exit(str(e))
                elif key == "graphrec_ease":
                    r = run_graphrec(same, seed, a, spec_builder(model_config({"name": "ease", "reg": a.ease_reg}),
                                                                 seed))
                elif key == "graphrec_xsimgcl":
                    r = run_graphrec(same, seed, a, spec_builder(xsim_config, seed), xsim_train)
                else:  # a RecBole peer: one that cannot run is skipped, the others go on
                    m = key.removeprefix("recbole_")
                    try:
                        if m == "ease":
                            r = run_recbole(venv, paths, seed, a, "EASE", ["--reg", str(a.ease_reg)])
                        else:
                            r = run_recbole(venv, paths, seed, a, CL_PEERS[m], config=rb_sets[m])
                    except PeerFailed as e:
                        skipped[key] = str(e)
                        say(f"  {labels[key]:{width}} SKIPPED: {e}")
                        continue
                record(key, r, load_before)

    med = statistics.median
    ratios: dict[str, dict[str, Any]] = {}
    quality: dict[str, dict[str, Any]] = {}
    if "lightgcn" in models:
        say()
        say(f"## LightGCN accuracy, mean ± sample std over seeds {', '.join(map(str, a.seeds))} (test, best-valid epoch)")
        say()
        say("| system (regulariser) | test Recall@20 | test NDCG@20 | median train epoch | median valid eval | best epochs |")
        say("| --- | --- | --- | --- | --- | --- |")
        for key, (label, _, _) in RUNS.items():
            rs = runs[key]
            all_ep = [s for r in rs for s in r["epoch_seconds"]]
            all_ev = [s for r in rs for s in r["valid_eval_seconds"]]
            say(f"| {label} | {mean_std([r[f'test_recall@{K}'] for r in rs])} "
                f"| {mean_std([r[f'test_ndcg@{K}'] for r in rs])} "
                f"| {med(all_ep):.3f} s | {med(all_ev):.4f} s | {', '.join(str(r['best_epoch']) for r in rs)} |")
        say()
        say("## Same objective, graphrec − RecBole (mean ± sample std of the per-seed differences)")
        say()
        say("| pair | Δ Recall@20 | Δ NDCG@20 | goal |")
        say("| --- | --- | --- | --- |")
        for g, rb in PAIRS:
            d_rec, d_ndcg = diffs(runs[g], runs[rb], f"recall@{K}"), diffs(runs[g], runs[rb], f"ndcg@{K}")
            quality[f"{g}-{rb}"] = {f"recall@{K}": [round(v, 4) for v in d_rec],
                                    f"ndcg@{K}": [round(v, 4) for v in d_ndcg]}
            say(f"| {RUNS[g][0]} vs {RUNS[rb][0]} | {mean_std(d_rec)} | {mean_std(d_ndcg)} | Δ Recall >= -0.005 |")
        say()
        say("## Time ratios graphrec / RecBole (median over epochs; overall: medians over every epoch of every seed)")
        say()
        say("| pair | what | " + " | ".join(f"seed {s}" for s in a.seeds) + " | overall | goal |")
        say("| --- | --- | " + " | ".join("---" for _ in a.seeds) + " | --- | --- |")
        for g, rb, why in TIME_PAIRS:
            for what, field, goal in (("train epoch", "epoch_seconds", "<= 0.25"),
                                      ("full-ranking valid eval", "valid_eval_seconds", "<= 0.5")):
                ratio = ratios[f"{g}/{rb} {field}"] = time_ratio(runs[g], runs[rb], field)
                say(f"| {g} / {rb} ({why}) | {what} | " + " | ".join(f"{v:.3f}" for v in ratio["per_seed"])
                    + f" | {ratio['overall']:.3f} | {goal} |")
        say()
        say("Rows: graphrec = graphrec.nn.LightGCN as shipped; recbole_pow = RecBole 1.2.1 with require_pow=True; "
            "graphrec_rbreg = LightGCNRecBoleReg (this script: an extra gather of the batch's layer-0 rows, "
            "so its epochs are slower than graphrec's own, and not timed against RecBole); recbole = RecBole 1.2.1 as "
            "shipped.")

    if "ease" in models:
        g_ease, rb_ease = runs["graphrec_ease"], runs["recbole_ease"]
        say()
        say(f"## EASE (lambda {a.ease_reg:g}), mean ± sample std over seeds {', '.join(map(str, a.seeds))} "
            "(test; fit: median over seeds)")
        say()
        say("| system | test Recall@20 | test NDCG@20 | fit | valid eval |")
        say("| --- | --- | --- | --- | --- |")
        for key in ("graphrec_ease", "recbole_ease"):
            if key in skipped:
                say(f"| {labels[key]} | skipped: {skipped[key]} | | | |")
                continue
            rs = runs[key]
            say(f"| {labels[key]} | {mean_std([r[f'test_recall@{K}'] for r in rs])} "
                f"| {mean_std([r[f'test_ndcg@{K}'] for r in rs])} | {med([r['fit_seconds'] for r in rs]):.3f} s "
                f"| {med([r['valid_eval_seconds'][0] for r in rs]):.4f} s |")
        if "recbole_ease" not in skipped:
            d_rec, d_ndcg = diffs(g_ease, rb_ease, f"recall@{K}"), diffs(g_ease, rb_ease, f"ndcg@{K}")
            quality["graphrec_ease-recbole_ease"] = {f"recall@{K}": [round(v, 4) for v in d_rec],
                                                     f"ndcg@{K}": [round(v, 4) for v in d_ndcg]}
            fit = [x["fit_seconds"] / y["fit_seconds"] for x, y in zip(g_ease, rb_ease, strict=True)]
            fit_overall = med([x["fit_seconds"] for x in g_ease]) / med([y["fit_seconds"] for y in rb_ease])
            ratios["graphrec_ease/recbole_ease fit_seconds"] = {"per_seed": [round(v, 3) for v in fit],
                                                                "overall": round(fit_overall, 3)}
            say()
            say("| graphrec − RecBole (the same model) | Δ Recall@20 | Δ NDCG@20 | goal | fit time ratio graphrec / "
                "RecBole per seed | overall (ratio of the medians) |")
            say("| --- | --- | --- | --- | --- | --- |")
            say(f"| EASE | {mean_std(d_rec)} | {mean_std(d_ndcg)} | abs(Δ) <= 0.005 "
                f"| {', '.join(f'{v:.3f}' for v in fit)} | {fit_overall:.3f} |")

    if with_xsimgcl:
        say()
        say(f"## graphrec XSimGCL{' and RecBole ' + ', '.join(CL_PEERS[m] for m in peers) if peers else ''}, "
            f"mean ± sample std over seeds {', '.join(map(str, a.seeds))} (test, best-valid epoch)")
        say()
        say("| system | test Recall@20 | test NDCG@20 | median train epoch | median valid eval | best epochs |")
        say("| --- | --- | --- | --- | --- | --- |")
        for key in ["graphrec_xsimgcl"] + [f"recbole_{m}" for m in peers]:
            if key in skipped:
                say(f"| {labels[key]} | skipped: {skipped[key]} | | | | |")
                continue
            rs = runs[key]
            e_step = (f" (E-step {med([s for r in rs for s in r['e_step_seconds']]):.3f} s)"
                      if rs[0].get("e_step_seconds") else "")
            say(f"| {labels[key]} | {mean_std([r[f'test_recall@{K}'] for r in rs])} "
                f"| {mean_std([r[f'test_ndcg@{K}'] for r in rs])} "
                f"| {med([s for r in rs for s in r['epoch_seconds']]):.3f} s{e_step} "
                f"| {med([s for r in rs for s in r['valid_eval_seconds']]):.4f} s "
                f"| {', '.join(str(r['best_epoch']) for r in rs)} |")
        ran = [m for m in peers if f"recbole_{m}" not in skipped]
        if ran:
            say()
            say("## graphrec XSimGCL against each peer: Δ = XSimGCL − peer (mean ± sample std of the per-seed "
                "differences); time ratio XSimGCL / peer (per seed: of the medians over epochs; overall: of the "
                "medians over every epoch of every seed)")
            say()
            say("| peer | Δ Recall@20 | Δ NDCG@20 | train epoch ratio per seed | overall | valid eval ratio overall "
                "| goal |")
            say("| --- | --- | --- | --- | --- | --- | --- |")
            xsim = runs["graphrec_xsimgcl"]
            for m in ran:
                key = f"recbole_{m}"
                peer = runs[key]
                d_rec, d_ndcg = diffs(xsim, peer, f"recall@{K}"), diffs(xsim, peer, f"ndcg@{K}")
                quality[f"graphrec_xsimgcl-{key}"] = {f"recall@{K}": [round(v, 4) for v in d_rec],
                                                      f"ndcg@{K}": [round(v, 4) for v in d_ndcg]}
                ep = ratios[f"graphrec_xsimgcl/{key} epoch_seconds"] = time_ratio(xsim, peer, "epoch_seconds")
                ev = ratios[f"graphrec_xsimgcl/{key} valid_eval_seconds"] = time_ratio(xsim, peer, "valid_eval_seconds")
                goal = "Δ > 0 and epoch ratio < 1" if m in CL_GOAL else "(reported)"
                say(f"| {CL_PEERS[m]} | {mean_std(d_rec)} | {mean_std(d_ndcg)} "
                    f"| {', '.join(f'{v:.3f}' for v in ep['per_seed'])} | {ep['overall']:.3f} | {ev['overall']:.3f} "
                    f"| {goal} |")
            if "ncl" in ran:
                say()
                say("NCL's epoch includes its E-step (faiss k-means of the user and item embeddings before the epoch, "
                    "every m_step epochs, as RecBole's NCLTrainer); the table gives it on its own in brackets.")

    summary: dict[str, Any] = {
        "date": today, "models": models, "epochs": a.epochs, "seeds": a.seeds, "threads": a.threads,
        "batch": a.batch, "lr": a.lr, "reg": a.reg, "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
        "torch": torch.__version__,
        "runs": {key: run_summary(labels[key], rs) for key, rs in runs.items() if key not in skipped},
        "ratios": ratios, "quality_differences": quality, "skipped": skipped,
    }
    if "ease" in models:
        summary["ease_reg"] = a.ease_reg
    if with_xsimgcl:
        summary["xsimgcl"] = {"config": {k: v for k, v in asdict(xsim_config).items() if k != "name"},
                              "train": xsim_train}
        summary["recbole_changes"] = {m: rb_sets[m] for m in peers}
    say(json.dumps(summary))
    say.save(a.out)


if __name__ == "__main__":
    main()
