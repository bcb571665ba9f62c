"""One training epoch at Gowalla's size: graphrec's LightGCN and XSimGCL against RecBole 1.2.1's LightGCN, in one run.

The log is graphrec's seeded power-law synthetic source at Gowalla's size
(29,858 users, 40,981 items, 810,128 train interactions; LightGCN's Gowalla
split has the same counts). Every side trains one epoch over the same
810,128 interactions: BPR with one uniform negative each, batch 2048, dim 64,
Adam lr 1e-3; LightGCN with 3 layers, XSimGCL with its defaults (2 layers,
contrast layer 1). RecBole runs in its own venv (``experiments/peers/
setup_recbole.sh``) on the same interactions, exported as TSV, through
``experiments/peers/recbole_lightgcn.py`` (its epoch time is RecBole's
``_train_epoch`` alone, without the evaluation that script runs after it).

With ``--steps N`` each graphrec side times only its first N steps and
extrapolates them to the epoch's 396 steps (the epoch's shuffle and negative
sampling, done once, are timed as they are); the table marks such rows.

Prints a table with the ratios graphrec / RecBole (goal for LightGCN: <= 0.25)
and ends with one JSON object; everything printed is saved to ``--out``.

Usage: python experiments/bench_epoch_scale.py [--threads 2] [--steps N] [--no-recbole] [--recbole-keep-freed]
       [--device cpu]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when torch loads; the peer gets the same

import argparse
import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from report import Report  # experiments/report.py: scripts run from this folder
from report import peer_venv as find_peer_venv  # its own peer_venv is an argument's name

import graphrec
from graphrec.data.sources import synthetic_dataset
from graphrec.graph import normalized_adjacency
from graphrec.matrices import to_csr
from graphrec.nn import LightGCN, XSimGCL
from graphrec.runtime import keep_freed_memory
from graphrec.train import TrainConfig
from graphrec.train.negatives import NegativeSampler
from graphrec.train.trainer import make_optimizer

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
USERS, ITEMS, INTERACTIONS = 29_858, 40_981, 810_128
BATCH = 2048


def graphrec_epoch(model: torch.nn.Module, train: Any, steps: int | None, device: str, seed: int,
                   keep_freed: bool = True, batch: int = BATCH, budget: float | None = None,
                   on_first_batch: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], dict[str, Any]] | None = None,
                   optimizer: str = "adam") -> dict[str, Any]:
    """Seconds of one epoch (or of its first ``steps`` steps, extrapolated): shuffling, sampling, loss, optimizer
    (``train.optimizer``'s choices, made as graphrec's Trainer makes them).

    With ``budget``, the first ``steps`` steps only decide: the whole epoch runs when they predict at most
    ``budget`` seconds. ``on_first_batch(users, pos, neg)`` may add figures about the first batch to the result.
    """
    model = model.to(device)
    if device == "cpu" and keep_freed:
        keep_freed_memory()  # as graphrec's Trainer does (GRAPHREC_KEEP_FREED_MEMORY=0 turns it off)
    model.train()
    opt = make_optimizer(model, TrainConfig(optimizer=optimizer, lr=1e-3), torch.device(device))
    g = torch.Generator().manual_seed(seed)
    coo = train.tocoo()
    users_all, items_all = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
    total = math.ceil(len(users_all) / batch)
    run = total if steps is None else min(steps, total)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    start = time.perf_counter()
    perm = torch.randperm(len(users_all), generator=g)
    users, pos = users_all[perm], items_all[perm]
    neg = NegativeSampler(train, g).sample(users)
    setup = time.perf_counter() - start  # once per epoch: not extrapolated
    losses: list[float] = []
    while len(losses) < run:
        sl = slice(len(losses) * batch, (len(losses) + 1) * batch)
        loss = model.loss(users[sl].to(device), pos[sl].to(device), neg[sl].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if budget is not None and len(losses) == run < total:
            sync()
            if setup + (time.perf_counter() - start - setup) * total / run <= budget:
                run = total  # the first steps predict the epoch within the budget: all of it
    sync()
    seconds = time.perf_counter() - start
    step = (seconds - setup) / run
    out = {"steps_timed": run, "steps_per_epoch": total, "seconds_timed": seconds, "setup_seconds": setup,
           "epoch_seconds": setup + step * total, "step_seconds": step, "extrapolated": run < total, "batch": batch,
           "mean_loss": float(np.mean(losses))}
    if on_first_batch is not None:
        out.update(on_first_batch(users[:batch], pos[:batch], neg[:batch]))
    return out


#: glibc's environment form of graphrec.runtime.keep_freed_memory, for the peer's process
KEEP_FREED_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def recbole_epoch(train: Any, threads: int, seed: int, peer_venv: str | None, keep_freed: bool = False) -> dict[str, Any]:
    venv = find_peer_venv("setup_recbole.sh", peer_venv)
    coo = train.tocoo()
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        # valid and test: one interaction of the first 200 users each (RecBole evaluates after its epoch; that
        # time is not the epoch's). They are train interactions too, so no user or item is new to RecBole.
        first = np.flatnonzero(np.r_[True, coo.row[1:] != coo.row[:-1]])[:200]
        for part, rows in (("train", np.arange(len(coo.row))), ("valid", first), ("test", first)):
            paths[part] = Path(tmp) / f"{part}.tsv"
            with paths[part].open("w") as f:
                f.write("user\titem\n")
                f.writelines(f"u{u}\ti{i}\n" for u, i in zip(coo.row[rows], coo.col[rows], strict=True))
        cmd = [str(Path(venv) / "bin" / "python"), str(PEERS / "recbole_lightgcn.py"),
               "--train", str(paths["train"]), "--valid", str(paths["valid"]), "--test", str(paths["test"]),
               "--epochs", "1", "--batch", str(BATCH), "--dim", "64", "--layers", "3", "--lr", "0.001",
               "--reg", "1e-4", "--require-pow", "--k", "20", "--seed", str(seed), "--threads", str(threads)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               **(KEEP_FREED_ENV if keep_freed else {})}
        t = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp)
        wall = time.perf_counter() - t
    if res.returncode != 0:
        sys.exit(f"RecBole failed:\n{res.stderr[-3000:]}")
    result = json.loads(res.stdout.strip().splitlines()[-1])
    return {"epoch_seconds": float(result["epoch_seconds"][0]), "wall_seconds": wall, "threads": threads}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="intra-op threads of each side")
    p.add_argument("--steps", type=int, default=None, help="time only the first N steps of graphrec's epochs")
    p.add_argument("--device", default="cpu", help="graphrec's device (RecBole runs on the CPU)")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--no-recbole", action="store_true", help="graphrec's sides only")
    p.add_argument("--without-keep-freed", action="store_true",
                   help="first time graphrec's LightGCN with glibc's default allocator thresholds (what "
                        "graphrec.runtime.keep_freed_memory changes)")
    p.add_argument("--recbole-keep-freed", action="store_true",
                   help="also time RecBole with glibc keeping freed memory, the allocator setting graphrec's "
                        "trainer makes for itself (MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ 1 GiB)")
    p.add_argument("--peer-venv", default=None, help="RecBole's venv (default: setup_recbole.sh's choice)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "bench_epoch_scale.txt")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    say = Report()
    say(f"graphrec {graphrec.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{a.threads} threads, device {a.device}, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"load average {os.getloadavg()[0]:.2f}")
    if a.device == "cpu" and not a.without_keep_freed:
        say(f"graphrec keeps freed memory (graphrec.runtime.keep_freed_memory, as its trainer): {keep_freed_memory()}")
    t = time.perf_counter()
    ds = synthetic_dataset(USERS, ITEMS, INTERACTIONS, seed=a.seed)
    train = to_csr(ds.interactions.user, ds.interactions.item, ds.num_users, ds.num_items)
    adj = normalized_adjacency(train)
    say(f"synthetic log: {ds.num_users:,} users, {ds.num_items:,} items, {train.nnz:,} train interactions "
        f"(built in {time.perf_counter() - t:.1f} s)")
    rows: dict[str, dict[str, Any]] = {}
    if a.without_keep_freed and a.device == "cpu":  # first: once set, glibc's thresholds stay for the process
        torch.manual_seed(a.seed)
        plain = graphrec_epoch(LightGCN(ds.num_users, ds.num_items, adj, dim=64, num_layers=3), train, a.steps,
                               a.device, a.seed, keep_freed=False)
        rows["graphrec LightGCN, glibc's default allocator"] = plain
        say(f"graphrec LightGCN, glibc's default allocator: {plain['epoch_seconds']:.1f} s per epoch")
        say(f"graphrec keeps freed memory from here on (graphrec.runtime.keep_freed_memory): {keep_freed_memory()}")
    torch.manual_seed(a.seed)
    rows["graphrec LightGCN (3 layers)"] = graphrec_epoch(LightGCN(ds.num_users, ds.num_items, adj, dim=64, num_layers=3),
                                                          train, a.steps, a.device, a.seed)
    say(f"graphrec LightGCN: {rows['graphrec LightGCN (3 layers)']['epoch_seconds']:.1f} s per epoch")
    torch.manual_seed(a.seed)
    rows["graphrec XSimGCL (2 layers)"] = graphrec_epoch(XSimGCL(ds.num_users, ds.num_items, adj, dim=64, seed=a.seed),
                                                         train, a.steps, a.device, a.seed)
    say(f"graphrec XSimGCL: {rows['graphrec XSimGCL (2 layers)']['epoch_seconds']:.1f} s per epoch")
    peer = None
    if not a.no_recbole:
        peer = recbole_epoch(train, a.threads, a.seed, a.peer_venv)
        rows["RecBole 1.2.1 LightGCN (3 layers)"] = peer
        say(f"RecBole LightGCN: {peer['epoch_seconds']:.1f} s per epoch")
        if a.recbole_keep_freed:
            kept = recbole_epoch(train, a.threads, a.seed, a.peer_venv, keep_freed=True)
            rows["RecBole 1.2.1 LightGCN, freed memory kept"] = kept
            say(f"RecBole LightGCN, glibc keeping freed memory: {kept['epoch_seconds']:.1f} s per epoch")
    say("")
    say("| side | s per epoch | / RecBole LightGCN | note |")
    say("|---|---|---|---|")
    for name, r in rows.items():
        ratio = f"{r['epoch_seconds'] / peer['epoch_seconds']:.3f}" if peer else "n/a"
        note = f"first {r['steps_timed']} of {r['steps_per_epoch']} steps timed, extrapolated" if r.get("extrapolated") else ""
        say(f"| {name} | {r['epoch_seconds']:.1f} | {ratio} | {note} |")
    summary = {"users": ds.num_users, "items": ds.num_items, "interactions": int(train.nnz), "threads": a.threads,
               "device": a.device, **{k: v for k, v in rows.items()}}
    if peer:
        summary["lightgcn_ratio"] = rows["graphrec LightGCN (3 layers)"]["epoch_seconds"] / peer["epoch_seconds"]
        summary["xsimgcl_ratio"] = rows["graphrec XSimGCL (2 layers)"]["epoch_seconds"] / peer["epoch_seconds"]
    say(json.dumps(summary))
    say.save(a.out)


if __name__ == "__main__":
    main()
