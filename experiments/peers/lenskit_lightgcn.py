"""LensKit's LightGCN (``lenskit.graphs.lightgcn``, on PyTorch Geometric) on a given train/valid/test split: the
peer of ``experiments/bench_vs_lenskit.py``.

Runs inside LensKit's own venv (``experiments/peers/setup_lenskit.sh``), never
graphrec's. Each split file is a TSV whose first two columns are user and item
ids under a header line (graphrec's ``Split.export_tsv`` writes such files);
further columns are ignored. LensKit's dataset holds every user and item of
the three files (as graphrec's does: the same nodes, the same negatives to
draw) and the train rows as its interactions.

Settings (LensKit 2025.8.1's ``LightGCNConfig`` and trainer):

* ``embedding_size`` ``--dim`` (64), ``layer_count`` ``--layers`` (3),
  ``layer_blend`` None (1 / (L + 1) per layer, as graphrec), ``batch_size``
  ``--batch`` (2048), ``learning_rate`` ``--lr`` (1e-3), ``loss`` pairwise
  (BPR, ``-logsigmoid(s⁺ − s⁻)`` averaged over the batch), one negative per
  train row drawn uniformly from the items the user has no train row with
  (LensKit redraws up to 10 times; graphrec redraws until it finds one);
  ``regularization`` None, so LensKit trains with plain Adam (a value makes it
  AdamW with that weight decay on every embedding, which graphrec has no form
  of). Initialisation: PyG's, Xavier-uniform over one [users + items, dim]
  table (graphrec: Xavier-uniform per table).
* L2: LensKit calls PyG's ``LightGCN.recommendation_loss`` without
  ``lambda_reg``, so PyG's fixed 1e-4 applies, as
  ``1e-4 · (2||U_b||² + ||P_b||² + ||N_b||²) / B`` on the layer-0 rows (the
  batch's users count twice: once per edge); graphrec's is
  ``reg · (||U_b||² + ||P_b||² + ||N_b||²) / (2B)``. ``--reg`` cannot change
  LensKit's.

Two defects of LensKit's trainer (2025.8.1, and 2026.4.0 alike) are measured
as shipped unless asked otherwise:

* it propagates over the user → item edges only. PyG's ``LGConv`` normalises
  by the in-degree (``gcn_norm``), which is zero for every user, so every edge
  weight is 0 and every layer after 0 is zero: the "LightGCN" is matrix
  factorisation, its scores scaled by ``alpha_0² = 1 / (L + 1)²``.
  ``--undirected`` adds the item → user edges (the positives are still drawn
  from the user → item ones), which gives the paper's symmetric propagation;
* it never zeroes the gradients, so every Adam step uses the sum of all the
  gradients since training began. ``--zero-grad`` zeroes them before each
  batch's backward pass.

``--graphrec-reg`` replaces PyG's L2 term by graphrec's with ``--reg``.
Everything else (data, sampling, PyG model, optimiser, LensKit's epoch loop)
is LensKit's. The report says what was run (``fixes``, ``config``).

Every epoch: LensKit's ``trainer.train_epoch()`` (the trainer of
``LightGCNScorer.create_trainer``; LensKit's own ``train`` runs the same call
``epochs`` times, without a per-epoch hook), timed; then a full-ranking
evaluation on valid, timed apart. The parameters of the epoch with the best
valid NDCG@K are kept and evaluated on test (train and valid items excluded).
No early stopping.

Evaluation: this script's, with numpy, on the scores LensKit's scorer computes
(the dot products of ``model.get_embedding(edges)``'s user and item rows; the
first evaluation checks them against ``LightGCNScorer.__call__`` for two
users). The definitions are graphrec's (``graphrec/eval/metrics.py``, which
are RecBole's): every user with at least one held-out item; every item
scored except the user's train items (and valid items on test); Recall@K =
hits / |held-out|; NDCG@K = DCG / IDCG with binary gains, ``1 / log2(rank +
1)`` discounts, the ideal list holding ``min(|held-out|, K)`` items. Equal
scores are ordered by item index (graphrec orders them at random: real-valued
scores hardly tie).

Prints one JSON object as its last line of stdout (the keys of
``recbole_run.py``'s where they apply).

Usage (with the venv's python):
  python lenskit_lightgcn.py --train T.tsv --valid V.tsv --test S.tsv [--epochs 50] [--batch 2048] [--dim 64]
      [--layers 3] [--lr 0.001] [--reg 1e-4] [--undirected] [--zero-grad] [--graphrec-reg] [--k 20] [--seed 2020]
      [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn.functional as F


def read_split(path: str) -> pd.DataFrame:
    """The first two columns of a headed TSV as ``user_id``, ``item_id`` strings."""
    df = pd.read_csv(path, sep="\t", usecols=[0, 1], dtype=str)
    df.columns = ["user_id", "item_id"]
    return df


def evaluate(scores: np.ndarray, truth: sp.csr_matrix, exclude: sp.csr_matrix, k: int) -> dict[str, float]:
    """Mean Recall@k and NDCG@k over the users with a held-out item; ``scores`` ``[U, I]``, ``exclude``'s
    non-zeros never ranked. graphrec's definitions (see the module docstring)."""
    n_rel = np.diff(truth.indptr)
    users = np.flatnonzero(n_rel > 0)
    s = scores[users].astype(np.float32, copy=True)  # [U', I]
    ex = exclude[users].tocoo()
    s[ex.row, ex.col] = -np.inf
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]  # [U', k], unordered
    order = np.argsort(-np.take_along_axis(s, part, 1), axis=1, kind="stable")
    top = np.take_along_axis(part, order, 1)  # [U', k] best first
    hits = np.take_along_axis(truth[users].toarray() > 0, top, 1).astype(np.float64)  # [U', k]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(n_rel[users], k) - 1]
    return {f"recall@{k}": float((hits.sum(1) / n_rel[users]).mean()),
            f"ndcg@{k}": float(((hits * discount).sum(1) / ideal).mean())}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for part in ("train", "valid", "test"):
        p.add_argument(f"--{part}", required=True, help=f"{part} TSV (user, item, ... with a header)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch", type=int, default=2048, help="batch_size")
    p.add_argument("--dim", type=int, default=64, help="embedding_size")
    p.add_argument("--layers", type=int, default=3, help="layer_count")
    p.add_argument("--lr", type=float, default=1e-3, help="learning_rate")
    p.add_argument("--reg", type=float, default=1e-4,
                   help="L2 weight of --graphrec-reg (LensKit's own term is PyG's fixed 1e-4)")
    p.add_argument("--undirected", action="store_true", help="propagate over both edge directions (see above)")
    p.add_argument("--zero-grad", action="store_true", help="zero the gradients before each batch (see above)")
    p.add_argument("--graphrec-reg", action="store_true",
                   help="graphrec's L2 term reg * (|U|^2 + |P|^2 + |N|^2) / 2B instead of PyG's")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--threads", type=int, default=2)
    return p


