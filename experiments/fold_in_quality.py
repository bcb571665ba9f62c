"""How good is a folded-in user? Test metrics of a trained LightGCN's users embedded from their train history alone.

``graphrec serve`` and ``recommend_for_history`` embed a user the model never
saw (or whose history changed) without retraining. For every user of a
finished ML-100K LightGCN run, this script embeds them from their train items
as if they were new, and scores the test part (train + valid left out) with:

* the trained embeddings (the reference);
* ``LightGCN.fold_in``: the user's row of the propagation recomputed over the
  trained layers (a new user's layer 0 is zero), graphrec's fold-in;
* the mean of the history's final item embeddings (graphrec's fold-in
  before, and the usual one of embedding models);
* ``fold_in`` with the user's own layer 0 (a trained user whose history
  changed): equal to the trained embeddings when nothing changed, a check.

Usage: python experiments/fold_in_quality.py [--run RUN_DIR]
Output: printed, and saved to ``--out`` (default ``experiments/results/fold_in_quality.txt``); last line one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch
from report import Report  # experiments/report.py: scripts run from this folder

HERE = Path(__file__).resolve().parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default=os.path.expanduser("~/.cache/graphrec/bench-serve-ml100k-lightgcn"),
                   help="a finished LightGCN run (default: the one experiments/bench_serve.py trains)")
    p.add_argument("--out", default=str(HERE / "results" / "fold_in_quality.txt"))
    a = p.parse_args()
    from graphrec.nn import LightGCN
    from graphrec.nn.baselines import MFBPR
    from graphrec.run import evaluators, load_run

    say = Report()
    say(f"# fold_in_quality: {' '.join(sys.argv[1:]) or '(defaults)'}")
    config, data, model = load_run(a.run)
    if not isinstance(model, LightGCN):
        sys.exit(f"{a.run}: a {type(model).__name__} run; this script compares LightGCN fold-ins")
    say(f"run: {a.run} ({config.name}, {type(model).__name__}, {model.num_layers} layers)")
    _, test_ev = evaluators(config, data)
    train = data.train.tocsr()
    model.eval()
    with torch.inference_mode():
        users, items = model.get_embedding()
        state = model.fold_in_state()
        rows = [torch.from_numpy(train[u].indices.astype("int64")) for u in range(model.num_users)]
        variants = {
            "trained embeddings": users,
            "fold_in, as a new user (graphrec)": torch.stack(
                [model.fold_in(r, state=state) if len(r) else torch.zeros_like(users[0]) for r in rows]),
            "mean of the history's item embeddings": torch.stack(
                [items[r].mean(0) if len(r) else torch.zeros_like(users[0]) for r in rows]),
            "fold_in with the user's own layer 0": torch.stack(
                [model.fold_in(r, user=u, state=state) if len(r) else users[u] for u, r in enumerate(rows)]),
        }
    results = {}
    say()
    say("| user embedding | test Recall@20 | test NDCG@20 |")
    say("| --- | --- | --- |")
    for name, matrix in variants.items():
        fixed = MFBPR(model.num_users, model.num_items, dim=matrix.shape[1])
        with torch.no_grad():
            fixed.user_emb.weight.copy_(matrix)
            fixed.item_emb.weight.copy_(items)
        m = test_ev.evaluate(fixed.eval())
        results[name] = {"recall@20": m["recall@20"], "ndcg@20": m["ndcg@20"]}
        say(f"| {name} | {m['recall@20']:.4f} | {m['ndcg@20']:.4f} |")
    ref = results["trained embeddings"]["recall@20"]
    say()
    say("Recall@20 relative to the trained embeddings: " + ", ".join(
        f"{k}: {v['recall@20'] / ref:.3f}" for k, v in results.items() if k != "trained embeddings"))
    say(json.dumps({k: {m: round(x, 4) for m, x in v.items()} for k, v in results.items()}))
    say.save(Path(a.out))


if __name__ == "__main__":
    main()
