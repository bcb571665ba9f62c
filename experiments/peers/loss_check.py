"""Check that graphrec's and RecBole's LightGCN losses agree on the same weights and the same batch.

Run with graphrec's python; it runs itself a second time with RecBole's (its
venv from ``setup_recbole.sh``)::

    python experiments/peers/loss_check.py [--peer-venv DIR] [--seed 2020] [--data-dir DIR]

graphrec side: the ML-100K per-user random 80/10/10 split (seed), exported as
TSV and read back, a LightGCN (dim 64, 3 layers, reg 1e-4) and a batch of
2048 train (user, positive) pairs with uniform negatives; the layer-0
embeddings are scaled by 1 (xavier init) and by 10 (norms more like a trained
model's). For each: graphrec's loss with its own regulariser, with RecBole's
default one (``LightGCNRecBoleReg`` of ``bench_vs_recbole.py``) and without
any (reg 0). RecBole side: RecBole 1.2.1's LightGCN on the same files with
the same embeddings copied in by raw id, ``calculate_loss`` on the same batch
with ``require_pow=True``, with ``require_pow=False`` and with
``reg_weight=0``. Prints the pairs and their differences; the last line is
JSON with the largest absolute difference.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCALES = (1.0, 10.0)


def graphrec_side(a: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch

    sys.path.insert(0, str(HERE.parent))
    from bench_vs_recbole import LightGCNRecBoleReg, dataset_from_tsv

    from graphrec.data import load_movielens, random_split
    from graphrec.eval import to_csr
    from graphrec.graph import normalized_adjacency
    from graphrec.nn import LightGCN

    split = random_split(load_movielens("ml-100k", a.data_dir, download=False), (0.8, 0.1, 0.1), seed=a.seed,
                         shuffle="global")  # the split of the recorded figures
    same = dataset_from_tsv(split.export_tsv(work))
    ds, tr = same.dataset, same.part("train")
    adj = normalized_adjacency(to_csr(tr.user, tr.item, ds.num_users, ds.num_items))
    gen = torch.Generator().manual_seed(a.seed)
    pick = torch.randint(len(tr.user), (2048,), generator=gen).numpy()
    users = torch.as_tensor(tr.user[pick], dtype=torch.long)
    pos = torch.as_tensor(tr.item[pick], dtype=torch.long)
    neg = torch.randint(ds.num_items, (2048,), generator=gen)
    torch.manual_seed(a.seed)
    own = LightGCN(ds.num_users, ds.num_items, adj, dim=64, num_layers=3, reg=1e-4)
    models = {"squared": own,
              "unsquared": LightGCNRecBoleReg(ds.num_users, ds.num_items, adj, dim=64, num_layers=3, reg=1e-4),
              "none": LightGCN(ds.num_users, ds.num_items, adj, dim=64, num_layers=3, reg=0.0)}
    out: dict[str, Any] = {"user_ids": [str(x) for x in ds.users.ids], "item_ids": [str(x) for x in ds.items.ids],
                           "users": users.tolist(), "pos": pos.tolist(), "neg": neg.tolist(), "cases": []}
    base = {k: v.clone() for k, v in own.state_dict().items()}
    for scale in SCALES:
        state = {k: (v * scale if k in ("user_emb.weight", "item_emb.weight") else v) for k, v in base.items()}
        losses = {}
        for form, m in models.items():
            m.load_state_dict(state)
            with torch.no_grad():
                losses[form] = float(m.loss(users, pos, neg))
        out["cases"].append({"scale": scale, "graphrec": losses, "user_emb": state["user_emb.weight"].tolist(),
                             "item_emb": state["item_emb.weight"].tolist()})
    return out


def recbole_side(work: Path, graphrec: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.data.interaction import Interaction
    from recbole.model.general_recommender import LightGCN

    sys.path.insert(0, str(HERE))
    from recbole_lightgcn import to_atomic

    (work / "split").mkdir()
    for part in ("train", "valid", "test"):
        to_atomic(str(work / f"{part}.tsv"), str(work / "split" / f"split.{part}.inter"))
    config = Config(model="LightGCN", dataset="split", config_dict={
        "data_path": str(work), "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"]}, "embedding_size": 64, "n_layers": 3, "reg_weight": 1e-4,
        "eval_args": {"group_by": "user", "order": "RO", "mode": "full"}, "device": "cpu", "use_gpu": False,
        "gpu_id": "", "checkpoint_dir": str(work / "saved"), "show_progress": False})
    ds = create_dataset(config)
    train_data, _, _ = data_preparation(config, ds)
    model = LightGCN(config, train_data._dataset)
    uid = torch.tensor([ds.token2id("user_id", t) for t in graphrec["user_ids"]])
    iid = torch.tensor([ds.token2id("item_id", t) for t in graphrec["item_ids"]])
    batch = Interaction({"user_id": uid[torch.tensor(graphrec["users"])], "item_id": iid[torch.tensor(graphrec["pos"])],
                         "neg_item_id": iid[torch.tensor(graphrec["neg"])]})
    cases = []
    for case in graphrec["cases"]:
        with torch.no_grad():
            model.user_embedding.weight[uid] = torch.tensor(case["user_emb"])
            model.item_embedding.weight[iid] = torch.tensor(case["item_emb"])
        losses = {}
        for form, pow_, weight in (("squared", True, 1e-4), ("unsquared", False, 1e-4), ("none", False, 0.0)):
            model.require_pow, model.reg_weight = pow_, weight
            with torch.no_grad():
                losses[form] = float(model.calculate_loss(batch))
        cases.append(losses)
    return {"cases": cases}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--peer-venv", default=None, help="RecBole's venv (default: setup_recbole.sh's choice)")
    p.add_argument("--recbole-side", default=None, help=argparse.SUPPRESS)  # internal: the work folder
    a = p.parse_args()
    if a.recbole_side:
        work = Path(a.recbole_side)
        result = recbole_side(work, json.loads((work / "graphrec.json").read_text()))
        print(json.dumps(result))
        return

    import torch

    torch.set_num_threads(2)
    setup = subprocess.run(["bash", str(HERE / "setup_recbole.sh")] + ([a.peer_venv] if a.peer_venv else []),
                           capture_output=True, text=True, check=True)
    venv = setup.stdout.strip().splitlines()[-1]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ours = graphrec_side(a, work)
        (work / "graphrec.json").write_text(json.dumps(ours))
        env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
        run = subprocess.run([str(Path(venv) / "bin" / "python"), __file__, "--recbole-side", str(work)],
                             capture_output=True, text=True, env=env, cwd=work)
        if run.returncode != 0:
            sys.exit(f"RecBole side failed:\n{run.stderr[-3000:]}")
        theirs = json.loads(run.stdout.strip().splitlines()[-1])
    names = {"squared": "graphrec own reg  vs RecBole require_pow=True ",
             "unsquared": "graphrec subclass vs RecBole default (no pow) ",
             "none": "BPR only (reg 0)  graphrec vs RecBole         "}
    worst = 0.0
    for case, rb in zip(ours["cases"], theirs["cases"], strict=True):
        for form, label in names.items():
            g, r = case["graphrec"][form], rb[form]
            worst = max(worst, abs(g - r))
            print(f"embeddings x{case['scale']:<4g} {label} {g:.9f}  {r:.9f}  diff {g - r:+.2e}")
    print(json.dumps({"seed": a.seed, "max_abs_loss_diff": worst}))


if __name__ == "__main__":
    main()
