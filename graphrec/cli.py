"""The ``graphrec`` command line.

Errors a user can cause (missing files, malformed rows, bad options) are
printed as one ``error:`` line without a traceback, with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphrec.errors import GraphrecError


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None,
                   help="folder holding the dataset's zip or extracted folder (default: $GRAPHREC_DATA_DIR, then the cache)")
    p.add_argument("--no-download", action="store_true", help="never download; fail if no local copy is found")


_MODELS_EPILOG = "<the model registry>"


class _Help(argparse.RawDescriptionHelpFormatter):
    """Every option's default in --help (where it has one and its help does not say it); epilogs as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or not action.option_strings or action.default in (None, False, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


class _RunHelp(_Help):
    """``graphrec run --help``: the epilog lists the registered models (imported only when help is shown)."""

    def add_text(self, text: str | None) -> None:
        super().add_text(models_help() if text == _MODELS_EPILOG else text)


def models_help() -> str:
    """The registered models, one paragraph each: name, summary and ``model:`` keys with their defaults."""
    from dataclasses import fields

    from graphrec.nn.registry import MODELS

    lines = ["models (the experiment file's model.name; the other model: keys and their defaults below):"]
    for name, spec in MODELS.items():
        defaults = spec.config()
        keys = ", ".join(f"{f.name}={getattr(defaults, f.name)!r}" for f in fields(spec.config) if f.name != "name")
        lines.append(f"  {name}: {spec.summary}")
        lines.append(f"      keys: {keys or 'none'}")
    return "\n".join(lines)


def _dataset_names() -> str:
    from graphrec.data.manifests import manifests

    return ", ".join(manifests())


_NAME_HELP = "a dataset: one of the manifests' names (graphrec datasets list), or a YAML file with a dataset: section"


#: graphrec recommend / explain --live
LIVE_HELP = ("answer as 'graphrec serve' does now: with what the service recorded since training "
             "(RUN_DIR/serving/events.log)")


