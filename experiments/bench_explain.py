"""Explanation fidelity and latency: does removing what an explanation names hurt the score more than chance?

For ``--pairs`` users drawn at random (seeded) on ML-100K, takes each user's
top-1 item (train and valid items excluded), explains it, then rebuilds the
graph without

* the explanation's top-5 edges (by importance), and, separately,
* 5 random edges from the same neighbourhood: edges that a walk of at most
  L steps from the user can cross (for GraphSAGE: edges of the pair's
  computation subgraph),

and re-scores the pair with the same trained weights (no retraining). Prints
the mean drop in score and in rank (1-based, among the user's unseen items)
for both, and the per-pair explanation latency (p50 / p95, after one warm-up
call). A stricter control, 5 random edges among the user's own interactions,
is printed on the line before the JSON.

Usage:
    python experiments/bench_explain.py                      # trains LightGCN (experiments/ml100k-lightgcn.yaml)
    python experiments/bench_explain.py --run RUN_DIR        # a finished run (LightGCN or GraphSAGE)
    python experiments/bench_explain.py --config experiments/ml100k-lightgcn-genres.yaml   # exact genre shares

Last line: ``{"pairs", "explain_score_drop", "random_score_drop", "explain_rank_drop",
"random_rank_drop", "p50_ms", "p95_ms"}``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.eval import Evaluator
from graphrec.explain import Explainer, Explanation
from graphrec.graph import normalized_adjacency
from graphrec.nn import GraphSAGE, LightGCN, ScoringModel
from graphrec.run import build_model, load_config, load_run, prepare
from graphrec.train import Trainer

HERE = Path(__file__).resolve().parent
Edge = tuple[str, str, str]  # (source key, target key, relation), in the graph's forward direction


class Rescorer:
    """Scores of one (user, item) pair with some edges removed from the graph, same weights."""

    def __init__(self, model: ScoringModel, graph, seen: sp.csr_matrix) -> None:  # type: ignore[no-untyped-def]
        self.model, self.seen = model, seen.tocsr()
        self.original = model.adj if isinstance(model, LightGCN) else None
        self.graph = model.graph if isinstance(model, GraphSAGE) else graph
        # LightGCN over attribute nodes rebuilds its adjacency with them
        self.attributes = [t for t, _ in model.node_layout[2:]] if isinstance(model, LightGCN) else []

    @torch.no_grad()
    def score_and_rank(self, user: int, item: int, removed: list[Edge] = ()) -> tuple[float, int]:  # type: ignore[assignment]
        m = self.model
        if isinstance(m, LightGCN):
            if removed:
                m.adj = normalized_adjacency(_without(self.graph, removed), device=m.adj.device,
                                             attributes=self.attributes)
            try:
                users, items = m.get_embedding()
            finally:
                m.adj = self.original
        else:
            assert isinstance(m, GraphSAGE) and self.graph is not None
            if removed:
                m.graph = _without(self.graph, removed)
                m._on.clear()
            try:
                users, items = m.get_embedding()
            finally:
                if removed:
                    m.graph = self.graph
                    m._on.clear()
        scores = (items @ users[user]).float().cpu()
        s = float(scores[item])
        scores[torch.from_numpy(self.seen[user].indices.astype(np.int64))] = -torch.inf
        return s, int((scores > s).sum()) + 1


def _without(graph, removed: list[Edge]):  # type: ignore[no-untyped-def]
    """A copy of a HeteroData without the given edges (both directions)."""
    g = graph.clone()
    drop: dict[tuple[str, str, str], set[tuple[int, int]]] = {}
    for src, dst, rel in removed:
        (st, s), (dt, d) = src.split(":"), dst.split(":")
        drop.setdefault((st, rel, dt), set()).add((int(s), int(d)))
        drop.setdefault((dt, f"rev_{rel}", st), set()).add((int(d), int(s)))
    for et, pairs in drop.items():
        if et not in g.edge_types:
            continue
        ei = g[et].edge_index
        keep = torch.tensor([(a, b) not in pairs for a, b in ei.t().tolist()], dtype=torch.bool)
        for key, value in list(g[et].items()):
            if isinstance(value, torch.Tensor) and key != "edge_index" and value.shape[:1] == ei.shape[1:]:
                g[et][key] = value[keep]
        g[et].edge_index = ei[:, keep]
    return g


def neighbourhood(train: sp.csr_matrix, user: int, hops: int) -> list[Edge]:
    """User-item edges a walk of at most ``hops`` steps from the user can cross."""
    reach_u, reach_i = {user}, set()
    frontier_u, frontier_i = {user}, set()
    for _ in range(hops - 1):  # nodes within hops-1 steps: an edge leaving them is crossable at step <= hops
        new_i = set(train[sorted(frontier_u)].indices.tolist()) - reach_i if frontier_u else set()
        new_u = set(train[:, sorted(frontier_i)].nonzero()[0].tolist()) - reach_u if frontier_i else set()
        reach_i |= new_i
        reach_u |= new_u
        frontier_u, frontier_i = new_u, new_i
    edges = set()
    coo = train[sorted(reach_u)].tocoo()
    rows = np.asarray(sorted(reach_u))[coo.row]
    edges |= set(zip(rows.tolist(), coo.col.tolist(), strict=True))
    if reach_i:
        cols = train[:, sorted(reach_i)].tocoo()
        items = np.asarray(sorted(reach_i))[cols.col]
        edges |= set(zip(cols.row.tolist(), items.tolist(), strict=True))
    return [(f"user:{u}", f"item:{i}", "interacts") for u, i in sorted(edges)]


def computation_edges(model: GraphSAGE, user: int, item: int) -> list[Edge]:
    """Edges of the pair's full computation subgraph, in forward direction."""
    from graphrec.explain import graphsage_edge_attributions

    att = graphsage_edge_attributions(model, user, item, steps=1)
    out = set()
    for (st, rel, dt), src in att.src.items():
        for s, d in zip(src.tolist(), att.dst[(st, rel, dt)].tolist(), strict=True):
            out.add((f"{dt}:{d}", f"{st}:{s}", rel[4:]) if rel.startswith("rev_") else (f"{st}:{s}", f"{dt}:{d}", rel))
    return sorted(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=None, help="a finished run directory (default: train --config)")
    p.add_argument("--config", default=str(HERE / "ml100k-lightgcn.yaml"))
    p.add_argument("--epochs", type=int, default=None, help="cap the configuration's epochs when training")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a configuration value, e.g. --set train.epochs=50")
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--edges", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda: where the model trains, explains and re-scores")
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    if a.run:
        _, data, model = load_run(a.run, device=a.device)
    else:
        import yaml

        cfg = load_config(a.config, {k: yaml.safe_load(v) for k, v in (x.split("=", 1) for x in a.set)})
        cfg = replace(cfg, train=replace(cfg.train, device=a.device, progress=False,
                                         epochs=min(cfg.train.epochs, a.epochs) if a.epochs else cfg.train.epochs))
        data = prepare(cfg)
        model = build_model(cfg, data)
        t = time.perf_counter()
        trainer = Trainer(model, data.train, Evaluator(data.valid, data.train, ks=(20,), metrics=("ndcg",)), cfg.train)
        trainer.fit()
        trainer.load_best()
        model = trainer.model.eval()
        print(f"trained {model!r} in {time.perf_counter() - t:.0f} s")
    seen = (data.train + data.valid).tocsr()
    explainer = Explainer(model, data.graph, seen=seen)
    rescorer = Rescorer(model, data.graph, seen)
    rng = np.random.default_rng(a.seed)
    active = np.flatnonzero(np.diff(data.train.indptr) > 0)
    users = rng.choice(active, size=min(a.pairs, len(active)), replace=False)
    with torch.no_grad():
        scores = model.score_all(torch.from_numpy(users).to(model.device)).float().cpu()
    for row, u in enumerate(users):
        scores[row, torch.from_numpy(seen[u].indices.astype(np.int64))] = -torch.inf
    tops = scores.argmax(1).tolist()

    explainer.explain_index(int(users[0]), tops[0])  # warm-up: caches LightGCN's propagated embeddings
    hops = model.num_layers
    drops: dict[str, list[tuple[float, int]]] = {"explain": [], "random": [], "random_own": []}
    latency = []
    for u, i in zip(users.tolist(), tops, strict=True):
        t = time.perf_counter()
        ex = explainer.explain_index(u, i)
        latency.append((time.perf_counter() - t) * 1e3)
        base_score, base_rank = rescorer.score_and_rank(u, i)
        top = [(e.source, e.target, e.type) for e in top_edges(ex, a.edges)]
        pool = neighbourhood(data.train, u, hops) if isinstance(model, LightGCN) else computation_edges(model, u, i)
        own = [e for e in pool if e[0] == f"user:{u}"]
        for name, removed in (("explain", top),
                              ("random", _draw(rng, pool, a.edges)),
                              ("random_own", _draw(rng, own, a.edges))):
            s, r = rescorer.score_and_rank(u, i, removed)
            drops[name].append((base_score - s, r - base_rank))
    lat = np.asarray(latency)
    mean = {k: (float(np.mean([d[0] for d in v])), float(np.mean([d[1] for d in v]))) for k, v in drops.items()}
    print(f"{type(model).__name__} on {model.device}: {len(users)} (user, top-1) pairs, removing {a.edges} edges each")
    print(f"{'edges removed':<36}{'score drop':>12}{'rank drop':>12}")
    for name, label in (("explain", "explanation's top edges"), ("random", "random, same neighbourhood"),
                        ("random_own", "random, the user's own interactions")):
        print(f"{label:<36}{mean[name][0]:>12.4f}{mean[name][1]:>12.1f}")
    vs = (f"{mean['explain'][0] / mean['random'][0]:.1f}x the random drop" if mean["random"][0] > 0
          else f"random edges: {mean['random'][0]:+.4f}")
    print(f"explanation's score drop {mean['explain'][0]:.4f} ({vs}); "
          f"latency p50 {np.percentile(lat, 50):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms, max {lat.max():.1f} ms")
    print(json.dumps({"random_own_score_drop": round(mean["random_own"][0], 4),
                      "random_own_rank_drop": round(mean["random_own"][1], 2)}))
    print(json.dumps({
        "pairs": len(users),
        "explain_score_drop": round(mean["explain"][0], 4), "random_score_drop": round(mean["random"][0], 4),
        "explain_rank_drop": round(mean["explain"][1], 2), "random_rank_drop": round(mean["random"][1], 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 2), "p95_ms": round(float(np.percentile(lat, 95)), 2),
    }))


def top_edges(ex: Explanation, k: int) -> list:  # type: ignore[type-arg]
    """The explanation's ``k`` most important edges that carry score (context edges have importance 0)."""
    return [e for e in ex.top_edges(len(ex.edges)) if e.importance > 0][:k]


def _draw(rng: np.random.Generator, pool: list[Edge], k: int) -> list[Edge]:
    if not pool:
        return []
    idx = rng.choice(len(pool), size=min(k, len(pool)), replace=False)
    return [pool[j] for j in idx]


if __name__ == "__main__":
    main()
