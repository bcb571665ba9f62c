"""Where the per-user random split's time goes as the data grows, and what a cache-friendly shuffle would change.

``bench_scale.py`` measures the ``random`` split growing with exponent 1.23
from 1M to 25M interactions, the one stage that must be linear and is not.
This script times the split's steps one by one on the same synthetic logs
(ml-25m's shape, graphrec's seeded power-law source) to show which steps
grow faster than the data, and times a candidate that graphrec does *not*
ship: a grouped shuffle, which first groups each user's interactions (one
sort), then orders each group by a uniform random key (a sort that only
moves entries within their group, so its memory accesses stay local). Both
give every user a uniformly random order of their interactions, but not the
same one for the same seed: adopting the candidate would change the split of
every ``random`` experiment, and so every figure measured on them. The
script checks that the candidate's parts have the current split's sizes for
every user and that its train, valid and test are a partition.

Each step is timed ``--repeats`` times (median), and each whole split end to
end the same way (its steps' medians do not add up to it: the whole also
holds the small steps not timed apart). The exponent of a step is the
least-squares slope of log(seconds) over log(interactions).

Usage: python experiments/bench_split.py [--sizes 1000000 5000000 25000000] [--repeats 3] [--threads 2] [--out FILE]
Last line: {"sizes": [...], "current": {"seconds": [...], "exponent": ...}, "grouped": {...}, "steps": {...}}
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


def grouped_order(user: np.ndarray, num_users: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The candidate: positions grouped by user (one stable sort), each group in the order of a uniform key."""
    by_user = stable_argsort(user)
    counts = np.bincount(user, minlength=num_users)
    key = np.repeat(np.arange(num_users, dtype=np.float64), counts) + np.random.default_rng(seed).random(len(user))
    return by_user[np.argsort(key, kind="stable")], counts


def run_size(n: int, repeats: int, say: Callable[[str], None]) -> dict[str, dict[str, float]]:
    users, items = shape(n, ML25M_ITEMS)
    ds = synthetic_dataset(users, items, n, seed=0, name=f"synthetic-{n}")
    user = ds.interactions.user
    r = S._check_ratios(RATIOS)
    cur: dict[str, float] = {}
    cur["duplicate check"], _ = timed(lambda: S._require_unique_pairs(ds), repeats)
    cur["permutation"], perm = timed(lambda: np.random.default_rng(SEED).permutation(len(user)), repeats)
    cur["gather user[perm]"], g = timed(lambda: user[perm], repeats)
    cur["group sort"], idx = timed(lambda: stable_argsort(g), repeats)
    cur["gather perm[order]"], order = timed(lambda: perm[idx], repeats)
    counts = np.bincount(g, minlength=ds.num_users)
    cur["cut into parts"], parts = timed(lambda: S._assign_by_rank(order, counts, len(user), r), repeats)
    cur["Split checks"], _ = timed(lambda: S.Split(ds, *parts, "x"), repeats)
    cur["whole random_split"], split = timed(lambda: S.random_split(ds, RATIOS, SEED), repeats)

    alt: dict[str, float] = {"duplicate check": cur["duplicate check"], "Split checks": cur["Split checks"]}
    alt["group, then order by key"], (alt_order, alt_counts) = timed(
        lambda: grouped_order(user, ds.num_users, SEED), repeats)
    alt["cut into parts"], alt_parts = timed(lambda: S._assign_by_rank(alt_order, alt_counts, len(user), r), repeats)

    def grouped_split() -> S.Split:  # end to end, as random_split is timed: checks, grouping, cut, Split
        S._require_unique_pairs(ds)
        order_, counts_ = grouped_order(user, ds.num_users, SEED)
        return S.Split(ds, *S._assign_by_rank(order_, counts_, len(user), S._check_ratios(RATIOS)), "grouped")

    alt["whole candidate"], _ = timed(grouped_split, repeats)
    # the candidate's parts: a partition, with the current split's sizes for every user
    for name, a, b in zip(S.PARTS, alt_parts, (split.train, split.valid, split.test), strict=True):
        per_user = np.bincount(user[a], minlength=ds.num_users)
        if not np.array_equal(per_user, np.bincount(user[b], minlength=ds.num_users)):
            raise AssertionError(f"the candidate's {name} part has other per-user sizes than the current split's")
    if not np.array_equal(np.sort(np.concatenate(alt_parts)), np.arange(n)):
        raise AssertionError("the candidate's parts are not a partition of the log")
    say(f"{n:,} interactions ({ds.num_users:,} users): current {cur['whole random_split']:.2f} s, "
        f"candidate {alt['whole candidate']:.2f} s")
    return {"current": cur, "grouped": alt}


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
    for which, title in (("current", "current split (graphrec)"), ("grouped", "candidate: grouped shuffle")):
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
    for which, whole in (("current", "whole random_split"), ("grouped", "whole candidate")):
        result[which] = result["steps"][which][whole]
    ratio = [c / g for c, g in zip(result["current"]["seconds"], result["grouped"]["seconds"], strict=True)]
    say("current / candidate: " + ", ".join(f"{n / 1e6:g}M {x:.2f}×" for n, x in zip(sizes, ratio, strict=True)))
    say(json.dumps(result))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"saved to {out}")


if __name__ == "__main__":
    main()