def build_parser() -> argparse.ArgumentParser:
    from graphrec import __version__

    parser = argparse.ArgumentParser(prog="graphrec", description="Graph-based recommendation with GNNs and text features.",
                                     formatter_class=_Help)
    parser.add_argument("--version", action="version", version=f"graphrec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    ds = sub.add_parser("datasets", help="list, download and describe public datasets", formatter_class=_Help)
    ds_sub = ds.add_subparsers(dest="action", required=True)
    ds_sub.add_parser("list", help="the datasets graphrec can load", formatter_class=_Help)
    dl = ds_sub.add_parser("download", help="download a dataset's official archive (checksum verified)", formatter_class=_Help)
    dl.add_argument("name")
    dl.add_argument("--data-dir", default=None, help="where to put the archive (default: the cache)")
    info = ds_sub.add_parser("info", help="counts, density, quantiles and rating histogram", formatter_class=_Help)
    info.add_argument("name", help=f"{_NAME_HELP}; known: {_dataset_names()}")
    _add_data_dir(info)
    info.add_argument("--json", action="store_true", help="print one JSON object")

    sp = sub.add_parser("split", help="split a dataset and export the parts as TSV", formatter_class=_Help)
    sp.add_argument("name", help=_NAME_HELP)
    _add_data_dir(sp)
    sp.add_argument("--method", default="random", choices=["random", "temporal", "user-temporal", "leave-one-out", "fixed", "cold-items"],
                    help="how to split")
    sp.add_argument("--ratios", default="0.8,0.1,0.1", help="train,valid,test ratios (default 0.8,0.1,0.1)")
    sp.add_argument("--seed", type=int, default=2020, help="seed of the random methods")
    sp.add_argument("--shuffle", default="grouped", choices=["grouped", "global"],
                    help="each user's order for --method random and cold-items: grouped (shuffled within each "
                         "user: local memory access) or global (the figures recorded before 2026-12-07)")
    sp.add_argument("--fixed", default=None, help="official split name for --method fixed (ML-100K: u1..u5, ua, ub)")
    sp.add_argument("--implicit", type=float, default=None, metavar="THRESHOLD",
                    help="keep interactions rated at least THRESHOLD, as implicit feedback")
    sp.add_argument("--k-core", type=int, default=None, help="keep the k-core before splitting")
    sp.add_argument("--out", required=True, help="folder for train.tsv, valid.tsv, test.tsv")
    gr = sub.add_parser("graph", help="build the heterogeneous graph", formatter_class=_Help)
    gr_sub = gr.add_subparsers(dest="action", required=True)
    gb = gr_sub.add_parser("build", help="build the graph of a split's train part and print its size", formatter_class=_Help)
    gb.add_argument("name", help=_NAME_HELP)
    _add_data_dir(gb)
    gb.add_argument("--method", default="random", help="split whose train part becomes the graph (default random)")
    gb.add_argument("--seed", type=int, default=2020, help="seed of the split")
    gb.add_argument("--item-attributes", default=None, help="comma-separated: genre,tag,year,decade (default: what the dataset has)")
    gb.add_argument("--user-attributes", default=None, help="comma-separated: occupation,age,gender (default: what the dataset has)")
    gb.add_argument("--user-features", default="none", choices=["none", "attributes", "text_mean"])
    gb.add_argument("--no-text", action="store_true", help="no text features for items")
    _add_text_options(gb)

    rn = sub.add_parser("run", help="run an experiment: load, split, graph, text, train, evaluate",
                        epilog=_MODELS_EPILOG, formatter_class=_RunHelp)
    rn.add_argument("config", nargs="?", default=None,
                    help="experiment YAML (see experiments/*.yaml); with --resume, the run's own config.yaml by default")
    rn.add_argument("--out", default=None, help="run directory (default <output>/<name>-<time>)")
    rn.add_argument("--resume", default=None, metavar="RUN_DIR",
                    help="continue the interrupted run in RUN_DIR with its own configuration (--set train.epochs=N may raise its epochs)")
    rn.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    _add_config_options(rn, "override a configuration value, e.g. --set train.epochs=5 (YAML syntax)")
    rn.add_argument("--quiet", action="store_true", help="no progress bars")
    rn.add_argument("--nproc", type=int, default=1, metavar="N",
                    help="data-parallel over N processes on this machine (gloo on CPU, NCCL with one GPU each); "
                         "several machines: torchrun --nnodes M --nproc-per-node N -m graphrec run CONFIG")

    tn = sub.add_parser("tune", help="search a model's hyperparameters on the validation part (Optuna TPE, pruned)",
                        formatter_class=_Help,
                        description="Each trial is one run of CONFIG with the trial's values, scored by its best "
                                    "validation train.metric. The study (study.db) is resumable: run the same "
                                    "command again to continue it, or with a larger --trials to extend it. "
                                    "Writes best.yaml, trials.csv and trials.png in the tune directory.")
    tn.add_argument("config", help="experiment YAML (see experiments/*.yaml)")
    tn.add_argument("--trials", type=int, required=True, help="total trials of the study (earlier calls' included)")
    tn.add_argument("--space", default=None, metavar="FILE",
                    help="YAML search space (model.reg: {low: 1e-6, high: 1e-2, log: true}, model.fanouts: [[5, 5], [10, 10]]); "
                         "default: the model's declared space (graphrec tune --show-space CONFIG)")
    tn.add_argument("--show-space", action="store_true", help="print the search space and exit")
    tn.add_argument("--out", default=None, help="tune directory (default <output>/tune/<name>)")
    _add_config_options(tn, "override a configuration value before tuning (YAML syntax)")
    tn.add_argument("--verbose", action="store_true", help="print every trial's per-epoch lines")

    rc = sub.add_parser("recommend", help="top-K items for a user from a finished run", formatter_class=_Help)
    rc.add_argument("run_dir", help="a run directory written by 'graphrec run'")
    rc.add_argument("--user", required=True, help="raw user id (as in the dataset)")
    rc.add_argument("--k", type=int, default=10, help="how many items")
    rc.add_argument("--include-seen", action="store_true", help="do not leave out the user's train/valid items")
    rc.add_argument("--explain", action="store_true", help="a sentence per item: why it was recommended")
    rc.add_argument("--live", action="store_true", help=LIVE_HELP)
    rc.add_argument("--data-dir", default=None,
                    help="only for a run written before bundles: where its dataset is (the bundle is written once)")

    ex = sub.add_parser("explain", help="why a run's model recommends an item to a user: subgraph and contributions", formatter_class=_Help)
    ex.add_argument("run_dir", help="a run directory written by 'graphrec run', of a model with a graph explanation (graphrec run --help lists them)")
    ex.add_argument("--user", required=True, help="raw user id (as in the dataset)")
    ex.add_argument("--item", default=None, help="raw item id (default: the user's top-1 recommendation)")
    ex.add_argument("--out", default=None, help="write the explanation: .png (drawing), .json or .html, by extension")
    ex.add_argument("--live", action="store_true", help=LIVE_HELP)
    ex.add_argument("--data-dir", default=None,
                    help="only for a run written before bundles: where its dataset is (the bundle is written once)")

    sv = sub.add_parser("serve", help="serve a finished run over HTTP: recommend, explain, search, learn from events",
                        formatter_class=_Help,
                        epilog="Writes (POST /events, POST /items) need 'Authorization: Bearer <token>' when "
                               "GRAPHREC_API_TOKEN is set. Accepted writes are logged in RUN_DIR/serving/events.log "
                               "(fsync'd before the response) and replayed on start; 'graphrec retrain RUN_DIR' "
                               "trains a new run with them.")
    sv.add_argument("run_dir", help="a run directory written by 'graphrec run'")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every interface)")
    sv.add_argument("--port", type=int, default=8000, help="TCP port")
    sv.add_argument("--workers", type=int, default=1, help="server processes (they share the event log)")
    sv.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    sv.add_argument("--device", default="cpu", help="where the model scores: cpu, cuda, cuda:N or auto")
    sv.add_argument("--index", default="exact", choices=["exact", "faiss"],
                    help="top-k retrieval: exact (a matrix product; up to ~1M items) or faiss (approximate HNSW, "
                         "embedding models, pip install 'graphrec[faiss]')")
    sv.add_argument("--no-text", action="store_true",
                    help="do not load the text encoder (no /search, no POST /items; starts faster)")
    sv.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"],
                    help="uvicorn's log level")

    rt = sub.add_parser("retrain", help="train a new run on a served run's data plus the events it received",
                        formatter_class=_Help)
    rt.add_argument("run_dir", help="a served run directory (with serving/events.log)")
    rt.add_argument("--out", default=None, help="the new run directory (default <output>/<name>-retrained-<time>)")
    rt.add_argument("--overwrite", action="store_true", help="replace the run in --out")
    _add_config_options(rt, "override a configuration value (YAML syntax)")
    rt.add_argument("--quiet", action="store_true", help="no progress bars")

    em = sub.add_parser("embed", help="encode a dataset's item texts (cached) and print throughput", formatter_class=_Help)
    em.add_argument("name", help=_NAME_HELP)
    _add_data_dir(em)
    _add_text_options(em)
    return parser


