"""One RecBole 1.2.1 model (LightGCN, EASE, SGL, NCL or SimpleX) on a given train/valid/test split: the peer of
``experiments/bench_vs_recbole.py``.

Runs inside RecBole's own venv (``experiments/peers/setup_recbole.sh``), never
graphrec's. Each split file is a TSV whose first two columns are user and item
ids under a header line (graphrec's ``Split.export_tsv`` writes such files);
further columns are ignored. The script copies them into RecBole's atomic
format (``<name>.train.inter`` etc., read with ``benchmark_filename``), so
RecBole neither re-splits nor filters them.

Hyperparameters: RecBole's own defaults (``recbole/properties/overall.yaml``
and ``recbole/properties/model/<Model>.yaml``), except what the options set:
``--epochs``, ``--batch`` (``train_batch_size``), ``--lr``
(``learning_rate``), ``--dim`` (``embedding_size``), ``--seed``, and, only
when given, ``--layers`` (``n_layers``), ``--reg`` (``reg_weight``),
``--require-pow`` and ``--config-json`` (any other RecBole keys, as one JSON
object; a key RecBole's files do not define is refused, exit status 2).

Trained models (LightGCN, SGL, NCL, SimpleX), every epoch: one training pass
(RecBole's ``Trainer._train_epoch``: SGL rebuilds its two edge-dropped graphs
there, in ``model.train()``), then a full-ranking evaluation on valid
(``Trainer._valid_epoch``), each timed. NCL first runs its E-step (k-means of
the user and item embeddings with faiss, every ``m_step`` epochs, as
RecBole's ``NCLTrainer.fit``), timed on its own (``e_step_seconds``) and
included in ``epoch_seconds``. The parameters of the epoch with the best
valid NDCG@K are kept and evaluated on test, train and valid items masked. No
early stopping.

EASE (closed form): the model is fitted when it is built (``fit_seconds``),
then evaluated once on valid and once on test; ``epoch_seconds`` is empty.

Exit status 3 (with the reason as the last line of stderr): the model cannot
run here (NCL without faiss, or with more clusters than users or items).

LightGCN's regulariser is RecBole's ``EmbLoss`` on the batch's layer-0 (ego)
embeddings, weighted by ``reg_weight``:

* default (``require_pow=False``): ``(||U_b||_F + ||P_b||_F + ||N_b||_F) / B``,
  unsquared Frobenius norms;
* ``--require-pow``: ``(||U_b||²_F + ||P_b||²_F + ||N_b||²_F) / (2B)``, which
  is graphrec's LightGCN regulariser term for term.

Prints one JSON object as its last line of stdout.

Usage (with the venv's python):
  python recbole_run.py --train T.tsv --valid V.tsv --test S.tsv [--model LightGCN]
      [--epochs 50] [--batch 2048] [--dim 64] [--lr 0.001] [--layers L] [--reg R] [--require-pow]
      [--config-json '{"ssl_weight": 0.1}'] [--k 20] [--seed 2020] [--threads 2]
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import sys
import tempfile
import time
from typing import Any, NoReturn

# RecBole 1.2.1 loads its own checkpoints with torch.load's old default
# (weights_only=False); torch >= 2.6 changed it.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import torch

MODELS = ("LightGCN", "EASE", "SGL", "NCL", "SimpleX")
#: exit status when the model cannot run in this venv or on this data (the caller skips it)
CANNOT_RUN = 3


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


def cannot_run(why: str) -> NoReturn:
    print(why, file=sys.stderr)
    sys.exit(CANNOT_RUN)


def usage_error(why: str) -> NoReturn:
    print(why, file=sys.stderr)
    sys.exit(2)  # argparse's status for a bad command line


def recbole_keys(model: str) -> tuple[set[str], list[str]]:
    """(every key RecBole's property files define, the model's own keys in its file's order)."""
    import recbole
    import yaml

    props = os.path.join(os.path.dirname(os.path.abspath(recbole.__file__)), "properties")
    keys: set[str] = set()
    for root, _, files in os.walk(props):
        for f in files:
            if f.endswith(".yaml"):
                with open(os.path.join(root, f)) as fh:
                    keys.update((yaml.safe_load(fh) or {}).keys())
    with open(os.path.join(props, "model", f"{model}.yaml")) as fh:
        own = list((yaml.safe_load(fh) or {}).keys())
    return keys, own


def parser(defaults: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for part in ("train", "valid", "test"):
        p.add_argument(f"--{part}", required=True, help=f"{part} TSV (user, item, ... with a header)")
    p.add_argument("--model", default="LightGCN", choices=MODELS)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch", type=int, default=2048, help="train_batch_size")
    p.add_argument("--dim", type=int, default=64, help="embedding_size")
    p.add_argument("--lr", type=float, default=1e-3, help="learning_rate")
    p.add_argument("--layers", type=int, default=None, help="n_layers (default: the model's RecBole default)")
    p.add_argument("--reg", type=float, default=None, help="reg_weight (default: the model's RecBole default)")
    p.add_argument("--require-pow", action="store_true",
                   help="squared norms / 2B (graphrec's form) instead of RecBole's default unsquared norms / B")
    p.add_argument("--config-json", default="{}", help="further RecBole settings, one JSON object")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--threads", type=int, default=2)
    if defaults:
        p.set_defaults(**defaults)
    return p


def main(defaults: dict[str, Any] | None = None) -> None:
    """``defaults``: parser defaults (``recbole_lightgcn.py`` keeps its old ones with it)."""
    a = parser(defaults).parse_args()
    torch.set_num_threads(a.threads)
    try:
        extra = json.loads(a.config_json)
    except json.JSONDecodeError as e:
        usage_error(f"--config-json: not JSON: {e}")
    if not isinstance(extra, dict):
        usage_error("--config-json: expected one JSON object")
    if a.model == "NCL" and importlib.util.find_spec("faiss") is None:
        cannot_run("NCL needs faiss for its k-means E-step, which this venv lacks: "
                   "pip install faiss-cpu (experiments/peers/setup_recbole.sh installs it)")

    from recbole import __version__ as recbole_version
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.trainer import Trainer
    from recbole.utils import get_model, init_seed

    known, own_keys = recbole_keys(a.model)
    unknown = sorted(k for k in extra if k not in known)
    if unknown:
        usage_error(f"--config-json: RecBole 1.2.1 defines no key(s) {unknown}; {a.model}'s own keys: {own_keys}")
    settings: dict[str, Any] = {"epochs": a.epochs, "train_batch_size": a.batch, "embedding_size": a.dim,
                                "learning_rate": a.lr, "seed": a.seed}
    if a.layers is not None:
        settings["n_layers"] = a.layers
    if a.reg is not None:
        settings["reg_weight"] = a.reg
    if a.require_pow:
        settings["require_pow"] = True
    settings.update(extra)

    with tempfile.TemporaryDirectory(prefix="recbole-peer-") as work:
        name = "split"
        os.makedirs(os.path.join(work, name))
        rows = {part: to_atomic(getattr(a, part), os.path.join(work, name, f"{name}.{part}.inter"))
                for part in ("train", "valid", "test")}
        config = Config(model=a.model, dataset=name, config_dict={
            "data_path": work, "benchmark_filename": ["train", "valid", "test"],
            "load_col": {"inter": ["user_id", "item_id"]}, "eval_batch_size": 1 << 22,
            "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
            "metrics": ["Recall", "NDCG"], "topk": [a.k], "valid_metric": f"NDCG@{a.k}",
            "reproducibility": True, "show_progress": False,
            "device": "cpu", "use_gpu": False, "gpu_id": "", "worker": 0,
            "checkpoint_dir": os.path.join(work, "saved"), "log_wandb": False,
            **settings,
        })
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
        n_users, n_items = int(dataset.user_num - 1), int(dataset.item_num - 1)  # minus [PAD]
        if a.model == "NCL" and config["num_clusters"] > min(n_users, n_items):
            cannot_run(f"NCL: num_clusters {config['num_clusters']} > {min(n_users, n_items)} (users {n_users}, "
                       f"items {n_items}): faiss's k-means needs at least as many points as clusters; set a "
                       "smaller num_clusters")
        init_seed(config["seed"], config["reproducibility"])  # parameters drawn from the seed alone
        t = time.perf_counter()
        model = get_model(a.model)(config, train_data._dataset).to(config["device"])
        build_s = time.perf_counter() - t  # EASE fits here
        trainer = Trainer(config, model)  # NCLTrainer's one change (the E-step) is in the loop below
        torch.set_num_threads(a.threads)  # in case RecBole's set-up changed it

        key = f"ndcg@{a.k}"
        epoch_s: list[float] = []
        e_step_s: list[float] = []
        eval_s: list[float] = []
        losses: list[float] = []
        best, best_epoch, best_state = float("-inf"), -1, None
        if a.model == "EASE":
            t = time.perf_counter()
            valid = trainer._valid_epoch(valid_data, show_progress=False)[1]
            eval_s.append(time.perf_counter() - t)
            best, best_epoch = valid[key], 0
        for epoch in range(a.epochs if a.model != "EASE" else 0):
            e_step = 0.0
            if a.model == "NCL" and epoch % config["m_step"] == 0:
                t = time.perf_counter()
                model.e_step()
                e_step = time.perf_counter() - t
            e_step_s.append(e_step)
            t = time.perf_counter()
            loss = trainer._train_epoch(train_data, epoch, show_progress=False)
            epoch_s.append(e_step + time.perf_counter() - t)
            losses.append(float(sum(loss) if isinstance(loss, tuple) else loss))
            t = time.perf_counter()
            valid = trainer._valid_epoch(valid_data, show_progress=False)[1]
            eval_s.append(time.perf_counter() - t)
            if valid[key] > best:
                best, best_epoch = valid[key], epoch
                best_state = {n: v.detach().clone() for n, v in model.state_dict().items()}
        if a.model != "EASE":
            assert best_state is not None
            model.load_state_dict(best_state)
        # LightGCN, SGL and NCL cache their propagated embeddings for full ranking (restore_user_e / restore_item_e,
        # cleared only by a training step); without this the test would score the last epoch's ones.
        if hasattr(model, "restore_user_e"):
            model.restore_user_e = model.restore_item_e = None
        t = time.perf_counter()
        test = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
        test_s = time.perf_counter() - t
        own = {k: config[k] for k in own_keys}  # the model's settings, then the training ones that apply
        for k in ("train_batch_size", "learning_rate", "require_pow", "train_neg_sample_args", *extra):
            if a.model != "EASE" or k in extra:
                own.setdefault(k, config[k])

    print(json.dumps({
        "system": f"RecBole {recbole_version} {a.model}", "model": a.model, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "require_pow": bool(config["require_pow"]), "reg": config["reg_weight"],
        "seed": a.seed, "config": own, "rows": rows, "users": n_users, "items": n_items,
        "epoch_seconds": epoch_s, "e_step_seconds": e_step_s if a.model == "NCL" else [],
        "fit_seconds": build_s, "valid_eval_seconds": eval_s, "test_eval_seconds": test_s, "losses": losses,
        "best_epoch": best_epoch, f"valid_ndcg@{a.k}": float(best),
        f"test_recall@{a.k}": float(test[f"recall@{a.k}"]), f"test_ndcg@{a.k}": float(test[f"ndcg@{a.k}"]),
    }, default=str))


if __name__ == "__main__":
    main()
