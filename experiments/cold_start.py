"""Cold-start items: how well models rank items that no one interacted with in train.

Holds out 10% of the items entirely (``split.method: cold-items``: none of
their interactions in train), trains GraphSAGE + text (with attribute nodes)
and text-aware LightGCN on the rest, and ranks, for every test user with a
cold item, only the cold items. Prints Recall@20 and NDCG@20 of each model
and of a random ranker (the mean over 20 random score draws).

Usage: python experiments/cold_start.py [--dataset ml-100k] [--device auto] [--epochs N] [--seed 2020]
Last line: one JSON object with the metrics per model.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from graphrec.eval import Evaluator
from graphrec.nn import MostPopular
from graphrec.run import build_model, load_config, prepare
from graphrec.train import Trainer

HERE = Path(__file__).resolve().parent
CONFIGS = {"ml-100k": "ml100k", "ml-latest-small": "mlsmall"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="ml-100k", choices=sorted(CONFIGS))
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int, default=None, help="cap the configurations' epochs")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--cold-fraction", type=float, default=0.1)
    a = p.parse_args()
    prefix = CONFIGS[a.dataset]
    results: dict[str, dict[str, float]] = {}
    cold_mask = None
    for name in ("graphsage-attrs", "text-lightgcn"):
        cfg = load_config(HERE / f"{prefix}-{name}.yaml")
        train = replace(cfg.train, device=a.device, progress=False, seed=a.seed,
                        epochs=min(cfg.train.epochs, a.epochs) if a.epochs else cfg.train.epochs)
        cfg = replace(cfg, train=train, text=replace(cfg.text, device=a.device),
                      split=replace(cfg.split, method="cold-items", cold_fraction=a.cold_fraction, seed=a.seed))
        data = prepare(cfg)
        pop = np.asarray(data.train.sum(axis=0)).ravel() + np.asarray(data.valid.sum(axis=0)).ravel()
        cold_mask = pop == 0
        history = (data.train + data.valid).tocsr()
        cold_truth = data.test.multiply(cold_mask[None, :].astype(np.float32)).tocsr()
        cold_truth.eliminate_zeros()
        ev = Evaluator(cold_truth, history, ks=(20,), metrics=("recall", "ndcg"), candidates=cold_mask)
        model = build_model(cfg, data)
        t = time.perf_counter()
        trainer = Trainer(model, data.train, Evaluator(data.valid, data.train, ks=(20,)), cfg.train)
        trainer.fit()
        model = trainer.model
        results[cfg.model.name + (" + attributes" if "attrs" in name else "")] = ev.evaluate(model)
        print(f"{name}: trained {len(trainer.history)} epochs in {time.perf_counter() - t:.0f} s on {trainer.device}; "
              f"{int(cold_mask.sum())} cold items, {len(ev.users)} test users with a cold item", flush=True)
    # random ranker: fixed random scores, averaged over draws
    draws = []
    for r in range(20):
        rnd = MostPopular(*data.train.shape)
        rnd.popularity.copy_(torch.rand(data.train.shape[1], generator=torch.Generator().manual_seed(r)))
        draws.append(ev.evaluate(rnd))
    results["random"] = {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}
    print(f"{'model':<28}{'Recall@20':>10}{'NDCG@20':>10}   (ranking only the cold items)")
    for model_name, m in results.items():
        print(f"{model_name:<28}{m['recall@20']:>10.4f}{m['ndcg@20']:>10.4f}")
    print(json.dumps({"dataset": a.dataset, "cold_items": int(cold_mask.sum()) if cold_mask is not None else 0,
                      **{k: {m: round(v, 4) for m, v in r.items()} for k, r in results.items()}}))


if __name__ == "__main__":
    main()
