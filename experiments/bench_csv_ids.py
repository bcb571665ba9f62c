"""What keeping a CSV log's ids as written costs: ``load_interactions`` with and without its id check.

Since 2026-12-07 ``graphrec.data.load_interactions`` reads a CSV log's user and
item columns a second time, as text (one Arrow read of those two columns), when
pandas parsed them as numbers: unless every id is an integer in its own
spelling (``7``, not ``007``), the column keeps the strings as written. This
script times the load both ways on the same files, A B A B (the check turned
off by replacing it with a no-op: the load as it was before), for a log of
canonical integer ids (the check runs and keeps the integers) and the same log
with zero-padded item ids (the check runs and keeps the strings; without it
``0007`` and ``7`` would both be item 7).

Usage: python experiments/bench_csv_ids.py [--sizes 1000000 5000000] [--repeats 3] [--out FILE]
Last line: {"sizes": [...], "integer_ids": {"with_check": [...], "without": [...]}, "padded_ids": {...}}
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from report import Report  # experiments/report.py: scripts run from this folder

from graphrec.data import formats
from graphrec.data.sources import synthetic_dataset

HERE = Path(__file__).resolve().parent


def write_logs(n: int, folder: Path) -> tuple[Path, Path]:
    """The seeded power-law log of ``n`` interactions as CSV: integer ids, and the same with item ids padded."""
    ds = synthetic_dataset(max(1000, n // 150), max(500, n // 400), n, 0, "bench")
    frame = pd.DataFrame({"user": ds.users.ids[ds.interactions.user], "item": ds.items.ids[ds.interactions.item],
                          "rating": ds.interactions.rating})
    plain, padded = folder / f"log-{n}.csv", folder / f"log-{n}-padded.csv"
    frame.to_csv(plain, index=False)
    frame.assign(item=[f"{i:07d}" for i in frame["item"].tolist()]).to_csv(padded, index=False)
    return plain, padded


def load_seconds(path: Path, check: bool) -> float:
    original = formats._ids_as_written
    if not check:
        formats._ids_as_written = lambda *args, **kwargs: None  # the load before 2026-12-07
    try:
        start = time.perf_counter()
        formats.load_interactions(path, {"rating": "rating"})
        return time.perf_counter() - start
    finally:
        formats._ids_as_written = original


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(HERE / "results" / "bench_csv_ids.txt"))
    args = p.parse_args()
    out = Report()
    out(f"bench_csv_ids.py: a CSV log's load with and without the id check, {datetime.date.today()}, "
        f"{os.cpu_count()} CPU cores visible, median of {args.repeats} (A B A B)")
    result: dict[str, dict[str, list[float]]] = {k: {"with_check": [], "without": []}
                                                 for k in ("integer_ids", "padded_ids")}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            plain, padded = write_logs(n, Path(tmp))
            for kind, path in (("integer_ids", plain), ("padded_ids", padded)):
                times: dict[str, list[float]] = {"with_check": [], "without": []}
                load_seconds(path, True)  # warm the page cache
                for _ in range(args.repeats):
                    for key, check in (("with_check", True), ("without", False)):
                        times[key].append(load_seconds(path, check))
                for key in times:
                    result[kind][key].append(round(float(np.median(times[key])), 3))
                a, b = result[kind]["with_check"][-1], result[kind]["without"][-1]
                ids = formats.load_interactions(path, {"rating": "rating"}).items
                out(f"{n:>11,} interactions, {kind.replace('_', ' ')}: {a:.3f} s with the check, {b:.3f} s "
                    f"without ({a / b:.2f}x); {len(ids):,} items, ids {ids.ids.dtype} "
                    f"(without the check: {formats.load_interactions.__name__} would give "
                    f"{'the same' if kind == 'integer_ids' else 'integers, 0000007 read as 7'})")
    out(json.dumps({"sizes": args.sizes, **result}))
    out.save(Path(args.out))


if __name__ == "__main__":
    main()
