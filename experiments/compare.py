"""Run a set of experiment configurations over several seeds and write a results table.

Each configuration runs once per seed (the seed sets both the split and the
training), then ``experiments/results.md`` gets mean ± std (over seeds) of the
test metrics per dataset and model, with the command that made it.

Usage:
  python experiments/compare.py                               # every ml100k-*/mlsmall-* experiment, seeds 2020 2021 2022
  python experiments/compare.py --configs experiments/ml100k-*.yaml --seeds 2020 --out /tmp/r.md
  python experiments/compare.py --render a.json b.json        # one table from runs saved by earlier calls
  python experiments/compare.py --collect runs/compare/ml100k-lightgcn-seed2020 ... --out r.md   # from run dirs
  python experiments/compare.py --configs experiments/ml100k-*.yaml --tune-trials 20 --out r.md  # equal tuning budget

With ``--tune-trials N`` every model is first tuned with ``graphrec tune`` for
the same N trials (on the configuration's own split seed, validation data
only; models without a search space are run as written), then its best
configuration runs over the seeds.

Under each dataset's table, a Wilcoxon signed-rank test over users (paired
by seed and user, two-sided) compares the best model with the runner-up, and
the best graph model with the best model that is not one, on Recall@20 and
NDCG@20: each run saves its per-user test metrics for this.

Each call saves its runs as JSON next to ``--out``; ``experiments/results/``
keeps the saved runs behind ``results.md`` and ``NOTES.md`` (remarks appended
under the table).
"""

from __future__ import annotations

import argparse
import glob
import json
import platform
import shlex
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import yaml

from graphrec.fs import atomic_write_text
from graphrec.run import load_config, run_experiment

HERE = Path(__file__).resolve().parent
COLUMNS = [
    ("recall@10", "Recall@10"), ("ndcg@10", "NDCG@10"), ("recall@20", "Recall@20"), ("ndcg@20", "NDCG@20"),
    ("coverage@20", "Coverage@20"),
    ("popularity@20", "Popularity@20"), ("novelty@20", "Novelty@20"), ("diversity@20", "ILD@20"),
    ("recall@20[cold-items]", "Recall@20 cold items"),
]


