"""Cold-start items: how well models rank items that no one interacted with in train.

Holds out 10% of the items entirely (``split.method: cold-items``: none of
their interactions in train or valid), trains GraphSAGE + text (with
attribute nodes) and text-aware LightGCN on the rest, and ranks, for every
test user with a cold item, only the cold items. Prints Recall@20 and
NDCG@20 of each model and of a random ranker (the mean over 20 random score
draws), per seed and as mean ± std over seeds.

What keeps the numbers honest:

* each seed sets the cold-items split and the training (parameters,
  shuffling, negatives), as in ``experiments/compare.py``;
* the cold items are never drawn as BPR negatives (``Trainer(negative_items=
  <the items that are not cold>)``): the model never sees them, not even as
  items to push down;
* the model evaluated is the best validation epoch (``best.pt`` in a
  temporary run directory, ``Trainer.load_best``), not the last one; the
  validation set holds no cold item, so choosing the epoch uses nothing of
  them;
* the training budgets (``train.epochs`` / ``train.patience``) are the
  configuration files' own unless ``--epochs`` caps them (for quick checks).

Usage: python experiments/cold_start.py [--dataset ml-100k] [--device auto] [--epochs N]
       [--seeds 2020 2021 2022] [--threads 2] [--out experiments/results/cold_start_ml100k.txt]
Everything printed is also written to ``--out`` (``--out ''``: nowhere).
Last line: one JSON object with the metrics per model (mean, std and per seed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

# A fixed --threads on a shared machine: OpenMP threads that spin between parallel regions oversubscribe
# the cores (2-core CPU at a load average of 8, two runs minutes apart, not a controlled comparison: two
# GraphSAGE epochs took 139 s spinning, four took 27 s sleeping). graphrec leaves this to the environment
# (on a quiet machine passive waiting costs: experiments/README.md, bench_threads); this long benchmark
# asks for it unless the environment says otherwise. OpenMP reads it once, so before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from report import Report  # experiments/report.py: scripts run from this folder

from graphrec.eval import Evaluator
from graphrec.nn import MostPopular
from graphrec.run import build_model, load_config, prepare
from graphrec.train import Trainer

HERE = Path(__file__).resolve().parent
CONFIGS = {"ml-100k": "ml100k", "ml-latest-small": "mlsmall"}
#: (configuration file suffix, row name in the table)
MODELS = (("graphsage-attrs", "GraphSAGE + text + attribute nodes"), ("text-lightgcn", "text-aware LightGCN"))
RANDOM = "random ranker (mean of 20 draws)"
RANDOM_DRAWS = 20
METRICS = (("recall@20", "Recall@20"), ("ndcg@20", "NDCG@20"))


def mean_std(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.4f}" if len(v) == 1 else f"{v.mean():.4f} ± {v.std(ddof=1):.4f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="ml-100k", choices=sorted(CONFIGS))
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int, default=None, help="cap the configurations' epochs (quick checks)")
    p.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022],
                   help="each seed sets the cold-items split and the training")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (torch.set_num_threads)")
    p.add_argument("--cold-fraction", type=float, default=0.1)
    p.add_argument("--out", default=None,
                   help="file for the printed output (default experiments/results/cold_start_<dataset>.txt; '' for none)")
    a = p.parse_args()
    if a.threads < 1:
        p.error("--threads must be >= 1")
    torch.set_num_threads(a.threads)
    prefix = CONFIGS[a.dataset]
    out = HERE / "results" / f"cold_start_{prefix}.txt" if a.out is None else (Path(a.out) if a.out else None)

    log = Report()
    script = Path(sys.argv[0])
    try:  # the command as run from the repository root, without this machine's paths
        script = script.resolve().relative_to(HERE.parent)
    except ValueError:
        pass
    command = "python " + " ".join(shlex.quote(x) for x in [str(script), *sys.argv[1:]])
    date = f"{datetime.now(timezone.utc):%Y-%m-%d}"
    log(f"$ {command}")
    cpu = f"CPU ({platform.processor() or platform.machine()})"
    log(f"graphrec {__import__('graphrec').__version__}, torch {torch.__version__}, {date}, {cpu}, "
        f"torch threads {torch.get_num_threads()} (OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}), device {a.device}")

    per_seed: dict[str, list[dict[str, float]]] = {name: [] for _, name in MODELS}
    per_seed[RANDOM] = []
    runs: dict[str, list[dict[str, float | int]]] = {name: [] for _, name in MODELS}
    cold_counts: list[int] = []
    user_counts: list[int] = []
    started = time.perf_counter()
    for seed in a.seeds:
        cold_mask = None
        ev = None
        for suffix, row in MODELS:
            cfg = load_config(HERE / f"{prefix}-{suffix}.yaml")
            epochs = min(cfg.train.epochs, a.epochs) if a.epochs else cfg.train.epochs
            train = replace(cfg.train, device=a.device, progress=False, seed=seed, threads=a.threads, epochs=epochs)
            cfg = replace(cfg, train=train, text=replace(cfg.text, device=a.device),
                          split=replace(cfg.split, method="cold-items", cold_fraction=a.cold_fraction, seed=seed))
            data = prepare(cfg)
            # cold: no train and no valid interaction (the held-out items)
            seen = np.asarray(data.train.sum(axis=0)).ravel() + np.asarray(data.valid.sum(axis=0)).ravel()
            mask = seen == 0
            if cold_mask is None:
                cold_mask = mask
                history = data.seen
                cold_truth = data.test.multiply(cold_mask[None, :].astype(np.float32)).tocsr()
                cold_truth.eliminate_zeros()
                ev = Evaluator(cold_truth, history, ks=(20,), metrics=("recall", "ndcg"), candidates=cold_mask)
                cold_counts.append(int(cold_mask.sum()))
                user_counts.append(len(ev.users))
                log(f"seed {seed}: {data.split.method}: {int(cold_mask.sum())} cold items, "
                    f"{len(ev.users)} test users with a cold item ({cold_truth.nnz} cold test interactions)")
            elif not np.array_equal(mask, cold_mask):
                raise SystemExit(f"seed {seed}: {suffix} got other cold items than {MODELS[0][0]}")
            assert ev is not None
            model = build_model(cfg, data)
            t = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix=f"cold-start-{suffix}-") as run_dir:
                trainer = Trainer(model, data.train, Evaluator(data.valid, data.train, ks=(20,)), cfg.train,
                                  run_dir=run_dir, negative_items=~cold_mask)
                trainer.fit()
                trainer.load_best()
            model = trainer.model
            reloaded = trainer.valid.evaluate(model)[cfg.train.metric] if trainer.valid is not None else float("nan")
            seconds = time.perf_counter() - t
            m = ev.evaluate(model)
            per_seed[row].append(m)
            runs[row].append({"seed": seed, "best_epoch": trainer.best_epoch, "epochs_run": len(trainer.history),
                              "seconds": round(seconds, 1)})
            log(f"seed {seed}: {row:<36} recall@20 {m['recall@20']:.4f} ndcg@20 {m['ndcg@20']:.4f}  "
                f"(best valid {cfg.train.metric} {trainer.best_value:.4f} at epoch {trainer.best_epoch} "
                f"[{reloaded:.4f} re-evaluated after load_best] of "
                f"{len(trainer.history)} run, budget {cfg.train.epochs} epochs / patience {cfg.train.patience}; "
                f"{seconds:.0f} s on {trainer.device}, {trainer.threads} threads, median epoch "
                f"{np.median([h['train_seconds'] for h in trainer.history]):.2f} s + valid eval "
                f"{np.median([h.get('eval_seconds', 0.0) for h in trainer.history]):.2f} s)")
        assert ev is not None and cold_mask is not None
        # random ranker: fixed random scores over the items, averaged over draws
        draws = []
        for r in range(RANDOM_DRAWS):
            rnd = MostPopular(*ev.truth.shape)
            rnd.popularity.copy_(torch.rand(len(cold_mask), generator=torch.Generator().manual_seed(seed * 1000 + r)))
            draws.append(ev.evaluate(rnd))
        m = {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}
        per_seed[RANDOM].append(m)
        log(f"seed {seed}: {RANDOM:<36} recall@20 {m['recall@20']:.4f} ndcg@20 {m['ndcg@20']:.4f}")

    log()
    log(f"Cold-start items, {a.dataset}: {a.cold_fraction:g} of the items held out entirely "
        f"({'/'.join(map(str, cold_counts))} cold items, {'/'.join(map(str, user_counts))} test users with one, "
        f"per seed); each model ranks only the cold items. Mean ± std over seeds {', '.join(map(str, a.seeds))}; "
        f"best validation epoch evaluated; cold items never drawn as negatives. "
        f"Total {time.perf_counter() - started:.0f} s.")
    log()
    log("| model | " + " | ".join(h for _, h in METRICS) + " | best epoch / epochs run (per seed) |")
    log("| --- | " + " | ".join("---" for _ in METRICS) + " | --- |")
    for row, ms in per_seed.items():
        cells = [mean_std([x[k] for x in ms]) for k, _ in METRICS]
        epochs = ", ".join(f"{r['best_epoch']} / {r['epochs_run']}" for r in runs[row]) if row in runs else ""
        log(f"| {row} | " + " | ".join(cells) + f" | {epochs} |")
    summary: dict = {"dataset": a.dataset, "seeds": a.seeds, "threads": torch.get_num_threads(),
                     "epochs_cap": a.epochs, "cold_items": cold_counts, "cold_users": user_counts}
    for row, ms in per_seed.items():
        entry: dict = {}
        for k, _ in METRICS:
            v = [x[k] for x in ms]
            entry[k] = round(float(np.mean(v)), 4)
            entry[f"{k}_std"] = round(float(np.std(v, ddof=1)), 4) if len(v) > 1 else None
        entry["per_seed"] = [{"seed": seed, **{k: round(x[k], 4) for k, _ in METRICS},
                              **({kk: vv for kk, vv in runs[row][i].items() if kk != "seed"} if row in runs else {})}
                             for i, (seed, x) in enumerate(zip(a.seeds, ms, strict=True))]
        summary[row] = entry
    log()
    log(json.dumps(summary))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        log.save(out)


if __name__ == "__main__":
    main()
