"""Training speed on a busy machine: a LightGCN epoch beside one CPU-bound process, against the quiet epoch.

torch's defaults (one intra-op thread per core, OpenMP threads that spin while
they wait) oversubscribe the cores as soon as another job runs. graphrec sets
``train.threads: auto`` (the cores no other process is using when the run
starts). For each setting this script runs, in
fresh processes, ``--epochs`` LightGCN epochs of ``experiments/ml100k-lightgcn.yaml``
(ML-100K, dim 64, 3 layers, batch 2048) and reports the median epoch time,
first on the quiet machine, then beside one background process that spins a
core (``while True: pass``):

* ``graphrec``: what ``graphrec run`` does (threads auto);
* ``graphrec + passive``: the same with ``OMP_WAIT_POLICY=PASSIVE``;
* ``torch defaults``: threads = all cores, OpenMP's default (spinning) wait.

Goal: graphrec's busy epoch within 3x of its quiet epoch. The machine must be
otherwise idle for the figures to mean anything; the script prints the load
average it started with.

Usage: python experiments/bench_threads.py [--epochs 10] [--data-dir DIR]
Saves its output to experiments/results/bench_threads.txt; last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

WORKER = r"""
import json, sys, time
import torch
from graphrec.eval import Evaluator
from graphrec.run import build_model, load_config, prepare
from graphrec.runtime import set_threads
from graphrec.train import Trainer
threads, epochs, data_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
over = {"train.threads": threads if threads == "auto" else int(threads), "train.progress": False}
if data_dir:
    over["dataset.data_dir"] = data_dir
cfg = load_config(sys.argv[4], over)
data = prepare(cfg)
model = build_model(cfg, data)
trainer = Trainer(model, data.train, None, cfg.train)
trainer.train_epoch()  # warm-up
times = []
for _ in range(epochs):
    t = time.perf_counter()
    trainer.train_epoch()
    times.append(time.perf_counter() - t)
print(json.dumps({"threads": torch.get_num_threads(), "times": times}))
"""


def run(setting: str, epochs: int, data_dir: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if setting.startswith("graphrec"):
        threads = "auto"
        if setting.endswith("passive"):
            env["OMP_WAIT_POLICY"] = "PASSIVE"
    else:
        threads = str(os.cpu_count() or 1)
    out = subprocess.run([sys.executable, "-c", WORKER, threads, str(epochs), data_dir,
                          str(HERE / "ml100k-lightgcn.yaml")], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"worker failed ({setting}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--data-dir", default=os.environ.get("GRAPHREC_DATA_DIR", ""))
    a = p.parse_args()
    lines: list[str] = []

    def say(s: str) -> None:
        print(s, flush=True)
        lines.append(s)

    say(f"LightGCN epochs on ML-100K, {a.epochs} timed epochs per setting after one warm-up; {os.cpu_count()} cores "
        f"({platform.machine()}), load average at start {os.getloadavg()[0]:.2f}")
    results: dict[str, dict[str, float]] = {}
    for setting in ("graphrec", "graphrec + passive", "torch defaults"):
        quiet = run(setting, a.epochs, a.data_dir)
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(1.0)
            busy = run(setting, a.epochs, a.data_dir)
        finally:
            hog.kill()
            hog.wait()
        q, b = statistics.median(quiet["times"]), statistics.median(busy["times"])
        results[setting] = {"quiet_s": q, "busy_s": b, "ratio": b / q, "threads_quiet": quiet["threads"],
                            "threads_busy": busy["threads"]}
        say(f"{setting:<16} quiet {q:7.3f} s ({quiet['threads']} threads)   beside one busy process "
            f"{b:7.3f} s ({busy['threads']} threads)   busy/quiet {b / q:6.2f}  (goal for graphrec <= 3)")
    say(json.dumps({k.replace(" + ", "_").replace(" ", "_"): {m: round(v, 4) for m, v in r.items()} for k, r in results.items()}))
    out = HERE / "results" / "bench_threads.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join([f"$ python experiments/bench_threads.py --epochs {a.epochs}", *lines]) + "\n")


if __name__ == "__main__":
    main()
