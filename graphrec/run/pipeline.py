"""One experiment end to end: load → split → graph → text features → train → evaluate."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch_geometric.data import HeteroData

from graphrec import distributed
from graphrec.data import Dataset, Split, make_split
from graphrec.errors import ConfigError, GraphrecError
from graphrec.eval import Evaluator
from graphrec.fs import atomic_write_bytes, atomic_write_json, atomic_write_text
from graphrec.graph import GraphBuilder, interaction_matrix, normalized_adjacency
from graphrec.graph.builder import item_attributes_of
from graphrec.matrices import multihot, to_csr
from graphrec.nn import ScoringModel
from graphrec.nn.spec import ModelInputs
from graphrec.run.bundle import write_bundle
from graphrec.run.config import ExperimentConfig, dump_config
from graphrec.runtime import set_threads
from graphrec.text import TextEncoder, item_texts
from graphrec.train import Trainer, load_checkpoint, save_checkpoint, seed_everything


@dataclass
class Prepared:
    """Everything a model is built and evaluated on."""

    dataset: Dataset
    split: Split
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    adj: torch.Tensor
    item_text: torch.Tensor | None
    graph: HeteroData
    #: train + valid: what testing leaves out of a user's list
    seen: sp.csr_matrix
    #: the item attribute node types ``adj`` holds after the items, in order
    attributes: tuple[str, ...] = ()

    @property
    def interacted(self) -> sp.csr_matrix:
        """Every interaction of the log (train + valid + test, 0/1): what a deployed model leaves out of a
        user's list (the test part was held out to measure the model, but the user has those items)."""
        every = (self.seen + self.test).tocsr()
        every.data[:] = 1.0
        return every


def prepare(config: ExperimentConfig, with_text: bool | None = None) -> Prepared:
    """Load, filter and split the dataset, build the train graph and (if needed) text features."""
    c = config
    ds = c.dataset.load(download=True)
    split = make_split(ds, c.split.method, ratios=c.split.ratios, seed=c.split.seed, fixed=c.split.fixed,
                       cold_fraction=c.split.cold_fraction, shuffle=c.split.shuffle)
    needs = c.model.needs()
    need_text = needs.item_text if with_text is None else with_text
    encoder = None
    if need_text:
        encoder = TextEncoder(c.text.model, batch_size=c.text.batch_size, device=c.text.device, max_length=c.text.max_length)
    # Texts from the train view: no tag that a user applied to a held-out pair (or after a temporal cut-off).
    item_text = encoder.encode(item_texts(split.train_view(), c.text.template)) if encoder is not None else None
    if needs.graph:
        graph = GraphBuilder(c.graph, encoder, c.text.template).build(ds, split=split, item_features=item_text)
    else:
        # Models of the user-item graph train on its interactions only; the item attribute nodes are
        # kept (as plain ids, no text) because explanations show the genres an item shares.
        graph = GraphBuilder(replace(c.graph, user_attributes=(), user_features="none", attribute_features="id",
                                     genre_multihot=False)).build(ds, split=split)
    train = interaction_matrix(graph)

    def part(name: str) -> sp.csr_matrix:
        inter = split.part(name)
        return to_csr(inter.user, inter.item, *train.shape)

    attributes = item_attributes_of(c.graph, ds) if needs.attribute_nodes else ()
    if needs.attribute_nodes and not attributes:
        raise ConfigError(f"model.attribute_nodes: {ds.name} items have no attributes; set graph.item_attributes")
    adj = normalized_adjacency(graph, attributes=attributes)
    valid = part("valid")
    return Prepared(ds, split, train, valid, part("test"), adj, item_text, graph, seen=(train + valid).tocsr(),
                    attributes=attributes)


def model_inputs(config: ExperimentConfig, data: Prepared) -> ModelInputs:
    """The plain inputs the registry builds ``config.model`` from."""
    return ModelInputs(data.dataset.num_users, data.dataset.num_items, train=data.train, adjacency=data.adj,
                       extra_nodes={t: int(data.graph[t].num_nodes) for t in data.attributes},
                       item_text=data.item_text, graph=data.graph, seed=config.train.seed)


def build_model(config: ExperimentConfig, data: Prepared) -> ScoringModel:
    """The model of ``config.model`` (looked up in the registry), with fresh weights seeded by ``train.seed``."""
    seed_everything(config.train.seed)
    return config.spec.create(config.model, model_inputs(config, data))


