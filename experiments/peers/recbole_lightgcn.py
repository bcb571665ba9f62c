"""RecBole 1.2.1's LightGCN on a given train/valid/test split: the peer of
``experiments/bench_vs_recbole.py``.

Runs inside RecBole's own venv (``experiments/peers/setup_recbole.sh``), never
graphrec's. Each split file is a TSV whose first two columns are user and item
ids under a header line (graphrec's ``Split.export_tsv`` writes such files);
further columns are ignored. The script copies them into RecBole's atomic
format (``<name>.train.inter`` etc., read with ``benchmark_filename``), so
RecBole neither re-splits nor filters them.

Every epoch: one training pass (RecBole's ``Trainer._train_epoch``, BPR with
one uniform negative per interaction), then a full-ranking evaluation on valid
(``Trainer._valid_epoch``), each timed. The parameters of the epoch with the
best valid NDCG@K are kept and evaluated on test, train and valid items
masked. No early stopping.

The regulariser is RecBole's ``EmbLoss`` on the batch's layer-0 (ego)
embeddings, weighted by ``--reg``:

* default (``require_pow=False``, RecBole's LightGCN default):
  ``(||U_b||_F + ||P_b||_F + ||N_b||_F) / B``, unsquared Frobenius norms;
* ``--require-pow``: ``(||U_b||²_F + ||P_b||²_F + ||N_b||²_F) / (2B)``, which
  is graphrec's LightGCN regulariser term for term.

Prints one JSON object as its last line of stdout.

Usage (with the venv's python):
  python recbole_lightgcn.py --train T.tsv --valid V.tsv --test S.tsv
      [--epochs 50] [--batch 2048] [--dim 64] [--layers 3] [--lr 0.001]
      [--reg 1e-4] [--require-pow] [--k 20] [--seed 2020] [--threads 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time

# RecBole 1.2.1 loads its own checkpoints with torch.load's old default
# (weights_only=False); torch >= 2.6 changed it.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import torch


def to_atomic(src: str, dst: str) -> int:
    """Copy the first two columns of a headed TSV into a RecBole ``.inter`` file; return the row count."""
    rows = 0
    with open(src, newline="") as fin, open(dst, "w", newline="") as fout:
        reader = csv.reader(fin, delimiter="\t")
        next(reader)  # header
        fout.write("user_id:token\titem_id:token\n")
        for rec in reader:
            if rec:
                fout.write(f"{rec[0]}\t{rec[1]}\n")
                rows += 1
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for part in ("train", "valid", "test"):
        p.add_argument(f"--{part}", required=True, help=f"{part} TSV (user, item, ... with a header)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--reg", type=float, default=1e-4, help="RecBole's reg_weight")
    p.add_argument("--require-pow", action="store_true",
                   help="squared norms / 2B (graphrec's form) instead of RecBole's default unsquared norms / B")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    from recbole import __version__ as recbole_version
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    with tempfile.TemporaryDirectory(prefix="recbole-peer-") as work:
        name = "split"
        os.makedirs(os.path.join(work, name))
        rows = {part: to_atomic(getattr(a, part), os.path.join(work, name, f"{name}.{part}.inter"))
                for part in ("train", "valid", "test")}
        config = Config(model="LightGCN", dataset=name, config_dict={
            "data_path": work, "benchmark_filename": ["train", "valid", "test"],
            "load_col": {"inter": ["user_id", "item_id"]},
            "epochs": a.epochs, "train_batch_size": a.batch, "eval_batch_size": 1 << 22,
            "embedding_size": a.dim, "n_layers": a.layers, "learning_rate": a.lr,
            "reg_weight": a.reg, "require_pow": a.require_pow,
            "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
            "metrics": ["Recall", "NDCG"], "topk": [a.k], "valid_metric": f"NDCG@{a.k}",
            "seed": a.seed, "reproducibility": True, "show_progress": False,
            "device": "cpu", "use_gpu": False, "gpu_id": "", "worker": 0,
            "checkpoint_dir": os.path.join(work, "saved"), "log_wandb": False,
        })
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
        init_seed(config["seed"], config["reproducibility"])  # parameters drawn from the seed alone
        model = LightGCN(config, train_data._dataset).to(config["device"])
        trainer = Trainer(config, model)
        torch.set_num_threads(a.threads)  # in case RecBole's set-up changed it

        key = f"ndcg@{a.k}"
        epoch_s: list[float] = []
        eval_s: list[float] = []
        losses: list[float] = []
        best, best_epoch, best_state = float("-inf"), -1, None
        for epoch in range(a.epochs):
            t = time.perf_counter()
            loss = trainer._train_epoch(train_data, epoch, show_progress=False)
            epoch_s.append(time.perf_counter() - t)
            losses.append(float(sum(loss) if isinstance(loss, tuple) else loss))
            t = time.perf_counter()
            valid = trainer._valid_epoch(valid_data, show_progress=False)[1]
            eval_s.append(time.perf_counter() - t)
            if valid[key] > best:
                best, best_epoch = valid[key], epoch
                best_state = {n: v.detach().clone() for n, v in model.state_dict().items()}
        assert best_state is not None
        model.load_state_dict(best_state)
        # LightGCN caches its propagated embeddings for full ranking (restore_user_e / restore_item_e,
        # cleared only by a training step); without this the test would score the last epoch's ones.
        model.restore_user_e = model.restore_item_e = None
        t = time.perf_counter()
        test = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
        test_s = time.perf_counter() - t

    print(json.dumps({
        "system": f"RecBole {recbole_version} LightGCN", "torch": torch.__version__,
        "threads": torch.get_num_threads(), "require_pow": a.require_pow, "reg": a.reg, "seed": a.seed,
        "rows": rows, "users": int(dataset.user_num - 1), "items": int(dataset.item_num - 1),  # minus [PAD]
        "epoch_seconds": epoch_s, "valid_eval_seconds": eval_s, "test_eval_seconds": test_s, "losses": losses,
        "best_epoch": best_epoch, f"valid_ndcg@{a.k}": best,
        f"test_recall@{a.k}": float(test[f"recall@{a.k}"]), f"test_ndcg@{a.k}": float(test[f"ndcg@{a.k}"]),
    }))


if __name__ == "__main__":
    main()