def run(a: argparse.Namespace) -> dict[str, Any]:
    import lenskit
    import torch_geometric
    from lenskit.data import DatasetBuilder, ItemList
    from lenskit.graphs.lightgcn import LightGCNConfig, LightGCNScorer, PairwiseLightGCNTrainer
    from lenskit.parallel import initialize
    from lenskit.training import TrainingOptions

    initialize(processes=1, threads=a.threads, backend_threads=a.threads)
    torch.set_num_threads(a.threads)

    class Trainer(PairwiseLightGCNTrainer):
        """LensKit's pairwise trainer, with the changes asked for (none: LensKit's as it is)."""

        def __init__(self, scorer: LightGCNScorer, data: Any, options: TrainingOptions) -> None:
            super().__init__(scorer, data, options)
            if a.undirected:
                # user → item edges stay the first nnz columns: train_epoch draws the positives from them
                self.edges = torch.cat([self.edges, self.edges.flip(0)], 1)
                scorer._edges = self.edges

        def batch_loss(self, mb_edges: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            if a.zero_grad:  # called after the forward pass, before loss.backward()
                self.optimizer.zero_grad(set_to_none=True)
            if not a.graphrec_reg:
                return super().batch_loss(mb_edges, scores)
            pos, neg = scores.chunk(2)
            n = pos.shape[0]
            rows = torch.cat([mb_edges[0, :n], mb_edges[1, :n], mb_edges[1, n:]])  # users, positives, negatives
            e0 = self.model.embedding.weight.index_select(0, rows)  # [3B, D] layer 0
            return F.softplus(neg - pos).mean() + a.reg * e0.pow(2).sum() / (2 * n)

    frames = {part: read_split(getattr(a, part)) for part in ("train", "valid", "test")}
    every = pd.concat(frames.values(), ignore_index=True)
    builder = DatasetBuilder("split")
    builder.add_entities("user", np.sort(every["user_id"].unique()))
    builder.add_entities("item", np.sort(every["item_id"].unique()))
    builder.add_interactions("interaction", frames["train"], entities=["user", "item"], default=True)
    data = builder.build()
    n_users, n_items = data.user_count, data.item_count

    def csr(df: pd.DataFrame) -> sp.csr_matrix:
        u, i = data.users.numbers(df["user_id"].to_numpy()), data.items.numbers(df["item_id"].to_numpy())
        return sp.csr_matrix((np.ones(len(df), np.float32), (u, i)), shape=(n_users, n_items))

    train, valid, test = csr(frames["train"]), csr(frames["valid"]), csr(frames["test"])
    config = LightGCNConfig(embedding_size=a.dim, layer_count=a.layers, layer_blend=None, batch_size=a.batch,
                            learning_rate=a.lr, epochs=a.epochs, regularization=None, loss="pairwise")
    scorer = LightGCNScorer(config)
    torch.manual_seed(a.seed)  # PyG's initialisation draws from torch's global generator
    trainer = Trainer(scorer, data, TrainingOptions(rng=a.seed, device="cpu"))
    model = trainer.model
    torch.set_num_threads(a.threads)

    @torch.inference_mode()
    def all_scores() -> np.ndarray:
        emb = model.get_embedding(scorer._edges)  # [items + users, D]: items first, then users
        return (emb[scorer._user_base:] @ emb[:scorer._user_base].T).numpy()  # [U, I]

    def score_check(scores: np.ndarray) -> float:
        """Largest |this script's score − LensKit scorer's| over every item, for two users."""
        worst = 0.0
        for u in (0, n_users - 1):
            out = scorer(data.users.id(u), ItemList(item_ids=data.items.ids()))
            worst = max(worst, float(np.abs(out.scores() - scores[u]).max()))
        return worst

    key = f"ndcg@{a.k}"
    epoch_s: list[float] = []
    eval_s: list[float] = []
    losses: list[float] = []
    check = None
    best, best_epoch, best_state = float("-inf"), -1, None
    for epoch in range(a.epochs):
        model.train()
        t = time.perf_counter()
        metrics = trainer.train_epoch() or {}
        epoch_s.append(time.perf_counter() - t)
        losses.append(float(metrics.get("loss", float("nan"))))
        model.eval()
        t = time.perf_counter()
        scores = all_scores()
        valid_m = evaluate(scores, valid, train, a.k)
        eval_s.append(time.perf_counter() - t)
        if check is None:
            check = score_check(scores)
        if valid_m[key] > best:
            best, best_epoch = valid_m[key], epoch
            best_state = {n: v.detach().clone() for n, v in model.state_dict().items()}
    assert best_state is not None
    model.load_state_dict(best_state)
    trainer.finalize()
    t = time.perf_counter()
    test_m = evaluate(all_scores(), test, (train + valid).tocsr(), a.k)
    test_s = time.perf_counter() - t
    fixes = [f for f, on in (("undirected", a.undirected), ("zero_grad", a.zero_grad),
                             ("graphrec_reg", a.graphrec_reg)) if on]
    l2 = (f"graphrec's: {a.reg:g} * (|U|^2 + |P|^2 + |N|^2) / 2B" if a.graphrec_reg
          else "PyG's fixed: 1e-4 * (2|U|^2 + |P|^2 + |N|^2) / B")
    return {
        "system": f"LensKit {lenskit.__version__} LightGCN" + (f" ({', '.join(fixes)})" if fixes else ""),
        "model": "LightGCN", "lenskit": lenskit.__version__, "torch_geometric": torch_geometric.__version__,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "seed": a.seed, "fixes": fixes,
        "reg": a.reg if a.graphrec_reg else 1e-4,
        "config": {**config.model_dump(), "optimizer": "Adam (regularization None)", "l2": l2,
                   "negatives": "1 uniform per train row, train items redrawn (at most 10 tries)",
                   "edges": "user->item and item->user" if a.undirected else "user->item only (as shipped)",
                   "zero_grad": "before each batch" if a.zero_grad else "never (as shipped)"},
        "rows": {part: len(df) for part, df in frames.items()}, "users": n_users, "items": n_items,
        "epoch_seconds": epoch_s, "valid_eval_seconds": eval_s, "test_eval_seconds": test_s, "losses": losses,
        "score_check_max_abs_diff": check, "best_epoch": best_epoch, f"valid_ndcg@{a.k}": float(best),
        f"test_recall@{a.k}": test_m[f"recall@{a.k}"], f"test_ndcg@{a.k}": test_m[f"ndcg@{a.k}"],
    }


def main() -> None:
    a = parser().parse_args()
    if a.epochs < 1 or a.batch < 1 or a.dim < 1 or a.layers < 1 or a.k < 1 or a.threads < 1:
        print("--epochs, --batch, --dim, --layers, --k and --threads must be >= 1", file=sys.stderr)
        sys.exit(2)
    torch.set_num_threads(a.threads)
    with contextlib.redirect_stdout(sys.stderr):  # anything LensKit prints stays off the JSON line
        result = run(a)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
