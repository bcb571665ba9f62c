"""``graphrec tune``: search a model's hyperparameters on the validation part with Optuna.

Each trial is one ordinary run (:func:`~graphrec.run.run_experiment`) of the
experiment with the trial's values in place, written to
``<tune dir>/trials/<number>``. The objective is the run's best validation
``train.metric`` (NDCG@20 by default); the test part is never looked at.
The sampler is TPE (its first :func:`startup_trials` trials random), seeded with ``train.seed``; a percentile
pruner stops a trained model's trial whose validation metric is in the bottom ``PRUNE_PERCENTILE`` % of the
earlier trials' at the same epoch (never before ``train.min_epochs`` nor the first ``WARMUP_EVALS``
evaluations). Not the median: deeper models start slower, and a median pruner stopped LightGCN's 3- and
4-layer trials at their 10th epoch (one of them next to the hand-set configuration, which beats every trial it
kept) because 1-layer trials lead early. The study lives in
``<tune dir>/study.db`` (SQLite), so a killed ``graphrec tune`` continues
where it stopped: finished trials are kept and a trial cut off mid-run is
run again with the same values.

The search space is the model's own declaration (``search_space`` on its
config class, :mod:`graphrec.nn.spec`), or a YAML file (``--space``)::

    model.reg: {low: 1.0e-6, high: 1.0e-2, log: true}
    model.num_layers: {low: 1, high: 4}        # two ints: an integer range
    model.fanouts: [[5, 5], [10, 10]]           # a list: a choice
    train.lr: {low: 1.0e-4, high: 1.0e-2, log: true}
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from graphrec.errors import ConfigError, GraphrecError
from graphrec.fs import atomic_write_text
from graphrec.nn.spec import Choice, FloatRange, IntRange, Range
from graphrec.run.config import ExperimentConfig, dump_config, with_overrides, with_recorded_shuffle

#: evaluations every trial gets before the pruner may stop it
WARMUP_EVALS = 30
#: a trial below this percentile of the earlier trials at the same epoch is pruned
PRUNE_PERCENTILE = 25.0
#: finished trials before the pruner starts comparing
STARTUP_TRIALS = 5
STUDY_FILE = "study.db"
INTERRUPTED = "interrupted; run again"


@dataclass(frozen=True)
class Trial:
    """One row of the trials table.

    Attributes:
        number: Optuna's trial number (0-based, in order of start).
        state: ``complete``, ``pruned`` or ``fail``.
        value: Best validation metric of the run (None unless complete).
        params: The searched values, by dotted key (``model.reg``).
        seconds: Wall time of the trial.
        epochs: Epochs trained (0 for closed-form models).
        error: Why a failed trial failed.
    """

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    seconds: float | None
    epochs: int
    error: str | None = None


@dataclass(frozen=True)
class TuneResult:
    """What :func:`tune` leaves: the trials, the best one's configuration and where the files are.

    Attributes:
        directory: The tune directory (``study.db``, ``trials/``, ``trials.csv``,
            ``trials.png``, ``best.yaml``, ``tune.json``).
        metric: The validation metric maximised.
        trials: Every trial so far, this invocation's and earlier ones'.
        best: The best complete trial.
        best_config: The experiment with the best trial's values (named ``<name>-tuned``).
    """

    directory: Path
    metric: str
    trials: list[Trial]
    best: Trial
    best_config: ExperimentConfig


def startup_trials(trials: int) -> int:
    """Random trials before TPE models the results: a third of the budget, at least 3 and at most Optuna's 10."""
    return min(10, max(3, trials // 3))


def default_space(config: ExperimentConfig) -> dict[str, Range]:
    """The model's declared search space, keyed by dotted config paths (``model.reg``, ``train.lr``)."""
    space = type(config.model).search_space
    return {k if k.startswith("train.") else f"model.{k}": v for k, v in space.items()}


def read_space(path: str | Path) -> dict[str, Range]:
    """A search space from a YAML file (see the module docstring); ConfigError naming the file and key."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p}: search space file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{p}: expected a mapping of dotted keys (model.reg, train.lr) to ranges or lists")
    out: dict[str, Range] = {}
    for key, value in raw.items():
        where = f"{p}: {key}"
        if not isinstance(key, str) or "." not in key:
            raise ConfigError(f"{where}: keys are dotted config paths such as model.reg or train.lr")
        if isinstance(value, list):
            out[key] = Choice(tuple(tuple(v) if isinstance(v, list) else v for v in value))
        elif isinstance(value, dict) and set(value) <= {"low", "high", "log"} and {"low", "high"} <= set(value):
            low, high, log = value["low"], value["high"], bool(value.get("log", False))
            if isinstance(low, bool) or isinstance(high, bool) or not all(isinstance(x, (int, float)) for x in (low, high)):
                raise ConfigError(f"{where}: low and high must be numbers, found {low!r} and {high!r}")
            try:
                out[key] = IntRange(low, high, log) if isinstance(low, int) and isinstance(high, int) else \
                    FloatRange(float(low), float(high), log)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        else:
            raise ConfigError(f"{where}: expected {{low, high[, log]}} or a list of choices, found {value!r}")
    return out


def check_space(config: ExperimentConfig, space: Mapping[str, Range]) -> None:
    """ConfigError unless every key of ``space`` is a setting the experiment reads (and tuning has work to do)."""
    if not space:
        raise ConfigError(f"model {config.model.name!r} declares no hyperparameters to tune; give --space FILE")
    if config.split.method == "fixed":
        raise ConfigError("tuning needs a validation part, and split.method 'fixed' has none: use a random or "
                          "temporal split")
    sections = config.to_dict()
    for key in space:
        section, _, name = key.partition(".")
        if section not in ("model", "train", "graph", "text") or name not in sections.get(section, {}):
            known = [f"{s}.{k}" for s in ("model", "train") for k in sections.get(s, {}) if k != "name"]
            raise ConfigError(f"search space key {key!r} is not a setting of this experiment ({config.model.name}); "
                              f"its settings: {', '.join(known)}")


def _suggest(trial: Any, key: str, rng: Range) -> Any:
    if isinstance(rng, FloatRange):
        return trial.suggest_float(key, rng.low, rng.high, log=rng.log)
    if isinstance(rng, IntRange):
        return trial.suggest_int(key, rng.low, rng.high, log=rng.log)
    labels = [json.dumps(v) for v in rng.values]  # Optuna's choices must be plain scalars
    return rng.values[labels.index(trial.suggest_categorical(key, labels))]


def _plain(values: Mapping[str, Any], space: Mapping[str, Range]) -> dict[str, Any]:
    """Optuna's stored params (choice labels) as config values."""
    out = {}
    for key, value in values.items():
        rng = space.get(key)
        out[key] = json.loads(value) if isinstance(rng, Choice) and isinstance(value, str) else value
        if isinstance(out[key], list):
            out[key] = tuple(out[key])
    return out


def _yaml_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def tune(config: ExperimentConfig, trials: int, out: str | Path | None = None,
         space: Mapping[str, Range] | None = None, log: Callable[[str], Any] | None = print,
         run_log: Callable[[str], Any] | None = None) -> TuneResult:
    """Run the study until it has ``trials`` trials (counting those of an earlier, interrupted call).

    Args:
        config: The experiment to tune (its ``train.seed`` seeds the sampler and every trial).
        trials: Total trials wanted.
        out: Tune directory (default ``<output>/tune/<name>``); an existing
            study there continues if it tunes the same experiment over the
            same space.
        space: Search space (default :func:`default_space`).
        log: One line per finished trial (None: silent).
        run_log: The trials' own per-epoch lines (default silent).

    Raises:
        ConfigError: an empty or foreign search space, a split without a
            validation part, or a tune directory holding another study.
        GraphrecError: optuna is not installed, or every trial failed.
    """
    if trials < 1:
        raise ConfigError(f"trials (--trials) must be >= 1, got {trials}")
    try:
        import optuna
    except ImportError:
        raise GraphrecError("graphrec tune needs optuna: pip install 'graphrec[tune]'") from None
    from graphrec.run.pipeline import run_experiment

    space = dict(default_space(config) if space is None else space)
    check_space(config, space)
    directory = Path(out) if out is not None else Path(config.output) / "tune" / config.name
    directory.mkdir(parents=True, exist_ok=True)
    _check_same_study(directory, config, space)
    metric = config.train.metric

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{(directory / STUDY_FILE).resolve()}"
    study = optuna.create_study(
        study_name=config.name, storage=storage, direction="maximize", load_if_exists=True,
        pruner=optuna.pruners.PercentilePruner(
            PRUNE_PERCENTILE, n_startup_trials=STARTUP_TRIALS,
            n_warmup_steps=max(config.train.min_epochs, WARMUP_EVALS * config.train.eval_every)))
    _requeue_interrupted(study, optuna)
    done = _counted(study, optuna)
    # Seeded by the experiment and the trials already there: a study continued after trial n proposes the same
    # values every time, and not the first study's values again.
    study.sampler = optuna.samplers.TPESampler(seed=config.train.seed + len(study.trials),
                                               n_startup_trials=startup_trials(trials))

    def objective(trial: Any) -> float:
        params = {key: _suggest(trial, key, rng) for key, rng in space.items()}
        started = time.perf_counter()
        trial.set_user_attr("started", time.time())
        try:
            run_config = with_overrides(config, params, where=f"trial {trial.number}")
        except ConfigError as exc:  # a combination the model rejects (say fanouts for another depth)
            trial.set_user_attr("error", str(exc))
            raise

        def report(epoch: int, metrics: dict[str, float]) -> None:
            trial.report(metrics[metric], epoch)
            if trial.should_prune():
                trial.set_user_attr("epochs", epoch)
                trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))
                raise optuna.TrialPruned(f"valid {metric} {metrics[metric]:.4f} at epoch {epoch}")

        _, metrics = run_experiment(run_config, directory / "trials" / str(trial.number), overwrite=True,
                                    log=run_log or (lambda _: None), on_eval=report, test=False)  # never test
        trial.set_user_attr("epochs", int(metrics["epochs_run"]))
        trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))
        return float(metrics["valid"][metric])

    def after(study: Any, trial: Any) -> None:
        _write_outputs(directory, config, space, metric, study, optuna)
        if log is not None:
            row = _row(trial, space, optuna)
            value = f"valid {metric} {row.value:.4f}" if row.value is not None else row.state
            best = _best(study, space, optuna)
            best_text = f"best {best.value:.4f} (trial {best.number})" if best is not None else "no complete trial yet"
            # trials are numbered from 0, as trials/<n> and trials.csv name them; the count says how far
            log(f"trial {trial.number} ({_counted(study, optuna)}/{trials} done): {value}  "
                f"{_format_params(row.params)}  {row.seconds or 0:.0f} s  [{best_text}]")

    if done < trials:
        study.optimize(objective, n_trials=trials - done, callbacks=[after], catch=(ConfigError,))
    rows = [_row(t, space, optuna) for t in study.trials]
    best = _best(study, space, optuna)
    if best is None:
        errors = sorted({r.error for r in rows if r.error})
        raise GraphrecError(f"no trial of {config.name} completed" + (f": {'; '.join(errors)}" if errors else ""))
    _write_outputs(directory, config, space, metric, study, optuna)
    return TuneResult(directory, metric, rows, best, _best_config(config, best))


