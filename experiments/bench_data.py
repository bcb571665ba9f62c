"""Loading speed and memory on a 25M-row synthetic log in the ml-latest CSV layout.

Writes ``ratings.csv`` (and a ``movies.csv``) with ``--rows`` rows of power-law
users and items into a temporary ``ml-latest`` folder, then loads it with
``graphrec.data.load_movielens`` in a fresh child process, so that peak RSS
counts the load alone. Also times ML-100K from ``$GRAPHREC_DATA_DIR``.

Usage: python experiments/bench_data.py [--rows 25000000] [--keep DIR] [--out FILE]
Output: printed, and saved to ``--out`` (default ``experiments/results/bench_data.txt``).
Last line: {"rows": ..., "load_seconds": ..., "peak_rss_mb": ...}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from report import Report  # experiments/report.py: scripts run from this folder

HERE = Path(__file__).resolve().parent

CHILD = """
import json, resource, sys, time
t = time.perf_counter()
from graphrec.data import load_movielens
ds = load_movielens(sys.argv[1], sys.argv[2], download=False)
seconds = time.perf_counter() - t
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": len(ds), "users": ds.num_users, "items": ds.num_items,
                  "load_seconds": round(seconds, 2), "peak_rss_mb": round(rss_mb, 1)}))
"""


def write_synthetic(folder: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    num_users, num_items = max(10, rows // 150), max(10, rows // 400)
    folder.mkdir(parents=True, exist_ok=True)
    items = np.arange(1, num_items + 1)
    movies = pa.table({"movieId": items, "title": [f"Movie {i} (2000)" for i in items],
                       "genres": np.where(items % 3 == 0, "Drama|Comedy", "Action")})
    needed = pacsv.WriteOptions(quoting_style="needed")
    pacsv.write_csv(movies, folder / "movies.csv", needed)
    chunk = 5_000_000
    with pacsv.CSVWriter(folder / "ratings.csv", pa.schema([("userId", pa.int64()), ("movieId", pa.int64()),
                                                            ("rating", pa.float64()), ("timestamp", pa.int64())]),
                         write_options=needed) as w:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            user = (rng.zipf(1.3, n) % num_users) + 1
            item = (rng.zipf(1.2, n) % num_items) + 1
            rating = rng.integers(1, 11, n) / 2
            ts = rng.integers(789_652_009, 1_700_000_000, n)
            w.write_table(pa.table({"userId": user, "movieId": item, "rating": rating, "timestamp": ts}))


def run_child(name: str, root: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, name, str(root)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"loading {name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=25_000_000)
    p.add_argument("--keep", default=None, help="write the synthetic files here and keep them")
    p.add_argument("--out", type=Path, default=HERE / "results" / "bench_data.txt",
                   help="where the printed lines are saved")
    a = p.parse_args()
    say = Report()
    say(f"# python experiments/bench_data.py --rows {a.rows}   # {time.strftime('%Y-%m-%d')}")
    say(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load (1-min average) at the start "
        f"{os.getloadavg()[0]:.2f}")

    data_dir = os.environ.get("GRAPHREC_DATA_DIR")
    if data_dir and (Path(data_dir) / "ml-100k").is_dir():
        small = run_child("ml-100k", Path(data_dir))
        say(f"ml-100k: {small['rows']:,} rows loaded in {small['load_seconds']:.2f} s (process start and imports included)")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(a.keep) if a.keep else Path(tmp)
        t = time.perf_counter()
        write_synthetic(root / "ml-latest", a.rows)
        size_mb = (root / "ml-latest" / "ratings.csv").stat().st_size / 2**20
        say(f"wrote {a.rows:,} rows ({size_mb:,.0f} MiB) in {time.perf_counter() - t:.1f} s")
        result = run_child("ml-latest", root)
    say(f"loaded {result['rows']:,} rows ({result['users']:,} users, {result['items']:,} items) "
          f"in {result['load_seconds']:.1f} s, peak RSS {result['peak_rss_mb']:,.0f} MB "
          f"(goals: < 60 s, < 4096 MB)")
    say(json.dumps({"rows": result["rows"], "load_seconds": result["load_seconds"], "peak_rss_mb": result["peak_rss_mb"]}))
    say.save(a.out)


if __name__ == "__main__":
    main()
