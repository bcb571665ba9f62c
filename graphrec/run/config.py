"""Experiment configuration: typed dataclasses read from YAML, checked before any work starts."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from graphrec.config import from_dict
from graphrec.data.sources import MovieLensSource, SourceConfig
from graphrec.data.split import Shuffle
from graphrec.errors import ConfigError
from graphrec.graph.config import GraphConfig
from graphrec.nn.lightgcn import LightGCNConfig
from graphrec.nn.registry import DEFAULT_MODEL, MODELS, model_config
from graphrec.nn.spec import ModelConfig, ModelSpec
from graphrec.train.trainer import TrainConfig

#: ``graph:`` keys read only by models built from the heterogeneous graph (``Needs.graph``); the
#: user-item models keep the item attribute nodes alone
GRAPH_FEATURE_KEYS = ("user_attributes", "user_features", "attribute_features", "genre_multihot", "age_edges")
#: ``train:`` keys a closed-form model (no loss, no epochs) reads
CLOSED_FORM_TRAIN_KEYS = ("seed", "device", "threads", "progress")
#: model names of earlier releases, and what they are written as now (read from old run directories only)
LEGACY_MODELS: dict[str, dict[str, Any]] = {"text-lightgcn": {"name": "lightgcn", "item_features": "text"}}


@dataclass(frozen=True)
class SplitSection:
    """Attributes: method (random, temporal, user-temporal, leave-one-out, fixed, cold-items), ratios, seed,
    fixed (an official split's name), cold_fraction (share of items held out entirely by ``cold-items``),
    shuffle (each user's order in ``random`` and ``cold-items``, which alone read it, as ``seed``: ``grouped``,
    local memory access, or ``global``, the split of the figures recorded before 2026-12-07;
    :func:`graphrec.data.random_split`)."""

    method: Literal["random", "temporal", "user-temporal", "leave-one-out", "fixed", "cold-items"] = "random"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 2020
    fixed: str | None = None
    cold_fraction: float = 0.1
    shuffle: Shuffle = "grouped"

    #: the keys each method reads (besides ``method``): another key set away from its default would not act
    READS: ClassVar[dict[str, tuple[str, ...]]] = {
        "random": ("ratios", "seed", "shuffle"), "cold-items": ("ratios", "seed", "shuffle", "cold_fraction"),
        "temporal": ("ratios",), "user-temporal": ("ratios",), "leave-one-out": (), "fixed": ("fixed",)}

    @property
    def reads(self) -> tuple[str, ...]:
        """The keys this split's method reads."""
        return self.READS[self.method]

    def __post_init__(self) -> None:
        # shuffle is not held to it: experiment files pin it for their recorded figures, and --set split.method
        # (temporal, say) on such a file must not need it unset
        idle = [f.name for f in fields(self) if f.name not in ("method", "shuffle") and f.name not in self.reads
                and _as_tuple(getattr(self, f.name)) != _as_tuple(f.default)]
        if self.method != "fixed" and "fixed" in idle:
            raise ConfigError(f"split.fixed is only read by split.method 'fixed', not {self.method!r}")
        if idle:
            raise ConfigError(f"split.{idle[0]} is not read by split.method {self.method!r}, which reads "
                              f"{', '.join(self.reads) or 'no other key'}: leave it out (every key must act)")
        if any(r < 0 for r in self.ratios) or self.ratios[0] <= 0 or abs(sum(self.ratios) - 1.0) > 1e-6:
            raise ConfigError(f"split.ratios: expected three shares (train, valid, test) >= 0, train > 0, summing "
                              f"to 1; found {list(self.ratios)} (sum {sum(self.ratios):g})")
        if not 0 < self.cold_fraction < 1:
            raise ConfigError(f"split.cold_fraction must be in (0, 1), got {self.cold_fraction}")
        if self.method == "fixed" and self.fixed is None:
            raise ConfigError("split.method 'fixed' needs split.fixed: the official split's name (ML-100K: u1..u5, ua, ub)")


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


@dataclass(frozen=True)
class TextSection:
    """Attributes: model ('default' or a HF name/folder), template (None: the dataset's own: MovieLens
    title, genres and tags; an item table's text columns), batch_size, device, max_length."""

    model: str = "default"
    template: str | None = None
    batch_size: int = 64
    device: str = "auto"
    max_length: int = 256

    def __post_init__(self) -> None:
        from graphrec.train.trainer import check_device

        if self.batch_size < 1 or self.max_length < 2:
            raise ConfigError(f"text.batch_size must be >= 1 and text.max_length >= 2, got {self.batch_size} "
                              f"and {self.max_length}")
        check_device(self.device, "text.device")


@dataclass(frozen=True)
class EvalSection:
    """Attributes: ks (cut-offs), batch_size (users per scoring batch)."""

    ks: tuple[int, ...] = (10, 20)
    batch_size: int = 1024

    def __post_init__(self) -> None:
        if not self.ks or any(k < 1 for k in self.ks):
            raise ConfigError(f"eval.ks: expected cut-offs >= 1, found {list(self.ks)}")
        if self.batch_size < 1:
            raise ConfigError(f"eval.batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: load → split → graph → text features → train → evaluate.

    Attributes:
        name: Run name (the run directory is ``<output>/<name>-<time>``).
        output: Folder of run directories.
    """

    name: str = "experiment"
    output: str = "runs"
    dataset: SourceConfig = field(default_factory=MovieLensSource)
    split: SplitSection = field(default_factory=SplitSection)
    graph: GraphConfig = field(default_factory=GraphConfig)
    text: TextSection = field(default_factory=TextSection)
    model: ModelConfig = field(default_factory=LightGCNConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalSection = field(default_factory=EvalSection)

    def __post_init__(self) -> None:
        from graphrec.train.trainer import check_metric

        if not isinstance(self.model, ModelConfig) or self.model.name not in MODELS:
            raise ConfigError(f"model: expected a registered model's config, found {self.model!r}")
        _, k = check_metric(self.train.metric, "train.metric")
        if k not in self.eval.ks and self.spec.trainable:
            raise ConfigError(f"train.metric {self.train.metric!r} is at k={k}, but eval.ks is {list(self.eval.ks)}: "
                              f"add {k} to eval.ks or pick a metric at one of them")
        if self.model.needs().attribute_nodes and self.graph.item_attributes == ():
            raise ConfigError("model.attribute_nodes needs graph.item_attributes (e.g. [genre])")

    @property
    def spec(self) -> ModelSpec:
        """The registry entry of the experiment's model."""
        return MODELS[self.model.name]

    def to_dict(self) -> dict[str, Any]:
        """Every setting the experiment's model reads (and no other), as plain YAML-able values."""
        d = _plain(dataclasses.asdict(self))
        needs = self.model.needs()
        if not needs.graph:
            d["graph"] = {k: v for k, v in d["graph"].items() if k not in GRAPH_FEATURE_KEYS}
        if not needs.item_text:
            del d["text"]
        if not self.spec.trainable:
            d["train"] = {k: v for k, v in d["train"].items() if k in CLOSED_FORM_TRAIN_KEYS}
        return d


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def load_config(path: str | Path, overrides: dict[str, Any] | None = None, strict: bool = True) -> ExperimentConfig:
    """Read and validate a YAML experiment file.

    Args:
        overrides: Dotted keys to replace, e.g. ``{"train.seed": 7}``.
        strict: A key the model does not read is an error (experiment files).
            ``False`` drops such keys instead and translates old model names
            (``text-lightgcn``): for the ``config.yaml`` of a run directory
            written by graphrec 0.1, which saved every model's defaults.

    Raises:
        ConfigError: naming the file and the key for unknown keys, wrong types
            and values out of range.
    """
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p}: experiment file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping of sections, found {type(raw).__name__}")
    return config_from_dict(raw, overrides, strict, where=str(p), override_name="--set")


def config_from_dict(raw: dict[str, Any], overrides: dict[str, Any] | None = None, strict: bool = True,
                     where: str = "config", override_name: str = "override") -> ExperimentConfig:
    """The experiment a plain mapping of sections describes (a parsed YAML file), ``overrides`` applied.

    Args:
        overrides: Dotted keys to replace, e.g. ``{"model.reg": 0.01}``.
        strict, where: As :func:`load_config`; ``where`` prefixes every error.
    """
    raw = copy.deepcopy(raw)
    for key, value in (overrides or {}).items():
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{where}: {override_name} {key}: {part!r} is not a section")
        node[last] = value
    model = raw.get("model")
    if strict and isinstance(model, dict) and model.get("name") in LEGACY_MODELS:
        now = ", ".join(f"{k}: {v}" for k, v in LEGACY_MODELS[model["name"]].items())
        raise ConfigError(f"{where}: model.name {model['name']!r} is now written as {{{now}}}")
    if not strict:
        raw = _only_read(raw)
    try:
        # the model: section's class is the one its name picks in the registry
        parsed = {**raw, "model": model_config(raw.get("model") or {}, "model")}
        config = from_dict(ExperimentConfig, parsed, "")
        check_unused(config, raw)
    except ConfigError as exc:  # the bad key may be the file's or an override's: name both
        given = ", ".join(f"{k}={v}" for k, v in (overrides or {}).items())
        raise ConfigError(f"{where}{f' with {override_name} {given}' if given else ''}: {exc}") from None
    return config


def with_overrides(config: ExperimentConfig, overrides: dict[str, Any], where: str = "override") -> ExperimentConfig:
    """``config`` with dotted keys replaced (``{"train.lr": 0.002, "model.reg": 1e-5}``), validated again."""
    return config_from_dict(config.to_dict(), overrides, where=where)


def with_recorded_shuffle(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` (an experiment's sections, as a run directory or a tune study recorded them) with ``split.shuffle:
    global`` where a shuffling split (``random``, ``cold-items``) was written before the key existed: the split
    it was made with."""
    split = raw.get("split")
    if split is not None and not isinstance(split, dict):
        return raw
    split = dict(split or {})
    if "shuffle" in split or split.get("method", "random") not in ("random", "cold-items"):
        return raw
    return {**raw, "split": {**split, "shuffle": "global"}}


def _split_keys_read(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with only the split keys its method reads: a run directory written before 2026-12-07 may record
    others (compare.py set split.seed on a fixed split), which never acted."""
    split = raw.get("split")
    if not isinstance(split, dict):
        return raw
    reads = SplitSection.READS.get(split.get("method", "random"))
    if reads is None:
        return raw
    return {**raw, "split": {k: v for k, v in split.items() if k in ("method", "shuffle") or k in reads}}


def _only_read(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` without the keys its model does not read (see :func:`check_unused`), old model names translated;
    a random split written before ``split.shuffle`` existed is the global shuffle it was made with."""
    raw = _split_keys_read(with_recorded_shuffle(raw))
    section = raw.get("model")
    model: dict[str, Any] = dict(section) if isinstance(section, dict) else {}
    name = model.get("name", DEFAULT_MODEL)
    if isinstance(name, str) and name in LEGACY_MODELS:
        model.update(LEGACY_MODELS[name])
        name = model["name"]
    if not isinstance(name, str) or name not in MODELS:
        return raw
    spec = MODELS[name]
    out = dict(raw)
    out["model"] = {k: v for k, v in model.items() if k == "name" or k in spec.keys()}
    needs = model_config(out["model"]).needs()
    if not needs.graph and isinstance(raw.get("graph"), dict):
        out["graph"] = {k: v for k, v in raw["graph"].items() if k not in GRAPH_FEATURE_KEYS}
    if not needs.item_text:
        out.pop("text", None)
    if not spec.trainable and isinstance(raw.get("train"), dict):
        out["train"] = {k: v for k, v in raw["train"].items() if k in CLOSED_FORM_TRAIN_KEYS}
    return out


def _text_readers() -> str:
    out = []
    for name, spec in MODELS.items():
        if spec.config().needs().item_text:
            out.append(name)
        elif "item_features" in spec.keys():
            out.append(f"{name} with item_features: text")
    return ", ".join(out)


def check_unused(config: ExperimentConfig, raw: dict[str, Any]) -> None:
    """Raise ConfigError for a key the configuration's model does not read (every key written must act).

    The ``model:`` section's own keys are checked when it is parsed (:func:`~graphrec.nn.registry.model_config`).
    """
    name, needs = config.model.name, config.model.needs()

    def written(section: str) -> list[str]:
        value = raw.get(section)
        return list(value) if isinstance(value, dict) else []

    if not needs.graph:
        bad = [k for k in written("graph") if k in GRAPH_FEATURE_KEYS]
        if bad:
            readers = [n for n, s in MODELS.items() if s.config().needs().graph]
            raise ConfigError(f"graph: {bad} are read by models built from the heterogeneous graph "
                              f"({', '.join(readers)}); {name} builds its graph from users, items and "
                              "graph.item_attributes")
    if not needs.item_text and written("text"):
        raise ConfigError(f"text: {name} as configured uses no item text; the text section is read by "
                          f"{_text_readers()}")
    if not config.spec.trainable:
        bad = [k for k in written("train") if k not in CLOSED_FORM_TRAIN_KEYS]
        if bad:
            keys = ", ".join(f"train.{k}" for k in bad)
            raise ConfigError(f"train: {name} is fitted in closed form (no epochs, no loss); {keys} "
                              f"{'does' if len(bad) == 1 else 'do'} not apply (it reads only "
                              f"{', '.join(CLOSED_FORM_TRAIN_KEYS)})")


def dump_config(config: ExperimentConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
