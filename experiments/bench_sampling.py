"""Neighbor-sampling throughput: graphrec's sampler against torch-sparse's, same graph, same seeds.

Builds a synthetic power-law bipartite user-item graph (>= 1M edges, both
directions as edge types), then samples 2-hop fan-out [10, 10] mini-batches
of 1,024 seed users end to end (sampler + PyG loader -> HeteroData) and prints
sampled edges per second.

The peer is PyG's own NeighborLoader over torch-sparse 0.6.18, which has no
wheels on PyPI: build it and torch-scatter (which it imports) from source in a
separate venv (about 15 + 15 minutes on 2 cores), e.g.

  python3 -m venv /tmp/tsparse/venv && /tmp/tsparse/venv/bin/pip install torch==2.13.0 numpy scipy setuptools wheel
  /tmp/tsparse/venv/bin/pip install --no-build-isolation torch-sparse==0.6.18 torch-scatter torch_geometric

and pass ``--peer-python /tmp/tsparse/venv/bin/python`` (the default when it
exists). Both run in separate processes with the same thread count.

Usage: python experiments/bench_sampling.py [--edges 1000000] [--batches 40] [--device cpu|cuda] [--out FILE]
Output: printed, and saved to ``--out`` (default ``experiments/results/bench_sampling.txt``).
Last line: {"edges": ..., "graphrec_edges_per_s": ..., "torch_sparse_edges_per_s": ..., "ratio": ...}
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

DEFAULT_PEER = "/tmp/tsparse/venv/bin/python"
UI = ("user", "interacts", "item")
IU = ("item", "rev_interacts", "user")


def power_law_graph(num_edges: int, seed: int = 0):  # type: ignore[no-untyped-def]
    from torch_geometric.data import HeteroData

    g = torch.Generator().manual_seed(seed)
    num_users, num_items = num_edges // 20, num_edges // 50
    # Zipf-like popularity: P(rank r) ~ 1 / r^0.9 for items, ~ 1 / r^0.6 for users
    item_p = 1.0 / torch.arange(1, num_items + 1, dtype=torch.float64) ** 0.9
    user_p = 1.0 / torch.arange(1, num_users + 1, dtype=torch.float64) ** 0.6
    u = torch.multinomial(user_p, num_edges, replacement=True, generator=g)
    i = torch.multinomial(item_p, num_edges, replacement=True, generator=g)
    keys = torch.unique(u * num_items + i)
    u, i = keys // num_items, keys % num_items
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes = num_users, num_items
    data[UI].edge_index = torch.stack([u, i])
    data[IU].edge_index = torch.stack([i, u])
    return data


def run(kind: str, graph_file: str, batches: int, batch_size: int, threads: int, device: str,
        repeats: int = 5) -> dict[str, float]:
    """One side's sampled edges per second: the median of ``repeats`` passes over the seed batches."""
    torch.set_num_threads(threads)
    data = torch.load(graph_file, weights_only=False)
    if device == "cuda":
        data = data.to("cuda")
    g = torch.Generator().manual_seed(1)
    seeds = torch.randperm(data["user"].num_nodes, generator=g)[: batches * batch_size]
    if kind == "graphrec":
        from torch_geometric.loader import NodeLoader

        from graphrec.sampling import NeighborSampler

        loader = NodeLoader(data, NeighborSampler(data, [10, 10], seed=0), input_nodes=("user", seeds), batch_size=batch_size)
    else:
        from torch_geometric.loader import NeighborLoader

        loader = NeighborLoader(data, num_neighbors=[10, 10], input_nodes=("user", seeds), batch_size=batch_size)
    next(iter(loader))  # warm-up
    passes = []
    for _ in range(repeats):
        edges = 0
        start = time.perf_counter()
        for batch in loader:
            edges += sum(batch[et].num_edges for et in batch.edge_types)
        if device == "cuda":
            torch.cuda.synchronize()
        passes.append((edges / (time.perf_counter() - start), edges, time.perf_counter() - start))
    rate, edges, seconds = sorted(passes)[len(passes) // 2]  # the median pass
    return {"edges": edges, "seconds": seconds, "edges_per_s": rate,
            "passes_edges_per_s": [round(r) for r, _, _ in passes]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--edges", type=int, default=1_000_000)
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5, help="passes per side; the median counts")
    p.add_argument("--device", default="cpu")
    p.add_argument("--peer-python", default=DEFAULT_PEER if Path(DEFAULT_PEER).exists() else None)
    p.add_argument("--worker", choices=["graphrec", "torch_sparse"], help=argparse.SUPPRESS)
    p.add_argument("--graph", help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "bench_sampling.txt",
                   help="where the printed lines are saved")
    a = p.parse_args()
    if a.worker:
        print(json.dumps(run(a.worker, a.graph, a.batches, a.batch_size, a.threads, a.device, a.repeats)))
        return
    from report import Report  # experiments/report.py: scripts run from this folder

    say = Report()
    say(f"# python experiments/bench_sampling.py --edges {a.edges} --batches {a.batches} --threads {a.threads} "
        f"--device {a.device} --repeats {a.repeats}   # {time.strftime('%Y-%m-%d')}, load (1-min average) at the "
        f"start {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        graph_file = str(Path(tmp) / "graph.pt")
        data = power_law_graph(a.edges)
        torch.save(data, graph_file)
        deg = torch.bincount(data[UI].edge_index[1])
        say(f"graph: {data['user'].num_nodes:,} users, {data['item'].num_nodes:,} items, {data[UI].num_edges:,} edges "
              f"per direction; max item degree {int(deg.max()):,}; {a.batches} batches of {a.batch_size} seed users, "
              f"fan-out [10, 10], {a.threads} threads, {a.device}")
        args = ["--graph", graph_file, "--batches", str(a.batches), "--batch-size", str(a.batch_size),
                "--threads", str(a.threads), "--device", a.device, "--repeats", str(a.repeats)]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        ours = json.loads(subprocess.run([sys.executable, __file__, "--worker", "graphrec", *args], check=True,
                                         capture_output=True, text=True, env=env).stdout.strip().splitlines()[-1])
        peer = None
        if a.peer_python:
            out = subprocess.run([a.peer_python, __file__, "--worker", "torch_sparse", *args], capture_output=True, text=True)
            if out.returncode == 0:
                peer = json.loads(out.stdout.strip().splitlines()[-1])
            else:
                say(f"torch-sparse peer failed ({a.peer_python}):\n{out.stderr[-1500:]}")
    say(f"graphrec NeighborSampler + NodeLoader: {ours['edges']:,} edges in {ours['seconds']:.2f} s = "
        f"{ours['edges_per_s']:,.0f} edges/s (median of {a.repeats} passes: {ours['passes_edges_per_s']})")
    if peer:
        say(f"PyG NeighborLoader over torch-sparse:   {peer['edges']:,} edges in {peer['seconds']:.2f} s = "
            f"{peer['edges_per_s']:,.0f} edges/s (median of {a.repeats} passes: {peer['passes_edges_per_s']})")
        say(f"ratio graphrec / torch-sparse: {ours['edges_per_s'] / peer['edges_per_s']:.2f}   (goal on CPU: >= 0.5)")
    else:
        say("torch-sparse not available: no peer figures (see the docstring to build it)")
    say(json.dumps({
        "edges": ours["edges"],
        "graphrec_edges_per_s": round(ours["edges_per_s"]),
        "torch_sparse_edges_per_s": round(peer["edges_per_s"]) if peer else None,
        "ratio": round(ours["edges_per_s"] / peer["edges_per_s"], 3) if peer else None,
    }))
    say.save(a.out)


if __name__ == "__main__":
    main()