def _add_config_options(p: argparse.ArgumentParser, set_help: str) -> None:
    """--threads, --set and --data-dir: what the commands that run an experiment file (run, tune, retrain) share."""
    p.add_argument("--threads", default=None, help="torch CPU threads: auto (default: the idle cores) or a number")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    p.add_argument("--data-dir", default=None,
                   help="folder holding the dataset's files (sets dataset.data_dir; default $GRAPHREC_DATA_DIR)")


def _add_text_options(p: argparse.ArgumentParser) -> None:
    from graphrec.text.templates import DEFAULT_ITEM_TEMPLATE

    p.add_argument("--model", default="default", help="text model: 'default' (all-MiniLM-L6-v2), a HF name or a folder")
    p.add_argument("--template", default=DEFAULT_ITEM_TEMPLATE, help=f"item text template (default {DEFAULT_ITEM_TEMPLATE!r})")
    p.add_argument("--batch-size", type=int, default=64, help="texts encoded at once")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, ...")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")


def _encoder(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from graphrec.text import TextEncoder

    return TextEncoder(args.model, batch_size=args.batch_size, device=args.device,
                       cache_dir=None if args.no_cache else "default",
                       progress=sys.stderr.isatty())  # redirected to a file, a bar is only noise


def _source(name: str, data_dir: str | None):  # type: ignore[no-untyped-def]
    """A dataset by name (MovieLens release or manifest), or the ``dataset:`` section of a YAML file."""
    import yaml

    from graphrec.data.sources import source_config
    from graphrec.errors import ConfigError

    if name.endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise GraphrecError(f"{path}: file not found")
        raw = yaml.safe_load(path.read_text()) or {}
        section = raw.get("dataset", raw) if isinstance(raw, dict) else raw
        try:
            config = source_config(section, "dataset")
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    else:
        config = source_config({"name": name})
    return config.with_data_dir(data_dir)


def _load(name: str, data_dir: str | None, no_download: bool):  # type: ignore[no-untyped-def]
    """The dataset as its files hold it (ratings kept; ``split`` applies its own --implicit / --k-core)."""
    return _source(name, data_dir).read(download=not no_download)


def cmd_datasets(args: argparse.Namespace) -> int:
    from graphrec.data import dataset_info
    from graphrec.data.manifests import manifest_dirs, manifests
    from graphrec.data.movielens import fetch
    from graphrec.data.sources import SOURCES

    if args.action == "list":
        for m in manifests().values():
            print(f"{m.name:<16} {m.format:<10} {m.description}")
        print(f"(manifests from {', '.join(str(d) for d in manifest_dirs() if d.is_dir())}; your own files: "
              f"dataset.format {', '.join(SOURCES)})")
        return 0
    if args.action == "download":
        path = fetch(args.name, args.data_dir)
        print(f"{args.name}: {path}")
        return 0
    dataset = _load(args.name, args.data_dir, args.no_download)
    info = dataset_info(dataset)
    if args.json:
        print(json.dumps(info))
        return 0
    print(format_info(info, source=str(dataset.source) if dataset.source else None))
    from graphrec.data.manifests import get_manifest, verify_files

    manifest = get_manifest(dataset.name)
    if manifest is not None and manifest.format == "lightgcn" and dataset.source is not None:
        checks = verify_files(manifest, Path(dataset.source))
        print("  files against datasets/" + f"{manifest.name}.yaml: "
              + ", ".join(f"{f} {state}" for f, state in checks.items()))
    return 0


def format_info(info: dict[str, Any], source: str | None = None) -> str:
    lines = [f"{info['name']}" + (f"  ({source})" if source else "")]
    lines.append(f"  users         {info['users']:>12,}")
    lines.append(f"  items         {info['items']:>12,}")
    lines.append(f"  interactions  {info['interactions']:>12,}"
                 + (f"   (repeats of a (user, item) pair left out: {info['repeats_dropped']:,}; see dataset.duplicates)"
                    if info.get("repeats_dropped") else ""))
    lines.append(f"  density       {info['density']:>12.4%}")
    if "tags" in info:
        lines.append(f"  tags          {info['tags']:>12,}")
    for key, label in (("per_user_quantiles", "per user"), ("per_item_quantiles", "per item")):
        q = "  ".join(f"q{k}={v:g}" for k, v in info[key].items())
        lines.append(f"  interactions {label}: {q}")
    total = sum(info["rating_histogram"].values())
    lines.append("  ratings:")
    for value, count in info["rating_histogram"].items():
        lines.append(f"    {value:>5}  {count:>10,}  {count / total:6.1%}")
    if "fixed_splits" in info:
        lines.append(f"  fixed splits: {', '.join(info['fixed_splits'])}")
    return "\n".join(lines)


def cmd_split(args: argparse.Namespace) -> int:
    from graphrec.data import k_core, make_split, to_implicit

    try:
        ratios = [float(x) for x in args.ratios.split(",")]
    except ValueError:
        raise GraphrecError(f"--ratios: expected three comma-separated numbers, found {args.ratios!r}") from None
    dataset = _load(args.name, args.data_dir, args.no_download)
    if args.implicit is not None:
        dataset = to_implicit(dataset, args.implicit)
    if args.k_core is not None:
        dataset = k_core(dataset, args.k_core)
    split = make_split(dataset, args.method, ratios=ratios, seed=args.seed, fixed=args.fixed, shuffle=args.shuffle)
    paths = split.export_tsv(args.out)
    print(format_split(split))
    for _name, path in paths.items():
        print(f"  wrote {path}")
    return 0


def format_split(split) -> str:  # type: ignore[no-untyped-def]
    st = split.stats()
    lines = [f"{split.dataset.name}: {split.method}"]
    for part, size in st.sizes.items():
        extra = ""
        if part in st.cold_users:
            extra = (f"   cold start: {st.cold_users[part]} users, {st.cold_items[part]} items, "
                     f"{st.cold_interactions[part]} interactions")
        lines.append(f"  {part:<6}{size:>10,}{extra}")
    return "\n".join(lines)


def _available_attributes(dataset, wanted: str | None, allowed: tuple[str, ...], owner: str) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    if wanted is not None:
        return tuple(a for a in wanted.split(",") if a)
    from graphrec.graph import ATTRIBUTE_EDGES

    if owner == "item" and dataset.attributes is not None:  # an item table's attribute columns (category, brand)
        return dataset.default_item_attributes
    table = dataset.item_info if owner == "item" else dataset.user_info
    return tuple(a for a in allowed if ATTRIBUTE_EDGES[a][2] in table.columns and not (a == "tag" and dataset.tag_assignments is None))


def cmd_graph(args: argparse.Namespace) -> int:
    import time

    from graphrec.data import make_split
    from graphrec.graph import GraphBuilder, GraphConfig

    dataset = _load(args.name, args.data_dir, args.no_download)
    split = make_split(dataset, args.method, seed=args.seed)
    cfg = GraphConfig(
        item_attributes=_available_attributes(dataset, args.item_attributes, ("genre", "tag", "decade"), "item"),
        user_attributes=_available_attributes(dataset, args.user_attributes, ("occupation", "age", "gender"), "user"),
        user_features=args.user_features,
    )
    start = time.perf_counter()
    data = GraphBuilder(cfg, None if args.no_text else _encoder(args), args.template).build(dataset, split=split)
    print(f"{dataset.name}: graph of the train part of split '{split.method}' ({time.perf_counter() - start:.1f} s)")
    print("  nodes:")
    for t in data.node_types:
        x = data[t].get("x")
        shape = f"x {tuple(x.shape)}" if x is not None else "x none (learned ids)"
        print(f"    {t:<12}{data[t].num_nodes:>10,}   {shape}")
    print("  edges:")
    for et in data.edge_types:
        attrs = ", ".join(k for k in ("rating", "weight", "time") if k in data[et])
        print(f"    {'-'.join(et):<40}{data[et].num_edges:>10,}   {attrs}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from graphrec.text import item_texts

    dataset = _load(args.name, args.data_dir, args.no_download)
    texts = item_texts(dataset, args.template)
    enc = _encoder(args)
    vectors = enc.encode(texts)
    st = enc.last_stats
    rate = st["encoded"] / st["seconds"] if st["encoded"] and st["seconds"] > 0 else float("nan")
    print(f"{dataset.name}: {len(texts):,} item texts -> {tuple(vectors.shape)} with {enc.model_name} on {enc.device}")
    print(f"  cache hits {int(st['hits']):,}, encoded {int(st['encoded']):,} in {st['seconds']:.2f} s"
          + (f" ({rate:,.0f} texts/s)" if st["encoded"] else ""))
    print(f"  example: {texts[0]!r}")
    return 0


def _overrides(args: argparse.Namespace, quiet: bool) -> dict[str, Any]:
    """The --set, --threads and quiet options as dotted config overrides."""
    import yaml

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise GraphrecError(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = yaml.safe_load(value)
    if quiet:
        overrides["train.progress"] = False
    if args.threads is not None:
        overrides["train.threads"] = args.threads if args.threads == "auto" else _int_option("--threads", args.threads)
    return overrides


def _with_data_dir(config, data_dir: str | None):  # type: ignore[no-untyped-def]
    if data_dir is None:
        return config
    from dataclasses import replace

    return replace(config, dataset=config.dataset.with_data_dir(data_dir))


def cmd_run(args: argparse.Namespace) -> int:
    from graphrec.run import load_config, run_experiment

    overrides = _overrides(args, args.quiet)
    if args.resume is not None:
        if args.out is not None and Path(args.out) != Path(args.resume):
            raise GraphrecError("--out and --resume name different directories; --resume RUN_DIR continues RUN_DIR")
        if args.overwrite:
            raise GraphrecError("--resume continues a run and --overwrite replaces it: pass one of them")
        source = args.config or Path(args.resume) / "config.yaml"
        if not Path(args.resume).is_dir():
            raise GraphrecError(f"--resume {args.resume}: no such run directory")
    elif args.config is None:
        raise GraphrecError("graphrec run needs an experiment file (or --resume RUN_DIR)")
    else:
        source = args.config
    # every configuration error surfaces here, before any work; a run's own config.yaml may predate the key checks
    config = _with_data_dir(load_config(source, overrides, strict=args.config is not None), args.data_dir)
    run_dir = args.resume or args.out
    if args.nproc != 1:
        return _launch_run(args, config, run_dir)
    from graphrec import distributed

    out, metrics = run_experiment(config, run_dir, resume=args.resume is not None, overwrite=args.overwrite)
    distributed.destroy()  # every rank is done: none waits on rank 0's printing (a closed pipe fails it alone)
    if distributed.current_world().is_main:
        print(format_metrics(metrics))
        print(f"run directory: {out}")
    return 0


def _launch_run(args: argparse.Namespace, config: Any, run_dir: str | None) -> int:
    """``graphrec run --nproc N``: the same command as N ranks (:func:`graphrec.distributed.launch`)."""
    from graphrec.distributed import current_world, launch
    from graphrec.run.pipeline import default_run_dir, refuse_several_processes

    if args.nproc < 1:
        raise GraphrecError(f"--nproc must be >= 1, got {args.nproc}")
    if current_world().distributed:
        raise GraphrecError("--nproc starts its own ranks: under torchrun (WORLD_SIZE is set), leave it out")
    refuse_several_processes(config, f"--nproc {args.nproc}")  # before any rank starts
    argv, skip = [], False
    for token in args.argv:
        if skip:
            skip = False
        elif token == "--nproc":
            skip = True
        elif not token.startswith("--nproc="):
            argv.append(token)
    if run_dir is None:  # the ranks must agree on the directory: chosen here
        run_dir = str(default_run_dir(config))
        argv += ["--out", run_dir]
    # each rank runs the same command as one process of the world (--nproc 1 last: argparse keeps the last value,
    # whatever abbreviation of --nproc the user typed)
    code = launch([sys.executable, "-m", "graphrec", *argv, "--nproc", "1"], args.nproc)
    if code != 0 and (Path(run_dir) / "last.pt").is_file():
        print(f"the run can continue from its last checkpoint: graphrec run --resume {run_dir} --nproc {args.nproc}",
              file=sys.stderr)
    return code


def cmd_tune(args: argparse.Namespace) -> int:
    from graphrec.distributed import current_world
    from graphrec.run import load_config

    if current_world().distributed:
        raise GraphrecError("graphrec tune runs its trials in one process: start it without torchrun")
    from graphrec.run.tuning import check_space, default_space, read_space, tune

    config = _with_data_dir(load_config(args.config, _overrides(args, quiet=True)), args.data_dir)
    space = read_space(args.space) if args.space is not None else default_space(config)
    if args.show_space:
        check_space(config, space)
        for key, rng in space.items():
            print(f"{key}: {rng}")
        return 0
    result = tune(config, args.trials, out=args.out, space=space, run_log=print if args.verbose else None)
    best = result.best
    print(f"best: trial {best.number}, valid {result.metric} {best.value:.4f}, "
          + ", ".join(f"{k}={v}" for k, v in best.params.items()))
    print(f"best configuration: {result.directory / 'best.yaml'} (graphrec run {result.directory / 'best.yaml'})")
    print(f"trials: {result.directory / 'trials.csv'}, {result.directory / 'trials.png'}")
    return 0


def _int_option(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise GraphrecError(f"{name}: expected an integer, found {value!r}") from None


def format_metrics(metrics: dict[str, Any]) -> str:
    test = metrics["test"]
    lines = [f"test metrics (best epoch {metrics['best_epoch']} of {metrics['epochs_run']}, {metrics['seconds']} s):"]
    for key, value in test.items():
        lines.append(f"  {key:<28}{value:>10.4f}" if value is not None else f"  {key:<28}{'n/a':>10}")
    return "\n".join(lines)


def _raw_id(ids: Any, value: str, what: str, dataset: str) -> object:
    """A command-line id as the dataset stores it (ints where its ids are ints)."""
    if ids.dtype.kind in "iu":
        try:
            return int(value)
        except ValueError:
            raise GraphrecError(f"--{what} {value!r}: {dataset} {what} ids are integers") from None
    return value


def _ensure_bundle(run: Path, data_dir: str | None) -> None:
    """A run written before bundles gets one, once, from its data."""
    if not (run / "bundle.json").is_file() and (run / "best.pt").is_file() and (run / "config.yaml").is_file():
        from graphrec.run.pipeline import export_bundle

        print(f"{run}: no bundle yet (a run of an earlier graphrec); writing it once from the run's data",
              file=sys.stderr)
        export_bundle(run, data_dir=data_dir)


def _deployed(run_dir: str, data_dir: str | None = None):  # type: ignore[no-untyped-def]
    """The run's bundle (no dataset needed); a run written before bundles gets one first, from its data."""
    import graphrec

    _ensure_bundle(Path(run_dir), data_dir)
    return graphrec.load(run_dir)


def _service_log(run_dir: str) -> Path | None:
    """The service's log of a run where it holds writes (``graphrec serve`` answers with them), else None."""
    log = Path(run_dir) / "serving" / "events.log"
    return log if log.is_file() and log.stat().st_size > 0 else None


def _live(run_dir: str, data_dir: str | None):  # type: ignore[no-untyped-def]
    """The run as ``graphrec serve`` answers now: its bundle with the service's log replayed; None where the
    service has recorded nothing (then the trained run's answers are the service's). Read-only: no log is
    created, and the text encoder is loaded only where the log holds items added from their text."""
    log = _service_log(run_dir)
    if log is None:
        return None
    _ensure_bundle(Path(run_dir), data_dir)
    from graphrec.serve.live import TextUnavailable, open_live

    try:
        try:
            return open_live(run_dir, text=False)
        except TextUnavailable:
            return open_live(run_dir)
    except PermissionError as exc:
        raise GraphrecError(f"{log}: {exc.strerror}; --live opens the service's log as the service does") from None


def _note_trained(run_dir: str) -> None:
    """Answering from the trained run, say on stderr when the service has recorded writes since."""
    log = _service_log(run_dir)
    if log is not None:
        print(f"note: the service has recorded writes since training ({log}); these are the trained run's "
              "answers, --live gives the service's", file=sys.stderr)


def _why_live(live, user: object, item: object) -> str:  # type: ignore[no-untyped-def]
    from graphrec.serve.live import NotExplainable

    try:
        return live.explain(user, item).text()
    except NotExplainable as exc:
        return f"(no explanation: {exc})"


def cmd_recommend(args: argparse.Namespace) -> int:
    if args.live and args.include_seen:
        raise GraphrecError("--include-seen with --live: the service always leaves out what a user interacted with")
    live = _live(args.run_dir, args.data_dir) if args.live else None
    if live is None:
        _note_trained(args.run_dir)
    if live is not None:
        listed = [(r.item, r.score, r.title) for r in live.recommend(args.user, k=args.k)]
        # an item or a user added through the service has no explanation: said in its place
        why = [_why_live(live, args.user, item) for item, _, _ in listed] if args.explain else None
        user: object = args.user
        kind = f"{type(live.deployed.model).__name__}, live"
    else:
        model = _deployed(args.run_dir, args.data_dir)
        user = _raw_id(model.users.ids, args.user, "user", args.run_dir)
        items, scores = model.recommend(user, k=args.k, exclude_seen=not args.include_seen)
        listed = [(item, score, model.item_label(item))
                  for item, score in zip(items.tolist(), scores.tolist(), strict=True) if item is not None]
        # explained before anything is printed: a model without explanations is refused with an empty output
        why = [model.explain(user, item).text() for item, _, _ in listed] if args.explain else None
        kind = type(model.model).__name__
    print(f"top {args.k} for user {user} ({kind}, {args.run_dir}):")
    for rank, (item, score, title) in enumerate(listed, start=1):
        print(f"{rank:>3}. item {item!s:<8}{score:>9.4f}  {title}")
        if why is not None:
            print(f"       {why[rank - 1]}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from graphrec.explain.explanation import FORMATS

    if args.out is not None and Path(args.out).suffix.lower() not in FORMATS:  # before loading the run
        raise GraphrecError(f"--out {args.out}: unknown explanation format; use .png, .json or .html")
    live = _live(args.run_dir, args.data_dir) if args.live else None
    if live is None:
        _note_trained(args.run_dir)
    if live is not None:
        if args.item is None:  # the user's first recommendation the trained model can explain (not one added since):
            added = live.items_count - live.num_items  # among the first 1 + (items added since) of the list
            trained = [r.item for r in live.recommend(args.user, k=min(live.items_count, 1 + added))
                       if live.item_index(r.item) < live.num_items]
            item = trained[0] if trained else None
        ex = live.explain(args.user, item if args.item is None else args.item)
    else:
        model = _deployed(args.run_dir, args.data_dir)
        user = _raw_id(model.users.ids, args.user, "user", args.run_dir)
        if args.item is None:
            item = model.recommend(user, k=1)[0][0]
        else:
            item = _raw_id(model.items.ids, args.item, "item", args.run_dir)
        ex = model.explain(user, item)
    written = ex.save(args.out) if args.out is not None else None  # before printing: a closed pipe loses no file
    print(ex.text())
    where = "already interacted with" if ex.seen else f"rank {ex.rank} among the user's unseen items"
    print(f"{ex.model} ({ex.method}): score {ex.score:.4f}, {where}")
    if ex.reference is not None:
        print(f"relative to {ex.reference_kind} ({ex.reference:.4f}): the parts below split the difference "
              f"{ex.difference:+.4f}")
    if ex.via:
        sage = ex.method == "integrated-gradients"
        print("by the first step into the user or the item:" if sage else "through the user's interactions:")
        for c in ex.via:
            print(f"  {c.value:>+9.4f}  {c.label}")
        print({"exact": "by node:", "item-weights": "by history item:"}.get(ex.method, "by edge:"))
    for c in (*ex.contributions, *ex.remainder):
        print(f"  {c.value:>+9.4f}  {c.label}")
    if written is not None:
        print(f"wrote {written}")
    return 0


#: uvicorn settings of graphrec serve: an idle keep-alive connection stays open 75 s (uvicorn's default, 5 s,
#: races clients that pool connections); no access log (Prometheus counts requests) and no proxy headers (it
#: binds to 127.0.0.1 by default; a reverse proxy in front sets its own)
UVICORN: dict[str, Any] = {"timeout_keep_alive": 75, "access_log": False, "proxy_headers": False}


def _check_listen(host: str, port: int) -> None:
    """Raise a GraphrecError naming ``host:port`` unless a server could listen there now (as uvicorn binds:
    SO_REUSEADDR, so a port in TIME_WAIT passes)."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
    except OSError as exc:
        raise GraphrecError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc}); "
                            "pick another port (or stop what holds it)") from None


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from graphrec.run.bundle import load

    if args.workers < 1 or args.threads < 1:
        raise GraphrecError(f"--workers and --threads must be >= 1, got {args.workers} and {args.threads}")
    if not 0 <= args.port <= 65535:
        raise GraphrecError(f"--port must be in [0, 65535], got {args.port}")
    _check_listen(args.host, args.port)  # before loading anything or saying "serving"
    import torch

    from graphrec.train.trainer import check_device

    device = check_device(args.device, "--device")
    torch.set_num_threads(args.threads)
    token = "on" if os.environ.get("GRAPHREC_API_TOKEN") else "off (GRAPHREC_API_TOKEN is not set)"
    if args.workers == 1:
        from graphrec.serve.app import create_app
        from graphrec.serve.live import open_live

        live = open_live(args.run_dir, text=not args.no_text, index=args.index, device=str(device))
        app = create_app(live)
        print(f"serving {live.deployed.name} from {args.run_dir} ({live.users_count:,} users, {live.items_count:,} "
              f"items, {live.events:,} logged events replayed) on http://{args.host}:{args.port}/  (API docs: /docs; "
              f"write token {token})", flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, **UVICORN)
        return 0
    from graphrec.serve.workers import serve_workers

    deployed = load(args.run_dir)  # the bundle's errors, once, before the workers start
    print(f"serving {deployed.name} from {args.run_dir} with {args.workers} workers on "
          f"http://{args.host}:{args.port}/  (API docs: /docs; write token {token})", flush=True)
    os.environ["GRAPHREC_SERVE_INDEX"] = args.index
    os.environ["GRAPHREC_SERVE_DEVICE"] = str(device)
    return serve_workers(args.run_dir, args.host, args.port, args.workers, args.threads, not args.no_text,
                         args.log_level, UVICORN)


def cmd_retrain(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from graphrec.data.wal import EventLog
    from graphrec.run import load_config, run_experiment

    run = Path(args.run_dir)
    log_path = run / "serving" / "events.log"
    if not (run / "config.yaml").is_file():
        raise GraphrecError(f"{run}: no config.yaml there; not a graphrec run directory")
    if not log_path.is_file():
        raise GraphrecError(f"{log_path}: no serving log; the run has received no events (graphrec serve writes it)")
    with EventLog(log_path) as wal:
        records = wal.replay()
    if not records:
        raise GraphrecError(f"{log_path}: the log is empty; there is nothing new to train on")
    config = _with_data_dir(load_config(run / "config.yaml", _overrides(args, args.quiet), strict=False), args.data_dir)
    config = replace(config, name=f"{config.name}-retrained",
                     dataset=replace(config.dataset, added=str(log_path.resolve())))
    out, metrics = run_experiment(config, args.out, overwrite=args.overwrite)
    print(format_metrics(metrics))
    print(f"run directory: {out} (the data of {run} plus {len(records)} log records from {log_path})")
    return 0


COMMANDS = {"datasets": cmd_datasets, "split": cmd_split, "graph": cmd_graph, "embed": cmd_embed, "run": cmd_run,
            "tune": cmd_tune, "recommend": cmd_recommend, "explain": cmd_explain, "serve": cmd_serve,
            "retrain": cmd_retrain}


def _rank() -> int:
    import os

    return int(os.environ.get("RANK", "0") or 0)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    try:
        return COMMANDS[args.command](args)
    except GraphrecError as exc:
        rank = _rank()
        if rank == 0:
            print(f"error: {exc}", file=sys.stderr)
        elif not getattr(exc, "collective", False):  # rank 0's own errors are said by rank 0
            print(f"[rank {rank}] error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        import torch.distributed as dist

        lost = dist.is_available() and dist.is_initialized() and (
            isinstance(exc, dist.DistError) or any(w in str(exc) for w in ("gloo", "NCCL", "Connection", "peer")))
        if not lost:
            raise
        # a collective failed: another rank died or stopped answering
        print(f"error: rank {_rank()} lost contact with the other ranks ({str(exc).splitlines()[0]}); "
              "a run resumes from its last checkpoint with graphrec run --resume RUN_DIR", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output stopped (graphrec recommend ... | head): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 141  # 128 + SIGPIPE, as a tool killed by the signal reports


if __name__ == "__main__":
    sys.exit(main())