def _check_same_study(directory: Path, config: ExperimentConfig, space: Mapping[str, Range]) -> None:
    """Write ``tune.yaml`` (what is tuned) or, when the directory has a study, refuse to mix another one in."""
    described = yaml.safe_dump({"experiment": config.to_dict(), "space": {k: repr(v) for k, v in space.items()}},
                               sort_keys=False)
    marker = directory / "tune.yaml"
    if (directory / STUDY_FILE).exists() and marker.exists():
        recorded = marker.read_text()
        if recorded != described and _recorded(recorded) != described:
            raise ConfigError(f"{directory} holds a study of another experiment or search space ({marker}); "
                              "give another --out, or delete the directory to start over")
    elif (directory / STUDY_FILE).exists():
        raise ConfigError(f"{directory / STUDY_FILE} exists without {marker.name}: not a graphrec tune directory")
    atomic_write_text(marker, described)


def _recorded(text: str) -> str | None:
    """A ``tune.yaml`` written before ``split.shuffle`` existed, as it reads now (its split was the global one)."""
    stored = yaml.safe_load(text)
    if not isinstance(stored, dict) or not isinstance(stored.get("experiment"), dict):
        return None
    return yaml.safe_dump({**stored, "experiment": with_recorded_shuffle(stored["experiment"])}, sort_keys=False)


