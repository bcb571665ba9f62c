"""Experiment configuration: typed dataclasses read from YAML, checked before any work starts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from graphrec.config import from_dict
from graphrec.errors import ConfigError
from graphrec.graph.config import GraphConfig
from graphrec.text.templates import DEFAULT_ITEM_TEMPLATE
from graphrec.train.trainer import TrainConfig

MODEL_NAMES = ("mostpop", "itemknn", "mf-bpr", "lightgcn", "text-lightgcn", "graphsage")

#: The ``model:`` keys each model reads; writing any other is a ConfigError, never silently ignored.
MODEL_KEYS: dict[str, tuple[str, ...]] = {
    "mostpop": (),
    "itemknn": ("k", "shrink"),
    "mf-bpr": ("dim", "reg"),
    "lightgcn": ("dim", "num_layers", "reg", "attribute_nodes"),
    "text-lightgcn": ("dim", "num_layers", "reg", "attribute_nodes"),
    "graphsage": ("dim", "num_layers", "reg", "fanouts", "dropout", "objective"),
}
#: Models trained by the BPR trainer (the others are fitted in closed form).
TRAINABLE = ("mf-bpr", "lightgcn", "text-lightgcn", "graphsage")
#: Models that read the ``text:`` section (item text features).
TEXT_MODELS = ("text-lightgcn", "graphsage")
#: ``graph:`` keys only GraphSAGE reads (the user-item models keep the item attribute nodes alone).
GRAPHSAGE_GRAPH_KEYS = ("user_attributes", "user_features", "attribute_features", "genre_multihot", "age_edges")
#: ``train:`` keys a closed-form model (no loss, no epochs) reads.
CLOSED_FORM_TRAIN_KEYS = ("seed", "device", "threads", "progress")


@dataclass(frozen=True)
class DatasetSection:
    """Attributes:
    name: A MovieLens release (``graphrec datasets list``).
    data_dir: Folder with its files (default ``$GRAPHREC_DATA_DIR``, then the cache).
    implicit_threshold: Keep interactions rated at least this as positives;
        ``None`` keeps every interaction.
    k_core: Keep the k-core (``None``: no filtering).
    """

    name: str = "ml-100k"
    data_dir: str | None = None
    implicit_threshold: float | None = None
    k_core: int | None = None

    def __post_init__(self) -> None:
        from graphrec.data.movielens import DATASETS

        if self.name not in DATASETS:
            raise ConfigError(f"dataset.name: unknown dataset {self.name!r}; known: {', '.join(DATASETS)}")
        if self.k_core is not None and self.k_core < 1:
            raise ConfigError(f"dataset.k_core must be >= 1, got {self.k_core}")


@dataclass(frozen=True)
class SplitSection:
    """Attributes: method (random, temporal, user-temporal, leave-one-out, fixed, cold-items), ratios, seed,
    fixed (an official split's name), cold_fraction (share of items held out entirely by ``cold-items``)."""

    method: Literal["random", "temporal", "user-temporal", "leave-one-out", "fixed", "cold-items"] = "random"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 2020
    fixed: str | None = None
    cold_fraction: float = 0.1

    def __post_init__(self) -> None:
        if any(r < 0 for r in self.ratios) or self.ratios[0] <= 0 or abs(sum(self.ratios) - 1.0) > 1e-6:
            raise ConfigError(f"split.ratios: expected three shares (train, valid, test) >= 0, train > 0, summing "
                              f"to 1; found {list(self.ratios)} (sum {sum(self.ratios):g})")
        if not 0 < self.cold_fraction < 1:
            raise ConfigError(f"split.cold_fraction must be in (0, 1), got {self.cold_fraction}")
        if self.method == "fixed" and self.fixed is None:
            raise ConfigError("split.method 'fixed' needs split.fixed: the official split's name (ML-100K: u1..u5, ua, ub)")
        if self.method != "fixed" and self.fixed is not None:
            raise ConfigError(f"split.fixed is only read by split.method 'fixed', not {self.method!r}")


@dataclass(frozen=True)
class TextSection:
    """Attributes: model ('default' or a HF name/folder), template, batch_size, device, max_length."""

    model: str = "default"
    template: str = DEFAULT_ITEM_TEMPLATE
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
class ModelSection:
    """Attributes:
    name: One of ``mostpop``, ``itemknn``, ``mf-bpr``, ``lightgcn``, ``text-lightgcn``, ``graphsage``.
    dim, num_layers, reg: Embedding models' hyperparameters (GraphSAGE: width and layers).
    k, shrink: ItemKNN's neighbours and shrinkage.
    fanouts: GraphSAGE's neighbours sampled per hop in training (one per layer; -1: all;
        default 10 per layer).
    dropout: GraphSAGE's dropout between layers.
    objective: GraphSAGE's loss: ``bpr`` or ``bce`` (binary cross-entropy).
    attribute_nodes: LightGCN and text-LightGCN: propagate over the item
        attribute nodes of ``graph.item_attributes`` (genres...) too, each with
        a learned embedding; their share of a score is then explained exactly.
    """

    name: Literal["mostpop", "itemknn", "mf-bpr", "lightgcn", "text-lightgcn", "graphsage"] = "lightgcn"
    dim: int = 64
    num_layers: int = 3
    reg: float = 1e-4
    k: int = 100
    shrink: float = 0.0
    fanouts: tuple[int, ...] | None = None
    dropout: float = 0.0
    objective: Literal["bpr", "bce"] = "bpr"
    attribute_nodes: bool = False

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ConfigError(f"model.dim must be >= 1, got {self.dim}")
        if self.num_layers < (1 if self.name == "graphsage" else 0):
            raise ConfigError(f"model.num_layers must be >= {1 if self.name == 'graphsage' else 0} for "
                              f"{self.name}, got {self.num_layers}")
        if self.reg < 0 or self.shrink < 0:
            raise ConfigError(f"model.reg and model.shrink must be >= 0, got {self.reg} and {self.shrink}")
        if self.k < 1:
            raise ConfigError(f"model.k must be >= 1, got {self.k}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.name == "graphsage" and self.fanouts is not None:
            if len(self.fanouts) != self.num_layers:
                raise ConfigError(f"model.fanouts needs one entry per layer (model.num_layers = {self.num_layers}), "
                                  f"found {list(self.fanouts)}")
            if any(f < -1 or f == 0 for f in self.fanouts):
                raise ConfigError(f"model.fanouts: each must be >= 1, or -1 for every neighbour; found {list(self.fanouts)}")


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
    dataset: DatasetSection = field(default_factory=DatasetSection)
    split: SplitSection = field(default_factory=SplitSection)
    graph: GraphConfig = field(default_factory=GraphConfig)
    text: TextSection = field(default_factory=TextSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalSection = field(default_factory=EvalSection)

    def __post_init__(self) -> None:
        from graphrec.train.trainer import check_metric

        _, k = check_metric(self.train.metric, "train.metric")
        if k not in self.eval.ks and self.model.name in TRAINABLE:
            raise ConfigError(f"train.metric {self.train.metric!r} is at k={k}, but eval.ks is {list(self.eval.ks)}: "
                              f"add {k} to eval.ks or pick a metric at one of them")
        if self.model.attribute_nodes:
            if self.model.name not in ("lightgcn", "text-lightgcn"):
                raise ConfigError(f"model.attribute_nodes is for lightgcn and text-lightgcn, not {self.model.name!r} "
                                  "(graphsage uses the graph's attribute nodes as they are)")
            if not self.graph.item_attributes:
                raise ConfigError("model.attribute_nodes needs graph.item_attributes (e.g. [genre])")

    def to_dict(self) -> dict[str, Any]:
        """Every setting the experiment's model reads (and no other), as plain YAML-able values."""
        d = _plain(dataclasses.asdict(self))
        name = self.model.name
        d["model"] = {k: v for k, v in d["model"].items() if k == "name" or k in MODEL_KEYS[name]}
        if name != "graphsage":
            d["graph"] = {k: v for k, v in d["graph"].items() if k not in GRAPHSAGE_GRAPH_KEYS}
        if name not in TEXT_MODELS:
            del d["text"]
        if name not in TRAINABLE:
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
            ``False`` drops such keys instead: for the ``config.yaml`` of a run
            directory written by graphrec 0.1, which saved every model's
            defaults.

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
    for key, value in (overrides or {}).items():
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{p}: --set {key}: {part!r} is not a section")
        node[last] = value
    try:
        config = from_dict(ExperimentConfig, raw if strict else _only_read(raw), "")
        check_unused(config, raw if strict else _only_read(raw))
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
    return config


def _only_read(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` without the keys its model does not read (see :func:`check_unused`)."""
    section = raw.get("model")
    model: dict[str, Any] = section if isinstance(section, dict) else {}
    name = model.get("name", ModelSection.name)
    if name not in MODEL_KEYS:
        return raw
    out = dict(raw)
    out["model"] = {k: v for k, v in model.items() if k == "name" or k in MODEL_KEYS[name]}
    if name != "graphsage" and isinstance(raw.get("graph"), dict):
        out["graph"] = {k: v for k, v in raw["graph"].items() if k not in GRAPHSAGE_GRAPH_KEYS}
    if name not in TEXT_MODELS:
        out.pop("text", None)
    if name not in TRAINABLE and isinstance(raw.get("train"), dict):
        out["train"] = {k: v for k, v in raw["train"].items() if k in CLOSED_FORM_TRAIN_KEYS}
    return out


def check_unused(config: ExperimentConfig, raw: dict[str, Any]) -> None:
    """Raise ConfigError for a key the configuration's model does not read (every key written must act)."""
    name = config.model.name

    def written(section: str) -> list[str]:
        value = raw.get(section)
        return list(value) if isinstance(value, dict) else []

    bad = [k for k in written("model") if k != "name" and k not in MODEL_KEYS[name]]
    if bad:
        raise ConfigError(f"model: {name} has no key(s) {bad}; its keys: {list(MODEL_KEYS[name]) or 'none'}")
    if name != "graphsage":
        bad = [k for k in written("graph") if k in GRAPHSAGE_GRAPH_KEYS]
        if bad:
            raise ConfigError(f"graph: {bad} are read by graphsage only; {name} builds its graph from "
                              "users, items and graph.item_attributes")
    if name not in TEXT_MODELS and written("text"):
        raise ConfigError(f"text: {name} uses no item text; text features are read by {', '.join(TEXT_MODELS)}")
    if name not in TRAINABLE:
        bad = [k for k in written("train") if k not in CLOSED_FORM_TRAIN_KEYS]
        if bad:
            raise ConfigError(f"train: {name} is fitted in closed form (no epochs, no loss); train.{bad} do not apply "
                              f"(it reads only {list(CLOSED_FORM_TRAIN_KEYS)})")


def dump_config(config: ExperimentConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