def fmt(values: list[float]) -> str:
    v = np.asarray([x for x in values if x == x], dtype=float)
    if not len(v):
        return "n/a"
    if len(v) == 1:
        return f"{v[0]:.4f}"
    return f"{v.mean():.4f} ± {v.std(ddof=1):.4f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=sorted(glob.glob(str(HERE / "ml100k-*.yaml")) + glob.glob(str(HERE / "mlsmall-*.yaml"))),
                   help="experiment files (default: the ML-100K and ml-latest-small ones, whose data is on this machine)")
    p.add_argument("--seeds", nargs="+", type=int, default=[2020, 2021, 2022])
    p.add_argument("--out", default=None, help="the table (default for --configs: experiments/results.md, the "
                                              "committed one; --collect and --render need it given)")
    p.add_argument("--runs", default="runs/compare", help="folder for the run directories")
    p.add_argument("--render", nargs="+", metavar="JSON", help="only write the table from results JSON files")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run (default: the configs' train.threads)")
    p.add_argument("--tune-trials", type=int, default=None, metavar="N",
                   help="tune every model with N trials of graphrec tune first, then run its best configuration")
    p.add_argument("--collect", nargs="+", metavar="RUN_DIR",
                   help="only write the table (and its JSON) from finished run directories of earlier calls")
    a = p.parse_args()
    if a.out is None:
        if a.collect or a.render:
            p.error("--collect and --render write a table: give --out (the default, experiments/results.md, is the "
                    "committed table that --configs makes)")
        a.out = str(HERE / "results.md")
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    command = f"python {' '.join(shlex.quote(x) for x in sys.argv)}"
    threads = a.threads if a.threads is not None else torch.get_num_threads()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({platform.processor() or platform.machine()}, {threads} threads)"
    if a.render:
        results, commands = {}, []
        for path in a.render:
            saved = json.loads(Path(path).read_text())
            commands.append(f"`{saved['command']}` ({saved['device']}, {saved['date']})")
            for key, runs in saved["results"].items():
                d, m = key.split("/", 1)
                results[(d, m)] = runs
        write_table(a.out, results, a.seeds, commands)
        return
    if a.collect:
        collected: dict[tuple[str, str], list[dict]] = {}
        for run_dir in map(Path, a.collect):
            # the run's resolved configuration as written (plain YAML: it may predate today's key checks)
            cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
            metrics = json.loads((run_dir / "metrics.json").read_text())
            train = cfg.get("train", {})
            budget = {"epochs": train["epochs"], "patience": train["patience"], "eval_every": train.get("eval_every", 1)} \
                if metrics["epochs_run"] else None
            collected.setdefault((cfg["dataset"]["name"], cfg["name"]), []).append(
                {"seed": train["seed"], "config": str(HERE / f"{cfg['name']}.yaml"), "budget": budget,
                 "split": split_record(cfg.get("split") or {}), "run_dir": str(run_dir), **metrics,
                 **per_user_record(run_dir)})
        date = f"{datetime.now(timezone.utc):%Y-%m-%d}"
        atomic_write_text(Path(a.out).with_suffix(".json"), json.dumps(
            {"command": command, "device": device, "date": date,
             "results": {f"{d}/{m}": runs for (d, m), runs in collected.items()}}, indent=1, default=str))
        write_table(a.out, collected, a.seeds, [f"`{command}` ({device}, {date})"])
        return
    configs = [load_config(c) for c in a.configs]  # every configuration is checked before anything runs
    results: dict[tuple[str, str], list[dict]] = {}
    for path, cfg in zip(a.configs, configs, strict=True):
        tuned = None
        if a.tune_trials and type(cfg.model).search_space:
            from graphrec.run.tuning import tune

            t = time.perf_counter()
            if a.threads is not None:
                cfg = replace(cfg, train=replace(cfg.train, threads=a.threads))
            res = tune(replace(cfg, train=replace(cfg.train, progress=False)), a.tune_trials,
                       out=Path(a.runs) / "tune" / cfg.name, log=lambda line, n=cfg.name: print(f"{n}: {line}", flush=True))
            tuned = {"trials": len(res.trials), "best_trial": res.best.number, f"valid_{res.metric}": res.best.value,
                     "params": {k: list(v) if isinstance(v, tuple) else v for k, v in res.best.params.items()},
                     "seconds": round(time.perf_counter() - t, 1)}
            cfg = replace(res.best_config, name=cfg.name)
        for seed in a.seeds:
            train = replace(cfg.train, seed=seed, progress=False)
            if a.threads is not None:
                train = replace(train, threads=a.threads)
            # the seed sets the split where its method reads one (a temporal split is the same for every seed)
            c = replace(cfg, split=replace(cfg.split, seed=seed) if "seed" in cfg.split.reads else cfg.split,
                        train=train)
            t = time.perf_counter()
            run_dir, metrics = run_experiment(c, Path(a.runs) / f"{cfg.name}-seed{seed}", log=lambda *_: None,
                                              overwrite=True)
            test = metrics["test"]
            print(f"{cfg.name:<28} seed {seed}: recall@20 {test['recall@20']:.4f} ndcg@20 {test['ndcg@20']:.4f} "
                  f"(best epoch {metrics['best_epoch']} of {metrics['epochs_run']}, {time.perf_counter() - t:.0f} s)",
                  flush=True)
            budget = {"epochs": c.train.epochs, "patience": c.train.patience, "eval_every": c.train.eval_every} \
                if metrics["epochs_run"] else None
            results.setdefault((cfg.dataset.name, cfg.name), []).append(
                {"seed": seed, "config": path, "budget": budget, "split": split_record(c.to_dict()["split"]), **metrics,
                 **per_user_record(run_dir), **({"tuned": tuned} if tuned else {})})
    date = f"{datetime.now(timezone.utc):%Y-%m-%d}"
    atomic_write_text(Path(a.out).with_suffix(".json"), json.dumps(
        {"command": command, "device": device, "date": date,
         "results": {f"{d}/{m}": runs for (d, m), runs in results.items()}}, indent=1, default=str))
    write_table(a.out, results, a.seeds, [f"`{command}` ({device}, {date})"])


#: metrics whose per-user values a run record keeps for the paired tests
PAIRED = ("recall@20", "ndcg@20")
#: rows that are not graph models (the bar a graph model must clear)
NON_GRAPH = ("mostpop", "itemknn", "ease", "mf-bpr")


#: the split of every run recorded before runs recorded theirs (2026-12-07)
LEGACY_SPLIT = {"method": "random", "ratios": [0.8, 0.1, 0.1], "shuffle": "global"}


def split_record(split: dict | None) -> dict:
    """What a run's split is, but for the seed (the seed pairs the runs): the keys its method reads, defaults
    filled in. A run recorded without a split, or a random one without ``shuffle``, used the global shuffle
    of the per-user random 80/10/10 split (the only split recorded before)."""
    from dataclasses import fields

    from graphrec.run.config import SplitSection

    split = dict(split or LEGACY_SPLIT)
    method = split.get("method", "random")
    if "shuffle" not in split and method in ("random", "cold-items"):
        split["shuffle"] = "global"
    defaults = {f.name: f.default for f in fields(SplitSection)}
    out: dict = {"method": method}
    for key in SplitSection.READS.get(method, ()):
        if key != "seed":
            value = split.get(key, defaults[key])
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def describe_split(split: dict) -> str:
    """The table header's words for the split every run shares, and what the seed sets."""
    ratios = "/".join(f"{r:g}" for r in split.get("ratios", []))
    if split["method"] == "random" and split.get("ratios") == [0.8, 0.1, 0.1]:
        return "each seed sets the per-user random 80/10/10 split and the training"
    if split["method"] in ("random", "cold-items"):
        return f"each seed sets the {split['method']} split {ratios} and the training"
    what = f"the fixed split {split.get('fixed')}" if split["method"] == "fixed" else \
        f"the {split['method']} split" + (f" {ratios}" if ratios else "")
    return f"{what}, the same for every seed; each seed sets the training"


def check_same_split(dataset: str, rows: dict[str, list[dict]]) -> dict | None:
    """The split all ``rows`` of ``dataset`` share; SystemExit naming two runs that differ (their per-user
    metrics cannot be paired, nor their means compared)."""
    splits = {json.dumps(split_record(r.get("split")), sort_keys=True): (m, r) for m, runs in rows.items()
              for r in runs}
    if len(splits) > 1:
        (a_key, (a, ra)), (b_key, (b, rb)) = list(splits.items())[:2]
        raise SystemExit(f"{dataset}: the runs do not share a split, so they cannot be compared or paired: "
                         f"{a} ({ra.get('run_dir', ra.get('config'))}) has {a_key}, {b} "
                         f"({rb.get('run_dir', rb.get('config'))}) has {b_key}")
    return json.loads(next(iter(splits))) if splits else None


def per_user_record(run_dir: Path) -> dict:
    """``{"per_user": {"users": [...], "recall@20": [...], ...}}`` from a run's test_per_user.npz ({} if it has none)."""
    path = Path(run_dir) / "test_per_user.npz"
    if not path.is_file():
        return {}
    saved = np.load(path)
    return {"per_user": {"users": saved["users"].tolist(),
                         **{k: [round(float(x), 6) for x in saved[k]] for k in PAIRED if k in saved}}}


def paired(a_runs: list[dict], b_runs: list[dict], key: str) -> tuple[int, float, float] | None:
    """Wilcoxon signed-rank test of ``key`` between two rows over (seed, user) pairs both evaluated.

    Returns ``(pairs, mean difference a - b, two-sided p)``, or None when a row has no per-user metrics.
    """
    from scipy.stats import wilcoxon

    def table(runs: list[dict]) -> dict[tuple[int, int], float] | None:
        if not all("per_user" in r and key in r["per_user"] for r in runs):
            return None
        return {(r["seed"], u): v for r in runs for u, v in zip(r["per_user"]["users"], r["per_user"][key], strict=True)}

    a, b = table(a_runs), table(b_runs)
    if a is None or b is None:
        return None
    common = sorted(set(a) & set(b))
    x, y = np.array([a[c] for c in common]), np.array([b[c] for c in common])
    if not len(common) or np.all(x == y):
        return (len(common), 0.0, 1.0)
    return len(common), float((x - y).mean()), float(wilcoxon(x, y).pvalue)


def significance_lines(rows: dict[str, list[dict]]) -> list[str]:
    """The table's paired tests: best vs runner-up, best graph model vs best other model (by mean Recall@20)."""
    def mean(model: str) -> float:
        return float(np.mean([r["test"]["recall@20"] for r in rows[model]]))

    ranked = sorted(rows, key=mean, reverse=True)
    graph = [m for m in ranked if m not in NON_GRAPH]
    other = [m for m in ranked if m in NON_GRAPH]
    pairs = []
    if len(ranked) >= 2:
        pairs.append(("best vs runner-up", ranked[0], ranked[1]))
    if graph and other:
        if pairs and {graph[0], other[0]} == set(pairs[0][1:]):
            pairs[0] = ("best vs runner-up, also the best graph model vs the best non-graph model", *pairs[0][1:])
        else:
            pairs.append(("best graph model vs best non-graph model", graph[0], other[0]))
    lines = []
    for what, a, b in pairs:
        cells = []
        for key in PAIRED:
            test = paired(rows[a], rows[b], key)
            cells.append("no per-user metrics saved" if test is None else
                         f"{key} {test[1]:+.4f} per user, p = {test[2]:.2g}")
        n = paired(rows[a], rows[b], PAIRED[0])
        lines.append(f"- {what}: **{a}** vs {b}" + (f" ({n[0]} (seed, user) pairs)" if n else "") + ": "
                     + "; ".join(cells))
    return lines


def variant(run: dict) -> str:
    """Row name: the configuration file's name without its dataset prefix (``ml100k-graphsage-attrs`` -> ``graphsage-attrs``)."""
    return Path(run["config"]).stem.split("-", 1)[-1]


#: table rows: baselines first, then the graph models (other rows after these, by name)
ROW_ORDER = ("mostpop", "itemknn", "ease", "mf-bpr", "gf-cf", "bspm", "lightgcn", "lightgcn-genres", "text-lightgcn", "simgcl",
             "xsimgcl", "graphsage", "graphsage-attrs")


def _row_order(row: str) -> tuple[int, str]:
    return (ROW_ORDER.index(row) if row in ROW_ORDER else len(ROW_ORDER), row)


def write_table(out: str, results: dict[tuple[str, str], list[dict]], seeds: list[int], commands: list[str]) -> None:
    # one row per configuration (two configurations may share a model name)
    regrouped: dict[tuple[str, str], list[dict]] = {}
    for (dataset, _), runs in results.items():
        for r in runs:
            regrouped.setdefault((dataset, variant(r)), []).append(r)
    results = regrouped
    seeds = sorted({r["seed"] for runs in results.values() for r in runs}) or seeds
    splits = {d: check_same_split(d, {m: runs for (dd, m), runs in results.items() if dd == d})
              for d in dict.fromkeys(d for d, _ in results)}
    words = {describe_split(sp) for sp in splits.values() if sp is not None}
    lines = [
        "# Results",
        "",
        f"Test metrics, mean ± std over seeds {', '.join(map(str, seeds))} "
        f"({'; '.join(sorted(words)) or 'each seed sets the split and the training'}). Full ranking over all "
        "items, train and valid items excluded. "
        "Popularity: mean train count of recommended items; novelty: mean -log2 popularity share; "
        "ILD: intra-list diversity (genre or text-embedding cosine distance); cold items: test items with no train "
        "interaction.",
        "",
        f"graphrec {__import__('graphrec').__version__}. Made by:",
        "",
        *[f"- {c}" for c in commands],
    ]
    budgets = {json.dumps(r["budget"], sort_keys=True) for runs in results.values() for r in runs if r.get("budget")}
    if budgets:
        rule = "; ".join(f"at most {b['epochs']} epochs, stopped after {b['patience']} validation evaluations "
                         f"(every {b['eval_every']} epoch(s)) without a better validation {'NDCG@20'}"
                         for b in map(json.loads, sorted(budgets)))
        lines += ["", f"Budget: every trained model gets the same rule: {rule}; the best validation epoch is "
                      "evaluated on test. Column *epochs*: best epoch / epochs run (mean over seeds); *fit s*: "
                      "seconds per run (training, validation and test evaluation)."]
    for dataset in dict.fromkeys(d for d, _ in results):
        lines += ["", f"## {dataset}", "",
                  "| model | " + " | ".join(c[1] for c in COLUMNS) + " | epochs | fit s | seeds | tuned |",
                  "|---" * (len(COLUMNS) + 5) + "|"]
        for (d, model), runs in sorted(results.items(), key=lambda kv: _row_order(kv[0][1])):
            if d != dataset:
                continue
            cells = [fmt([r["test"].get(key, float("nan")) for r in runs]) for key, _ in COLUMNS]
            ep = np.asarray([r["epochs_run"] for r in runs], dtype=float)
            best = np.asarray([r["best_epoch"] for r in runs], dtype=float)
            epochs = f"{best.mean():.0f} / {ep.mean():.0f}"
            secs = np.asarray([r["seconds"] for r in runs], dtype=float)
            tuned = runs[0].get("tuned")
            how = f"{tuned['trials']} trials" if tuned else "as written"
            lines.append(f"| {model} | " + " | ".join(cells) + f" | {epochs} | {secs.mean():.0f} | {len(runs)} | {how} |")
        rows = {m: runs for (d, m), runs in results.items() if d == dataset}
        tests = significance_lines(rows)
        if tests:
            lines += ["", "Paired Wilcoxon signed-rank tests over users (two-sided), rows ranked by mean Recall@20:",
                      "", *tests]
        tuned = {m: runs[0]["tuned"] for m, runs in rows.items() if runs and runs[0].get("tuned")}
        if tuned:
            lines += ["", "Tuned (graphrec tune, validation data of the seed-2020 split; best values):", ""]
            lines += [f"- {m}: {t['trials']} trials, valid NDCG@20 {t.get('valid_ndcg@20', float('nan')):.4f}; "
                      + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items())
                      for m, t in sorted(tuned.items(), key=lambda kv: _row_order(kv[0]))]
    notes = HERE / "results" / "NOTES.md"  # hand-written remarks on the saved runs, kept under the committed table
    if notes.is_file() and Path(out).resolve() == (HERE / "results.md").resolve():
        lines += ["", notes.read_text().rstrip()]
    atomic_write_text(out, "\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
