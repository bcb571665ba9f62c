"""Every stage of an experiment as the data grows: 1M, 5M and 25M interactions, time and peak memory per stage.

The logs are graphrec's seeded power-law synthetic source in ml-25m's shape:
ml-25m's catalogue (59,047 items), and users in proportion to the
interactions at ml-25m's mean activity (25,000,095 / 162,541 per user), so
every size has ml-25m's density (162,541 users at 25M). Each log is written
as a Parquet file first (not timed), then one fresh process per size runs
the pipeline as ``graphrec run`` does, stage by stage:

- ``load``: the Parquet log through the ``parquet`` dataset source;
- ``split``: per-user random 80/10/10 (graphrec's default shuffle, ``grouped``);
- ``graph``: the heterogeneous train graph, its CSR and the normalised
  adjacency (item features: seeded random 384-d vectors standing in for the
  BERT embeddings, whose cost ``bench_text.py`` measures);
- ``epoch <model>``: one training epoch (shuffle, negatives, BPR steps with
  Adam) of LightGCN (3 layers), XSimGCL, GraphSAGE (fan-out 10, 10) and
  MF-BPR, batch 2048. An epoch estimated at more than ``--epoch-budget``
  seconds (10 minutes) times its first ``--steps`` steps and extrapolates;
  the table marks those rows ``~``;
- ``evaluate``: full-ranking test evaluation of every user (LightGCN),
  beyond-accuracy metrics included, in batches of ``--eval-batch`` users;
- ``save`` and ``graphrec.load``: the run's bundle written, then loaded.

Peak memory is the process's peak RSS during the stage (Linux: the peak is
reset through ``/proc/self/clear_refs`` before each stage), and on a GPU the
peak of allocated device memory. ``memory`` is that peak minus the RSS the
process had after its imports (what the data costs). The growth exponent of
a stage is the least-squares slope of log(value) over log(interactions).

LightGCN and XSimGCL propagate the whole graph at every step: a step costs
O(edges), so an epoch of N / batch steps at a fixed batch costs O(N²). Their
rows report the step (which must be linear) and the epoch at batch 2048
(quadratic by construction, marked so and not counted in ``max_exponent``),
and ``epoch … (batch ∝ data)``: the epoch with the batch grown with the
data (2048 per million interactions, the same number of steps at every
size), which is linear and is what a data-parallel run does anyway (the
global batch grows with the ranks). MF-BPR's loss reads only the batch's
rows, but dense Adam updates every row of both tables at every step: its
epoch with ``adam`` is O(N²) alike (marked), and ``epoch mf-bpr
(sparse_adam)`` (``train.optimizer: sparse_adam``, lazy Adam over
row-sparse gradients) is the linear one. GraphSAGE samples each step's
computation subgraph: at a fixed batch its distinct nodes grow with the
graph (the seeds' neighbourhoods overlap less as the graph grows) towards
the fan-out bound, seeds × (1 + f₁ + f₁f₂), about 630k nodes at batch 2048:
more than the whole 25M graph (221k nodes), so the linear regime past it is
not reached here. That epoch is marked, with the sample sizes printed, and
not counted in ``max_exponent``. At a batch grown with the data, every size
takes the same number of steps and a step's sample is bounded by the graph
itself, which grows with the data: that epoch must be linear.

Usage: python experiments/bench_scale.py [--sizes 1000000 5000000 25000000] [--steps 20] [--threads 2]
       [--device cpu] [--eval-batch 1024] [--epoch-budget 600] [--out FILE]
Last line: {"max_interactions": ..., "peak_rss_mb": ..., "max_exponent": ..., "stages": {...}}
(``max_exponent`` null when ``--sizes`` names one size: nothing to fit)
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from report import Report  # experiments/report.py: scripts run from this folder

HERE = Path(__file__).resolve().parent
ML25M_USERS, ML25M_ITEMS, ML25M_INTERACTIONS = 162_541, 59_047, 25_000_095
BATCH = 2048
#: full-graph models: every step propagates the whole graph
FULL_GRAPH = ("lightgcn", "xsimgcl")
#: models that sample each step's computation subgraph: the sample densifies as the batch grows with the data
SAMPLED = ("graphsage",)
#: models timed a second time with the batch grown with the data (2048 per million interactions)
GROWN_BATCH = (*FULL_GRAPH, *SAMPLED)
#: models whose loss reads their tables at the batch's rows: dense Adam still updates every row at every step
ROW_SPARSE = ("mf-bpr",)
MODELS = ("lightgcn", "xsimgcl", "graphsage", "mf-bpr")


def shape(interactions: int, items: int = ML25M_ITEMS) -> tuple[int, int]:
    """(users, items) of a log of ``interactions`` in ml-25m's shape: users at ml-25m's mean activity."""
    return max(1, round(ML25M_USERS * interactions / ML25M_INTERACTIONS)), items


# ---------------------------------------------------------------- child: write the log


def write_log(interactions: int, path: Path, seed: int, num_items: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from graphrec.data.sources import synthetic_dataset

    users, items = shape(interactions, num_items)
    t = time.perf_counter()
    ds = synthetic_dataset(users, items, interactions, seed=seed, name=f"synthetic-{interactions}")
    inter = ds.interactions
    table = pa.table({"user": inter.user.astype(np.int32), "item": inter.item.astype(np.int32),
                      "timestamp": inter.timestamp})
    pq.write_table(table, path)
    return {"users": ds.num_users, "items": ds.num_items, "interactions": len(inter),
            "seconds": time.perf_counter() - t, "bytes": path.stat().st_size}


# ---------------------------------------------------------------- child: the stages


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
        return True
    except OSError:
        return False


class Stages:
    """Times each stage and records its peak RSS (and GPU memory)."""

    def __init__(self, device: str) -> None:
        import torch

        self.cuda = device.startswith("cuda")
        self.torch = torch
        self.base_mb = _status_mb("VmRSS")
        self.rows: dict[str, dict[str, Any]] = {}
        self.resettable = _reset_peak()

    @contextmanager
    def stage(self, name: str, **extra: Any):
        import gc

        gc.collect()
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
        _reset_peak()
        start_mb = _status_mb("VmRSS")
        t = time.perf_counter()
        row: dict[str, Any] = dict(extra)
        yield row
        if self.cuda:
            self.torch.cuda.synchronize()
            row["gpu_peak_mb"] = self.torch.cuda.max_memory_allocated() / 2**20
        row.setdefault("seconds", time.perf_counter() - t)
        row["peak_rss_mb"] = _status_mb("VmHWM")
        row["start_rss_mb"] = start_mb
        row["memory_mb"] = row["peak_rss_mb"] - self.base_mb
        self.rows[name] = row
        print(f"  {name}: {row['seconds']:.1f} s, peak RSS {row['peak_rss_mb']:,.0f} MB", file=sys.stderr, flush=True)


def timed_epoch(model: Any, train: Any, batch: int, steps: int, budget: float, device: str, seed: int,
                optimizer: str = "adam") -> dict[str, Any]:
    """One epoch's seconds (:func:`bench_epoch_scale.graphrec_epoch`): all of it when the first ``steps`` steps
    predict at most ``budget`` seconds, else those steps extrapolated; for GraphSAGE, the size of a step's sample."""
    from bench_epoch_scale import graphrec_epoch

    def sample_size(users: Any, pos: Any, neg: Any) -> dict[str, Any]:
        """How large the first batch's sampled subgraph is (a sampler of its own) and its bound."""
        import torch

        from graphrec.sampling import NeighborSampler

        seeds = {"user": torch.unique(users), "item": torch.unique(torch.cat([pos, neg]))}
        sample = NeighborSampler(model._graph()[0], model.fanouts, seed=0).sample(seeds)
        reach, width = 1, 1
        for f in model.fanouts:
            width *= f
            reach += width
        num_seeds = int(sum(len(v) for v in seeds.values()))
        return {"sampled_nodes": int(sum(len(v) for v in sample.node.values())), "sampled_seeds": num_seeds,
                "sampled_bound": num_seeds * reach}

    out = graphrec_epoch(model, train, steps, device, seed, batch=batch, budget=budget,
                         on_first_batch=sample_size if hasattr(model, "fanouts") else None, optimizer=optimizer)
    out["seconds"] = out.pop("epoch_seconds")
    return out