def _counted(study: Any, optuna: Any) -> int:
    """Trials that count towards ``--trials``: finished ones, less those an interruption cut off (run again)."""
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    return sum(t.state in finished and t.user_attrs.get("error") != INTERRUPTED for t in study.trials)


def _requeue_interrupted(study: Any, optuna: Any) -> None:
    """Trials left running by a killed process: mark them failed and queue their values to run again."""
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "error", INTERRUPTED)
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)


def _row(t: Any, space: Mapping[str, Range], optuna: Any) -> Trial:
    states = optuna.trial.TrialState
    state = {states.COMPLETE: "complete", states.PRUNED: "pruned", states.RUNNING: "running",
             states.WAITING: "waiting"}.get(t.state, "fail")
    return Trial(t.number, state, t.value if state == "complete" else None, _plain(t.params, space),
                 t.user_attrs.get("seconds"), int(t.user_attrs.get("epochs", 0)), t.user_attrs.get("error"))


def _best(study: Any, space: Mapping[str, Range], optuna: Any) -> Trial | None:
    """The complete trial with the highest value (the earliest among equals); None before any completes."""
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return _row(max(complete, key=lambda t: (t.value, -t.number)), space, optuna) if complete else None


def _best_config(config: ExperimentConfig, best: Trial) -> ExperimentConfig:
    from dataclasses import replace

    return replace(with_overrides(config, best.params, where=f"trial {best.number}"), name=f"{config.name}-tuned")