def evaluators(config: ExperimentConfig, data: Prepared) -> tuple[Evaluator, Evaluator]:
    """Validation (history: train) and test (history: train + valid) evaluators, with beyond-accuracy inputs."""
    pop = np.asarray(data.train.sum(axis=0)).ravel()
    activity = np.asarray(data.train.sum(axis=1)).ravel()
    # Diversity over the same features for every model (genres where the dataset has them), so rows compare.
    features = multihot(data.dataset.item_info["genres"]) if "genres" in data.dataset.item_info else data.item_text
    kw: dict[str, Any] = {"ks": config.eval.ks, "batch_size": config.eval.batch_size, "item_popularity": pop,
                          "item_features": features, "user_activity": activity}
    return Evaluator(data.valid, data.train, **kw), Evaluator(data.test, data.seen, **kw)


#: the files ``run_experiment`` writes into a run directory (``--overwrite`` removes these, nothing else)
#: the run's test metrics per user (``users`` and one array per metric), for paired significance tests
PER_USER_FILE = "test_per_user.npz"
RUN_FILES = ("config.yaml", "metrics.json", "history.json", "history.csv", "best.pt", "last.pt", "curve.png",
             "bundle.json", "weights.safetensors", "arrays.safetensors", PER_USER_FILE)
#: settings of how a run executes, not of what it computes: they may differ on resume
RUNTIME_KEYS = ("train.progress", "train.threads", "train.log", "dataset.data_dir")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_resumable(saved: ExperimentConfig, config: ExperimentConfig, run_dir: Path) -> None:
    """Raise ConfigError unless ``config`` continues ``saved``: equal but for a raised ``train.epochs``."""
    a, b = _flat(anchored(saved).to_dict()), _flat(anchored(config).to_dict())
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k) and k not in RUNTIME_KEYS)
    if "train.epochs" in differ and config.train.epochs >= saved.train.epochs:
        differ.remove("train.epochs")
    if "dataset.name" in differ and a.get("dataset.format") in ("csv", "parquet") and \
            a.get("dataset.path") == b.get("dataset.path"):
        differ.remove("dataset.name")  # your own log's name only labels it (before 2026-12-07 a missing one read ml-100k)
    if differ:
        detail = ", ".join(f"{k}: {a.get(k, '(unset)')!r} -> {b.get(k, '(unset)')!r}" for k in differ)
        raise ConfigError(f"--resume {run_dir}: the configuration differs from the run's own config.yaml in {detail}; "
                          "a run continues only with its own configuration (train.epochs may be raised)")


def anchored(config: ExperimentConfig) -> ExperimentConfig:
    """``config`` with its dataset's relative paths that exist from here made absolute (what a run directory's
    ``config.yaml`` records: :meth:`~graphrec.data.sources.SourceConfig.anchored`)."""
    return replace(config, dataset=config.dataset.anchored())


def default_run_dir(config: ExperimentConfig) -> Path:
    """``<output>/<name>-<UTC time>``: where a run goes without ``--out``."""
    return Path(config.output) / f"{config.name}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Check (and for ``overwrite``, clear) a run directory before any data loads."""
    if resume:
        if not run_dir.is_dir():
            raise GraphrecError(f"--resume {run_dir}: no such run directory")
        if not (run_dir / "config.yaml").is_file():
            raise GraphrecError(f"--resume {run_dir}: no config.yaml there; not a graphrec run directory")
        return
    present = [f for f in (*RUN_FILES, "tensorboard") if (run_dir / f).exists()]
    if present and not overwrite:
        raise GraphrecError(f"run directory {run_dir} already holds a run ({', '.join(present)}); pass --resume "
                            f"{run_dir} to continue it, or --overwrite to replace it")
    for f in present:
        if (run_dir / f).is_dir():
            import shutil

            shutil.rmtree(run_dir / f)  # the TensorBoard event files of the run replaced
        else:
            (run_dir / f).unlink()


def refuse_several_processes(config: ExperimentConfig, asked: str) -> None:
    """Refuse a multi-process run of a model fitted in closed form (it is fitted once, in one process).

    Args:
        asked: What asked for several processes, named first in the error (``"--nproc 2"``).

    Raises:
        ConfigError: ``config``'s model has no loss to train.
    """
    if not config.spec.model.trainable:
        raise ConfigError(f"{asked}: model {config.model.name!r} is fitted in closed form, once; a multi-process "
                          "run trains the BPR models: run it in one process")


