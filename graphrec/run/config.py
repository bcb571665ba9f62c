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


@dataclass(frozen=True)
class TextSection:
    """Attributes: model ('default' or a HF name/folder), template, batch_size, device, max_length."""

    model: str = "default"
    template: str = DEFAULT_ITEM_TEMPLATE
    batch_size: int = 64
    device: str = "auto"
    max_length: int = 256


@dataclass(frozen=True)
class ModelSection:
    """Attributes:
    name: One of ``mostpop``, ``itemknn``, ``mf-bpr``, ``lightgcn``, ``text-lightgcn``, ``graphsage``.
    dim, num_layers, reg: Embedding models' hyperparameters (GraphSAGE: width and layers).
    k, shrink: ItemKNN's neighbours and shrinkage.
    fanouts: GraphSAGE's neighbours sampled per hop in training (one per layer; -1: all).
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
    fanouts: tuple[int, ...] = (10, 10)
    dropout: float = 0.0
    objective: Literal["bpr", "bce"] = "bpr"
    attribute_nodes: bool = False


@dataclass(frozen=True)
class EvalSection:
    """Attributes: ks (cut-offs), batch_size (users per scoring batch)."""

    ks: tuple[int, ...] = (10, 20)
    batch_size: int = 1024


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
        if self.model.attribute_nodes:
            if self.model.name not in ("lightgcn", "text-lightgcn"):
                raise ConfigError(f"model.attribute_nodes is for lightgcn and text-lightgcn, not {self.model.name!r} "
                                  "(graphsage uses the graph's attribute nodes as they are)")
            if not self.graph.item_attributes:
                raise ConfigError("model.attribute_nodes needs graph.item_attributes (e.g. [genre])")

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read and validate a YAML experiment file.

    Args:
        overrides: Dotted keys to replace, e.g. ``{"train.seed": 7}``.

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
        node[last] = value
    try:
        return from_dict(ExperimentConfig, raw, "")
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def dump_config(config: ExperimentConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
