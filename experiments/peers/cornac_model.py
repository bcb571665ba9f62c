"""Train a Cornac model on a graphrec split's train + valid pairs and save it for ``cornac.serving``.

Runs inside Cornac's venv (experiments/peers/setup_cornac.sh), called by
experiments/bench_serve.py. Input: a TSV of ``user<TAB>item`` (raw ids, one
pair per line). Output: the model folder Cornac's server loads (with its train
set, so ``remove_seen=true`` works); its last line of stdout is a JSON object
with ``model_path`` and ``fit_seconds``.

Usage: python cornac_model.py --pairs PAIRS.tsv --out DIR [--model bpr] [--dim 64] [--epochs 100] [--seed 2020]
"""

import argparse
import json
import time

import cornac
from cornac.data import Dataset


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pairs", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--model", default="bpr", choices=["bpr"])
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--seed", type=int, default=2020)
    a = p.parse_args()
    with open(a.pairs) as f:
        triples = [(u, i, 1.0) for u, i in (line.rstrip("\n").split("\t") for line in f if line.strip())]
    train = Dataset.from_uir(triples, seed=a.seed)
    model = cornac.models.BPR(k=a.dim, max_iter=a.epochs, learning_rate=0.01, lambda_reg=0.001, seed=a.seed,
                              verbose=False)
    start = time.perf_counter()
    model.fit(train)
    fit = time.perf_counter() - start
    path = model.save(a.out, save_trainset=True)
    print(json.dumps({"model_path": path, "model_class": "cornac.models.BPR", "fit_seconds": fit,
                      "users": train.num_users, "items": train.num_items, "cornac": cornac.__version__}))


if __name__ == "__main__":
    main()