def run_experiment(config: ExperimentConfig, run_dir: str | Path | None = None, resume: bool = False,
                   log: Any = print, overwrite: bool = False,
                   on_eval: Callable[[int, dict[str, float]], Any] | None = None,
                   test: bool = True) -> tuple[Path, dict[str, Any]]:
    """Run one experiment and write its run directory.

    The directory holds ``config.yaml`` (resolved), ``metrics.json``,
    ``test_per_user.npz`` (each test metric per user, for paired tests),
    ``history.json`` / ``history.csv``, ``best.pt``, ``curve.png`` and the
    deployable bundle (``bundle.json``, ``weights.safetensors``,
    ``arrays.safetensors``: :func:`graphrec.load` serves it without the data).

    Args:
        config: The experiment.
        run_dir: Where to write (default ``<output>/<name>-<time>``).
        resume: Continue the run in ``run_dir``: ``config`` must equal its
            ``config.yaml`` but for a raised ``train.epochs``.
        overwrite: Replace a finished or partial run in ``run_dir``
            (otherwise an existing run there is an error).
        on_eval: Passed to the :class:`~graphrec.train.Trainer`: called with
            ``(epoch, validation metrics)`` after each evaluation (a tuner
            reports and prunes there).
        test: Evaluate on the test part (``False``: a tuning trial, which
            must not look at it; ``metrics["test"]`` is None and no
            ``test_per_user.npz`` is written).

    Without a validation part (``split.method: fixed``), training runs the
    full ``train.epochs`` and keeps the last epoch; ``metrics["valid"]`` is
    None.

    In a multi-process run (every rank calls this; see
    :mod:`graphrec.distributed`), each rank prepares the same data, training
    and evaluation are sharded, and rank 0 alone writes the run directory
    (whose default name it chooses for all).

    Returns:
        ``(run_dir, metrics)`` where metrics has ``valid`` and ``test`` sections.

    Raises:
        GraphrecError: a run directory that exists without ``resume`` /
            ``overwrite``, or a resume of a missing or different run.
    """
    started = time.perf_counter()
    from graphrec.train.trainer import check_device

    asked = distributed.current_world()  # from the environment, before the rendezvous
    if asked.distributed:
        refuse_several_processes(config, f"{asked.size} processes")
    world = distributed.init(check_device(config.train.device, "train.device"))
    if not world.is_main:
        log = _silent
    # rank 0 names the default directory for all (their clocks may read different seconds)
    out = Path(distributed.broadcast(str(run_dir if run_dir is not None else default_run_dir(config)), world))

    def start() -> int | None:
        """Rank 0: check (or clear) the run directory, write config.yaml; the resumed run's epochs."""
        prepare_run_dir(out, resume, overwrite)
        if resume:
            from graphrec.run.config import load_config

            saved = load_config(out / "config.yaml", strict=False)
            check_resumable(saved, config, out)
            if config.train.epochs != saved.train.epochs:  # the raised budget is the run's own from now on
                atomic_write_text(out / "config.yaml", dump_config(anchored(config)))
            return saved.train.epochs
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.yaml", dump_config(anchored(config)))
        return None

    resumed_from = distributed.on_main(start, world)
    threads = set_threads(distributed.rank_threads(config.train.threads, world))
    data = prepare(config)
    st = data.split.stats()
    log(f"{config.name}: {data.dataset.name} {data.split.method}: train {st.sizes['train']:,}, "
        f"valid {st.sizes['valid']:,}, test {st.sizes['test']:,}")
    model = build_model(config, data)
    valid_ev, test_ev = evaluators(config, data)
    valid_ev.world = test_ev.world = world  # sharded over the ranks
    has_valid = data.valid.nnz > 0
    history: list[dict[str, float]] = []
    if model.trainable:
        trainer = Trainer(model, data.train, valid_ev if has_valid else None, config.train, out, log=log,
                          on_eval=on_eval)
        log(f"training {model!r} on {trainer.device} ({threads} threads"
            + (f", rank 0 of {world.size} ranks" if world.distributed else "") + ")")
        if not has_valid:
            log(f"no validation part in split {data.split.method!r}: training all {config.train.epochs} epochs, "
                "keeping the last")
        history = trainer.fit(resume=resume)
        trainer.load_best()
        model = trainer.model
    else:
        model.fit(data.train)
        save_checkpoint(out / "best.pt", {"model": model.state_dict(), "model_class": type(model).__name__,
                                          "hparams": model.hparams(), "epoch": 0})
    metric = f"valid_{config.train.metric}"
    best = max(range(len(history)), key=lambda i: history[i].get(metric, -math.inf)) + 1 if has_valid and history \
        else len(history)
    metrics = {
        "valid": valid_ev.evaluate(model) if has_valid else None,
        "test": test_ev.evaluate(model, beyond=True) if test else None,
        "best_epoch": best,
        "epochs_run": len(history),
        "seconds": round(time.perf_counter() - started, 1),
        "model": repr(model),
        "threads": threads,
        "world_size": world.size,
        "data_source": str(data.dataset.source) if data.dataset.source is not None else None,
    }
    if resumed_from is not None and resumed_from != config.train.epochs:
        metrics["resumed_with"] = {"train.epochs": config.train.epochs, "config.yaml": resumed_from}  # as it was

    def finish() -> None:
        if test:
            save_per_user(out / PER_USER_FILE, test_ev)
        bundle_run(out, config, data, model)
        atomic_write_json(out / "metrics.json", metrics)
        if history and has_valid:
            from graphrec.run.plot import plot_history

            plot_history(history, out / "curve.png", metric=metric, title=config.name)

    distributed.on_main(finish, world)  # rank 0 writes; the others return once it has (or raise what it raised)
    return out, metrics