def run_size(log_path: Path, interactions: int, a: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    import torch

    import graphrec
    from graphrec.data import make_split
    from graphrec.graph import GraphBuilder, interaction_matrix, normalized_adjacency
    from graphrec.graph.config import GraphConfig
    from graphrec.run.config import config_from_dict
    from graphrec.run.pipeline import Prepared, build_model, bundle_run, evaluators
    from graphrec.runtime import set_threads

    set_threads(a.threads)
    st = Stages(a.device)
    base = {"name": f"scale-{interactions}", "eval": {"ks": [20], "batch_size": a.eval_batch},
            "dataset": {"name": f"synthetic-{interactions}", "format": "parquet", "path": str(log_path),
                        "columns": {"user": "user", "item": "item", "timestamp": "timestamp"}},
            "split": {"method": "random", "ratios": [0.8, 0.1, 0.1], "seed": 2020},
            "graph": {"item_attributes": []},
            "train": {"batch_size": BATCH, "device": a.device, "threads": a.threads, "seed": 2020}}
    config = config_from_dict({**base, "model": {"name": "lightgcn", "num_layers": 3}})
    with st.stage("load"):
        ds = config.dataset.load()
    with st.stage("split"):
        split = make_split(ds, "random", ratios=(0.8, 0.1, 0.1), seed=2020)
    item_text = torch.from_numpy(np.random.default_rng(0).standard_normal((ds.num_items, 384), dtype=np.float32))
    with st.stage("graph"):
        graph = GraphBuilder(GraphConfig(item_attributes=(), user_features="text_mean")).build(
            ds, split=split, item_features=item_text)
        train = interaction_matrix(graph)
        adj = normalized_adjacency(graph)
        shape_ = train.shape

        def part(name: str) -> Any:
            from graphrec.matrices import to_csr

            inter = split.part(name)
            return to_csr(inter.user, inter.item, *shape_)

        valid, test = part("valid"), part("test")
        data = Prepared(ds, split, train, valid, test, adj, item_text, graph, seen=(train + valid).tocsr())
    lightgcn = None
    for name in a.models:
        model_section = {"name": name, **({"num_layers": 3} if name == "lightgcn" else {})}
        cfg = config_from_dict({**base, "model": model_section,
                                **({"graph": {"item_attributes": [], "user_features": "text_mean"}}
                                   if name == "graphsage" else {})})
        with st.stage(f"epoch {name}") as row:
            model = build_model(cfg, data)
            row.update(timed_epoch(model, train, BATCH, a.steps, a.epoch_budget, a.device, seed=2020))
        if name in GROWN_BATCH:
            scaled = BATCH * max(1, round(interactions / 1e6))
            if scaled == BATCH:  # at 1M the scaled batch is 2048: the same epoch
                st.rows[f"epoch {name} (batch ∝ data)"] = st.rows[f"epoch {name}"]
            else:
                if name == "xsimgcl":  # InfoNCE is quadratic in the nodes it contrasts: as many as at batch 2048
                    cfg = config_from_dict({**base, "model": {**model_section, "cl_nodes": BATCH}})
                with st.stage(f"epoch {name} (batch ∝ data)") as row:
                    model = build_model(cfg, data)
                    row.update(timed_epoch(model, train, scaled, a.steps, a.epoch_budget, a.device, seed=2020))
        if name in ROW_SPARSE:  # lazy Adam: a step updates the batch's rows only
            with st.stage(f"epoch {name} (sparse_adam)") as row:
                model = build_model(cfg, data)
                row.update(timed_epoch(model, train, BATCH, a.steps, a.epoch_budget, a.device, seed=2020,
                                       optimizer="sparse_adam"))
        if name == "lightgcn":
            lightgcn = model
        del model
    if lightgcn is None:  # the evaluation's cost does not depend on the weights: an untrained LightGCN
        lightgcn = build_model(config, data)
    lightgcn.eval()
    with st.stage("evaluate") as row:
        test_ev = evaluators(config, data)[1]
        assert test_ev.world is None  # one process
        metrics = test_ev.evaluate(lightgcn, beyond=True)
        row["users"] = len(test_ev.users)
        row["recall@20"] = metrics["recall@20"]
    with st.stage("save"):
        bundle_run(run_dir, config, data, lightgcn)
    with st.stage("graphrec.load"):
        deployed = graphrec.load(run_dir)
        deployed.recommend(ds.users.ids[0], k=10)
    return {"interactions": interactions, "users": ds.num_users, "items": ds.num_items, "train": int(train.nnz),
            "split": split.method, "base_rss_mb": st.base_mb, "peak_reset": st.resettable, "stages": st.rows}


# ---------------------------------------------------------------- parent


def exponent(sizes: list[int], values: list[float]) -> float | None:
    """Least-squares slope of log(value) over log(size); None with fewer than two positive values."""
    pts = [(math.log(s), math.log(v)) for s, v in zip(sizes, values, strict=True) if v and v > 0]
    if len(pts) < 2:
        return None
    x, y = np.array(pts).T
    return float(np.polyfit(x, y, 1)[0])


def _fmt(e: float | None) -> str:
    return "–" if e is None else f"{e:.2f}"


#: what :func:`by_design` says of an epoch that grows faster than the data by construction
QUADRATIC, UNTIL_BOUND = "quadratic by design", "superlinear until the sample's bound"


def by_design(stage: str) -> str | None:
    """Why an epoch grows faster than the data by construction (None: the stage must be linear).

    LightGCN / XSimGCL at a fixed batch: O(edges) per step × O(edges / batch) steps; MF-BPR with dense Adam:
    O(users + items) per step × O(edges / batch) steps; GraphSAGE at a fixed batch: a step's sample grows with
    the graph up to the fan-out bound (see the module docstring)."""
    if not stage.startswith("epoch "):
        return None
    model = stage.split()[1]
    if (model in FULL_GRAPH and "(batch ∝ data)" not in stage) or (model in ROW_SPARSE and "(sparse_adam)" not in stage):
        return QUADRATIC
    if model in SAMPLED and "(batch ∝ data)" not in stage:
        return UNTIL_BOUND
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000, 25_000_000])
    p.add_argument("--steps", type=int, default=20, help="steps timed before deciding to extrapolate an epoch")
    p.add_argument("--epoch-budget", type=float, default=600.0,
                   help="an epoch predicted to take longer than this (seconds) is extrapolated from --steps steps")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--eval-batch", type=int, default=1024)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, help="the epochs to time")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--items", type=int, default=ML25M_ITEMS, help="catalogue size (default ml-25m's)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "bench_scale.txt")
    p.add_argument("--child", nargs=3, metavar=("WHAT", "INTERACTIONS", "PATH"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        what, n, path = a.child[0], int(a.child[1]), Path(a.child[2])
        if what == "write":
            print(json.dumps(write_log(n, path, a.seed, a.items)))
        else:
            with tempfile.TemporaryDirectory() as run_dir:
                print(json.dumps(run_size(path, n, a, Path(run_dir))))
        return

    import torch

    import graphrec
    from graphrec.data.sources import check_synthetic_sizes
    from graphrec.errors import ConfigError
    from graphrec.nn.ease import fit_memory

    for n in a.sizes:  # before any log is written
        try:
            check_synthetic_sizes(*shape(n, a.items), n)
        except ConfigError as exc:
            p.error(f"--sizes {n:,} with --items {a.items:,} ({shape(n, a.items)[0]:,} users): {exc}")

    out = Report()
    out(f"graphrec {graphrec.__version__}, torch {torch.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{a.threads} threads, device {a.device}, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"load average {os.getloadavg()[0]:.2f}")
    out(f"command: python experiments/bench_scale.py {' '.join(sys.argv[1:])}".rstrip())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted(a.sizes):
            path = Path(tmp) / f"log-{n}.parquet"
            common = ["--threads", str(a.threads), "--device", a.device, "--steps", str(a.steps),
                      "--epoch-budget", str(a.epoch_budget), "--eval-batch", str(a.eval_batch), "--seed", str(a.seed), "--items", str(a.items), "--models", *a.models]
            for what in ("write", "run"):
                res = subprocess.run([sys.executable, __file__, *common, "--child", what, str(n), str(path)],
                                     stdout=subprocess.PIPE, text=True, cwd=HERE)
                if res.returncode != 0:
                    sys.exit(f"size {n:,}: the {what} step failed (exit {res.returncode})")
                info = json.loads(res.stdout.strip().splitlines()[-1])
                if what == "write":
                    out(f"{n:,} interactions: {info['users']:,} users, {info['items']:,} items, written in "
                        f"{info['seconds']:.1f} s ({info['bytes'] / 2**20:,.0f} MiB Parquet)")
            path.unlink()
            results.append(info)
            out(f"{n:,}: {info.get('split', 'random')}: train {info['train']:,}, process RSS after imports "
                f"{info['base_rss_mb']:,.0f} MB")

    sizes = [r["interactions"] for r in results]
    names = list(results[0]["stages"])
    gpu = any("gpu_peak_mb" in s for r in results for s in r["stages"].values())
    head = " | ".join(f"{n / 1e6:g}M s | {n / 1e6:g}M peak RSS MB" for n in sizes)
    out()
    out(f"| stage | {head} | time exp. | memory exp. |" + (" GPU peak MB (largest) |" if gpu else ""))
    out("|---" * (3 + 2 * len(sizes) + gpu) + "|")
    stages: dict[str, Any] = {}
    for name in names:
        rows = [r["stages"][name] for r in results]
        secs = [row["seconds"] for row in rows]
        t_exp = exponent(sizes, secs)
        m_exp = exponent(sizes, [row["memory_mb"] for row in rows])
        cells = " | ".join(f"{'~' if row.get('extrapolated') else ''}{row['seconds']:,.1f} | {row['peak_rss_mb']:,.0f}"
                           for row in rows)
        why = by_design(name)
        note = f" ({why})" if why else ""
        out(f"| {name}{note} | {cells} | {_fmt(t_exp)} | {_fmt(m_exp)} |"
            + (f" {rows[-1].get('gpu_peak_mb', 0):,.0f} |" if gpu else ""))
        stages[name] = {"seconds": secs, "peak_rss_mb": [row["peak_rss_mb"] for row in rows],
                        "memory_mb": [row["memory_mb"] for row in rows], "time_exponent": t_exp,
                        "memory_exponent": m_exp, "extrapolated": [bool(row.get("extrapolated")) for row in rows],
                        "must_be_linear": why is None}
        if name.startswith("epoch "):
            stages[name]["step_seconds"] = [row["step_seconds"] for row in rows]
            stages[name]["step_time_exponent"] = exponent(sizes, stages[name]["step_seconds"])
    out("~: extrapolated from the first steps (see the docstring); memory exp.: of the peak RSS above the "
        "process's RSS after imports")
    for name in names:
        if by_design(name) == QUADRATIC:
            s = stages[name]
            what = ("one propagation of the whole graph" if name.split()[1] in FULL_GRAPH
                    else "dense Adam over every row of the tables")
            out(f"{name}: a step grows with exponent {_fmt(s['step_time_exponent'])} ({what}); "
                f"{s['seconds'][-1] / 60:,.0f} min per epoch at batch {BATCH} and {sizes[-1]:,}")
    for name in (n for n in names if n.startswith("epoch ") and n.split()[1] in SAMPLED):
        rows = [r["stages"][name] for r in results]
        nodes = [row["sampled_nodes"] for row in rows]
        per_node = [row["step_seconds"] / n for row, n in zip(rows, nodes, strict=True)]
        per_seed = [n / row["sampled_seeds"] for row, n in zip(rows, nodes, strict=True)]
        out(f"{name}: distinct nodes in a step's sampled subgraph (first batch) "
            + ", ".join(f"{n:,}" for n in nodes) + ", bounded at any size by "
            + ", ".join(f"{row['sampled_bound']:,}" for row in rows) + " (seeds × (1 + f₁ + f₁f₂)); nodes per seed "
            + ", ".join(f"{x:.1f}" for x in per_seed) + "; step time per sampled node "
            + ", ".join(f"{1e6 * x:.2f} µs" for x in per_node) + f" (exponent {_fmt(exponent(sizes, per_node))})")
        stages[name]["sampled_nodes"] = nodes
    out(f"evaluate: {results[-1]['stages']['evaluate']['users']:,} users at {sizes[-1]:,}, batches of {a.eval_batch} "
        f"users; its own memory (peak minus the RSS it started with) "
        + ", ".join(f"{r['stages']['evaluate']['peak_rss_mb'] - r['stages']['evaluate']['start_rss_mb']:,.0f} MB"
                    for r in results) + f" as the users grow {sizes[-1] // sizes[0]}×")
    out(f"EASE (closed form, dense item-item): {a.items:,} items would need {fit_memory(a.items) / 1e9:,.0f} GB "
        "to fit; graphrec.nn.EASE refuses, naming the largest catalogue that fits")
    linear = [(s["time_exponent"], s["memory_exponent"]) for s in stages.values() if s["must_be_linear"]]
    fitted = [e for pair in linear for e in pair if e is not None]  # none from a single size
    summary = {"max_interactions": max(sizes), "peak_rss_mb": round(max(max(s["peak_rss_mb"]) for s in stages.values()), 1),
               "max_exponent": round(max(fitted), 3) if fitted else None, "stages": stages}
    out(json.dumps(summary))
    out.save(a.out)


if __name__ == "__main__":
    main()
