"""Where the per-user random split's time goes as the data grows: the global shuffle against the grouped one.

``graphrec.data.random_split`` draws each user's order one of two ways
(``split.shuffle``). ``global`` (the split of every figure recorded before
2026-12-07) permutes the whole log, then regroups it by user: random memory
accesses over the whole log, which grow faster than the log once it leaves
the CPU's cache (``bench_scale.py`` measured exponent 1.23 from 1M to 25M
interactions with it). ``grouped`` (the default since) groups each user's
interactions (one sort), then orders each group by a uniform random key (a
sort that only moves entries within their group, so its memory accesses stay
local). Both give every user a uniformly random order of their interactions,
but not the same one for the same seed. This script times each one's steps
and each whole split on the same synthetic logs (ml-25m's shape, graphrec's
seeded power-law source), and checks that the two have the same part sizes
for every user and that each is a partition of the log.

Each step is timed ``--repeats`` times (median), and each whole split end to
end the same way (its steps' medians do not add up to it: the whole also
holds the small steps not timed apart). The exponent of a step is the
least-squares slope of log(seconds) over log(interactions).

Usage: python experiments/bench_split.py [--sizes 1000000 5000000 25000000] [--repeats 3] [--threads 2] [--out FILE]
Last line: {"sizes": [...], "global": {"seconds": [...], "exponent": ...}, "grouped": {...}, "steps": {...}}
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_scale import ML25M_ITEMS, exponent, shape  # noqa: E402

from graphrec.data import split as S  # noqa: E402
from graphrec.data.sources import synthetic_dataset  # noqa: E402
from graphrec.fs import atomic_write_text  # noqa: E402
from graphrec.matrices import stable_argsort  # noqa: E402
from graphrec.runtime import set_threads  # noqa: E402

SEED = 2020
RATIOS = (0.8, 0.1, 0.1)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The median seconds of ``repeats`` calls, and the last call's value."""
    secs, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        secs.append(time.perf_counter() - t)
    return float(np.median(secs)), out


def run_size(n: int, repeats: int, say: Callable[[str], None]) -> dict[str, dict[str, float]]:
    users, items = shape(n, ML25M_ITEMS)
    ds = synthetic_dataset(users, items, n, seed=0, name=f"synthetic-{n}")
    user = ds.interactions.user
    r = S._check_ratios(RATIOS)
    glob: dict[str, float] = {}
    glob["duplicate check"], _ = timed(lambda: S._require_unique_pairs(ds), repeats)
    glob["permutation"], perm = timed(lambda: np.random.default_rng(SEED).permutation(len(user)), repeats)
    glob["gather user[perm]"], g = timed(lambda: user[perm], repeats)
    glob["group sort"], idx = timed(lambda: stable_argsort(g), repeats)
    glob["gather perm[order]"], order = timed(lambda: perm[idx], repeats)
    counts = np.bincount(g, minlength=ds.num_users)
    glob["cut into parts"], parts = timed(lambda: S._assign_by_rank(order, counts, len(user), r), repeats)
    glob["Split checks"], _ = timed(lambda: S.Split(ds, *parts, "x"), repeats)
    glob["whole random_split"], split = timed(lambda: S.random_split(ds, RATIOS, SEED, shuffle="global"), repeats)

    grp: dict[str, float] = {"duplicate check": glob["duplicate check"], "Split checks": glob["Split checks"]}
    grp["group, then shuffle within"], (g_order, g_counts) = timed(
        lambda: S._shuffled_within(user, ds.num_users, np.random.default_rng(SEED)), repeats)
    grp["cut into parts"], _ = timed(lambda: S._assign_by_rank(g_order, g_counts, len(user), r), repeats)
    grp["whole random_split"], grouped = timed(lambda: S.random_split(ds, RATIOS, SEED, shuffle="grouped"), repeats)
    # the two: partitions of the log, with the same part sizes for every user
    for name in S.PARTS:
        a, b = getattr(grouped, name), getattr(split, name)
        if not np.array_equal(np.bincount(user[a], minlength=ds.num_users), np.bincount(user[b], minlength=ds.num_users)):
            raise AssertionError(f"the grouped shuffle's {name} part has other per-user sizes than the global one's")
    for which in (split, grouped):
        if not np.array_equal(np.sort(np.concatenate([which.train, which.valid, which.test])), np.arange(n)):
            raise AssertionError(f"{which.method}: the parts are not a partition of the log")
    say(f"{n:,} interactions ({ds.num_users:,} users): global {glob['whole random_split']:.2f} s, "
        f"grouped {grp['whole random_split']:.2f} s")
    return {"global": glob, "grouped": grp}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000, 25_000_000])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(HERE / "results" / "bench_split.txt"))
    a = p.parse_args()
    set_threads(a.threads)
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    say(f"bench_split.py: the per-user random split's steps, {datetime.date.today()}, {os.cpu_count()} CPU cores "
        f"visible, threads {a.threads}, median of {a.repeats}")
    say(f"command: python experiments/bench_split.py --sizes {' '.join(map(str, a.sizes))} --repeats {a.repeats}")
    sizes = sorted(a.sizes)
    runs = [run_size(n, a.repeats, say) for n in sizes]
    say()
    head = "| step | " + " | ".join(f"{n / 1e6:g}M s" for n in sizes) + " | exponent |"
    result: dict[str, Any] = {"sizes": sizes, "steps": {}}
    for which, title in (("global", "shuffle: global (the recorded figures' split)"),
                         ("grouped", "shuffle: grouped (the default)")):
        say(f"{title}:")
        say(head)
        say("|" + " --- |" * (head.count("|") - 1))
        result["steps"][which] = {}
        for step in runs[0][which]:
            secs = [run[which][step] for run in runs]
            exp = exponent(sizes, secs)
            say(f"| {step} | " + " | ".join(f"{s:.3f}" for s in secs) + f" | {'' if exp is None else f'{exp:.2f}'} |")
            result["steps"][which][step] = {"seconds": [round(s, 4) for s in secs],
                                            "exponent": None if exp is None else round(exp, 3)}
        say()
    for which in ("global", "grouped"):
        result[which] = result["steps"][which]["whole random_split"]
    ratio = [c / g for c, g in zip(result["global"]["seconds"], result["grouped"]["seconds"], strict=True)]
    say("global / grouped: " + ", ".join(f"{n / 1e6:g}M {x:.2f}×" for n, x in zip(sizes, ratio, strict=True)))
    say(json.dumps(result))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