def _silent(*_: Any) -> None:
    """The log of the ranks other than 0."""


def save_per_user(path: Path, evaluator: Evaluator) -> None:
    """The evaluator's last ranking as per-user metrics (:func:`graphrec.eval.evaluator.per_user`), atomically."""
    import io

    from graphrec.eval.evaluator import per_user

    result = evaluator.last_result
    assert result is not None, "save_per_user needs an evaluation first"
    buf = io.BytesIO()
    arrays: dict[str, Any] = {"users": result.users, **per_user(result, evaluator.ks, evaluator.metrics)}
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def bundle_run(run_dir: str | Path, config: ExperimentConfig, data: Prepared, model: ScoringModel) -> Path:
    """Write the run's deployable bundle (:mod:`graphrec.run.bundle`) beside its other files."""
    ds = data.dataset
    provenance = {"experiment": config.name, "dataset": ds.name, "data_source": str(ds.source) if ds.source else None,
                  "split": data.split.method, "config": anchored(config).to_dict()}
    try:
        texts: list[str] | None = item_texts(data.split.train_view(), config.text.template)
    except ConfigError:  # items without the template's fields (a bare log): a server falls back to their labels
        texts = None
    return write_bundle(run_dir, model, data.graph, data.interacted, config.to_dict()["model"],
                        item_text=data.item_text if config.model.needs().item_text else None,
                        attributes=data.attributes, provenance=provenance,
                        item_texts=texts)


def export_bundle(run_dir: str | Path, data_dir: str | None = None) -> Path:
    """Write the bundle of a finished run that has none (re-prepares its data once, from ``data_dir`` if given)."""
    config, data, model = load_run(run_dir, data_dir=data_dir)
    return bundle_run(run_dir, config, data, model)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu",
             data_dir: str | None = None) -> tuple[ExperimentConfig, Prepared, ScoringModel]:
    """Rebuild a finished run's data and best model from its dataset (re-split, graph, text features).

    :func:`graphrec.load` serves a run from its bundle instead, without the data.

    Args:
        data_dir: Where the dataset's files are now (replaces ``dataset.data_dir``).
    """
    from graphrec.run.config import load_config

    run = Path(run_dir)
    if not run.is_dir():
        raise GraphrecError(f"{run}: no such run directory")
    for f in ("config.yaml", "best.pt"):
        if not (run / f).is_file():
            hint = " (the run has not finished an epoch: resume it with graphrec run --resume)" if f == "best.pt" else ""
            raise GraphrecError(f"{run}: no {f} there; not a finished graphrec run{hint}")
    config = load_config(run / "config.yaml", strict=False)
    if data_dir is not None:
        config = replace(config, dataset=config.dataset.with_data_dir(data_dir))
    data = prepare(config)
    model = build_model(config, data)
    state = load_checkpoint(run / "best.pt", map_location="cpu")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise GraphrecError(f"{run / 'best.pt'}: does not fit the model of {run / 'config.yaml'}: "
                            f"{str(exc).splitlines()[0]}") from None
    return config, data, model.to(device).eval()