def _format_params(params: Mapping[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else json.dumps(_yaml_value(v))

    return " ".join(f"{k.partition('.')[2] if k.startswith('model.') else k}={fmt(v)}" for k, v in params.items())


def _write_outputs(directory: Path, config: ExperimentConfig, space: Mapping[str, Range], metric: str,
                   study: Any, optuna: Any) -> None:
    """trials.csv, trials.png, tune.json and (once a trial completed) best.yaml, each written atomically."""
    rows = [_row(t, space, optuna) for t in study.trials]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["trial", "state", f"valid_{metric}", "epochs", "seconds", *space, "error"])
    for r in rows:
        writer.writerow([r.number, r.state, "" if r.value is None else f"{r.value:.6f}", r.epochs,
                         "" if r.seconds is None else r.seconds,
                         *[json.dumps(_yaml_value(r.params[k])) if k in r.params else "" for k in space], r.error or ""])
    atomic_write_text(directory / "trials.csv", buf.getvalue())
    best = _best(study, space, optuna)
    summary = {"experiment": config.name, "model": config.model.name, "metric": f"valid {metric}",
               "trials": len(rows), "states": {s: sum(r.state == s for r in rows) for s in
                                               ("complete", "pruned", "fail", "running")},
               "best": None if best is None else {"trial": best.number, "value": best.value,
                                                   "params": {k: _yaml_value(v) for k, v in best.params.items()}},
               "seconds": round(sum(r.seconds or 0 for r in rows), 1)}
    atomic_write_text(directory / "tune.json", json.dumps(summary, indent=2) + "\n")
    if best is not None:
        tuned = _best_config(config, best)
        header = (f"# {config.name} tuned by graphrec tune: best of {len(rows)} trials (trial {best.number}, "
                  f"valid {metric} {best.value:.4f}); the searched values:\n"
                  + "".join(f"#   {k}: {json.dumps(_yaml_value(v))}\n" for k, v in best.params.items()))
        atomic_write_text(directory / "best.yaml", header + dump_config(tuned))
    _plot(rows, metric, directory / "trials.png", config.name)


def _plot(rows: list[Trial], metric: str, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    done = [(r.number, r.value) for r in rows if r.value is not None]
    if done:
        ax.scatter([n for n, _ in done], [v for _, v in done], s=14, label="complete trial")
        best, ys = -math.inf, []
        for _, v in done:  # in trial order
            best = max(best, v)
            ys.append(best)
        ax.step([n for n, _ in done], ys, where="post", color="C1", label="best so far")
    pruned = [r.number for r in rows if r.state == "pruned"]
    if pruned:  # drawn at the bottom: their last reported value is not the objective
        ax.scatter(pruned, [min((v for _, v in done), default=0.0)] * len(pruned), marker="x", color="0.6",
                   s=14, label="pruned")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"valid {metric}")
    ax.set_title(f"{title}: {len(rows)} trials")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
