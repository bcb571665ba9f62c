"""Serving a finished run: graphrec.load (the run's bundle) against load_run (re-prepare the data), first top-10.

Each measurement runs in a fresh process, so nothing is cached in memory:
the imports are timed apart, then loading the run and returning the first
top-10 for one user. The bundle's goal: under 1 s on this machine for an
ML-100K LightGCN run. Without ``--run`` a short ML-100K LightGCN run is trained
first (5 epochs: the weights' quality does not change the load time).

Usage: python experiments/bench_load.py [--run RUN_DIR] [--repeats 3] [--out FILE]
Output: printed, and saved to ``--out`` (default ``experiments/results/bench_load.txt``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import Report  # experiments/report.py: scripts run from this folder

HERE = Path(__file__).resolve().parent

BUNDLE = """
import json, sys, time
t = time.perf_counter()
import graphrec, graphrec.run.bundle
imported = time.perf_counter()
model = graphrec.load(sys.argv[1])
items, _ = model.recommend(model.users.ids[0], k=10)
done = time.perf_counter()
print(json.dumps({"imports": imported - t, "load_top10": done - imported, "top10": [str(i) for i in items]}))
"""

LOAD_RUN = """
import json, sys, time
t = time.perf_counter()
from graphrec.rank import Recommender
from graphrec.run import load_run
imported = time.perf_counter()
config, data, model = load_run(sys.argv[1])
rec = Recommender(model, data.dataset.users, data.dataset.items, seen=data.interacted)
items, _ = rec.recommend(data.dataset.users.ids[0], k=10)
done = time.perf_counter()
print(json.dumps({"imports": imported - t, "load_top10": done - imported, "top10": [str(i) for i in items]}))
"""


def child(code: str, run: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "2"})
    if out.returncode != 0:
        sys.exit(f"child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, default=None, help="a finished ML-100K LightGCN run directory")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=HERE / "results" / "bench_load.txt")
    a = p.parse_args()
    say = Report()
    say(f"# python experiments/bench_load.py --repeats {a.repeats}{' --run ' + str(a.run) if a.run else ''}"
        f"   # {time.strftime('%Y-%m-%d')}")
    say(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load (1-min average) at the start "
        f"{os.getloadavg()[0]:.2f}; fresh process per measurement, 2 OpenMP threads")
    with tempfile.TemporaryDirectory() as tmp:
        run = a.run
        if run is None:
            from graphrec.run import load_config, run_experiment

            cfg = load_config(HERE / "ml100k-lightgcn.yaml", {"train.epochs": 5, "train.progress": False})
            run, _ = run_experiment(cfg, Path(tmp) / "run", log=lambda *_: None)
            say("run: experiments/ml100k-lightgcn.yaml with train.epochs=5, trained by this script")
        rows = {}
        for label, code in (("graphrec.load (bundle)", BUNDLE), ("load_run (re-prepare the data)", LOAD_RUN)):
            results = [child(code, run) for _ in range(a.repeats)]
            rows[label] = results
            imports = statistics.median(r["imports"] for r in results)
            took = statistics.median(r["load_top10"] for r in results)
            each = ", ".join(f"{r['load_top10']:.3f}" for r in results)
            say(f"{label:<32} load + first top-10 {took:7.3f} s (median of {a.repeats}; runs {each})   "
                f"imports before it {imports:.2f} s")
        same = rows["graphrec.load (bundle)"][0]["top10"] == rows["load_run (re-prepare the data)"][0]["top10"]
        bundle = statistics.median(r["load_top10"] for r in rows["graphrec.load (bundle)"])
        full = statistics.median(r["load_top10"] for r in rows["load_run (re-prepare the data)"])
        say(f"ratio bundle / load_run: {bundle / full:.3f}; goal for the bundle: < 1 s "
            f"({'met' if bundle < 1 else 'NOT met'}); same top-10 from both: {same}")
        say(f"load (1-min average) at the end {os.getloadavg()[0]:.2f}")
        say(json.dumps({"bundle_seconds": round(bundle, 4), "load_run_seconds": round(full, 4),
                        "ratio": round(bundle / full, 4), "same_top10": same}))
    say.save(a.out)


if __name__ == "__main__":
    main()
