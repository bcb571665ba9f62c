"""What a model declares about itself, once, beside the model: its typed config and one :class:`ModelSpec`.

:mod:`graphrec.nn.registry` lists the specs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import scipy.sparse as sp
from torch import Tensor

from graphrec.errors import ConfigError
from graphrec.nn.base import ScoringModel


@dataclass(frozen=True)
class Needs:
    """What a model is built from, besides the train interactions every model gets.

    Attributes:
        adjacency: The symmetric normalised user-item adjacency
            (:func:`graphrec.graph.normalized_adjacency`).
        attribute_nodes: ... with the item attribute nodes of
            ``graph.item_attributes`` appended after the items.
        item_text: Item text features ``[num_items, F]``.
        graph: The heterogeneous graph with node features
            (:class:`~graphrec.graph.GraphBuilder`), user attributes and
            ``graph:`` options included.
    """

    adjacency: bool = False
    attribute_nodes: bool = False
    item_text: bool = False
    graph: bool = False


@dataclass(frozen=True)
class ModelInputs:
    """The plain inputs a model is built from (those its :class:`Needs` name are not None).

    Attributes:
        num_users, num_items: Sizes.
        train: Binary ``num_users × num_items`` CSR matrix of train interactions.
        adjacency: ``[N, N]`` normalised adjacency, users then items then
            ``extra_nodes``.
        extra_nodes: Attribute node types in the adjacency after the items,
            with their counts, in order (``{"genre": 19}``).
        item_text: ``[num_items, F]`` item text features.
        graph: The heterogeneous train graph.
        seed: Seed of any generator the model owns (a sampler's).
    """

    num_users: int
    num_items: int
    train: sp.csr_matrix | None = None
    adjacency: Tensor | None = None
    extra_nodes: Mapping[str, int] = field(default_factory=dict)
    item_text: Tensor | None = None
    graph: Any = None  # torch_geometric.data.HeteroData
    seed: int = 0

    def check(self, name: str, needs: Needs) -> None:
        """Raise ConfigError naming every input ``needs`` asks for that is missing."""
        missing = [what for what, wanted, have in (
            ("adjacency", needs.adjacency, self.adjacency is not None),
            ("item_text", needs.item_text, self.item_text is not None),
            ("graph", needs.graph, self.graph is not None),
            ("extra_nodes", needs.attribute_nodes, bool(self.extra_nodes)),
        ) if wanted and not have]
        if missing:
            raise ConfigError(f"model {name!r} is built from {missing}, which ModelInputs does not hold")


@dataclass(frozen=True)
class FloatRange:
    """A float hyperparameter searched in ``[low, high]`` (on a log scale when ``log``)."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ConfigError(f"FloatRange needs low < high (and low > 0 on a log scale), got {self}")


@dataclass(frozen=True)
class IntRange:
    """An integer hyperparameter searched in ``[low, high]`` (on a log scale when ``log``)."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.log and self.low < 1):
            raise ConfigError(f"IntRange needs low < high (and low >= 1 on a log scale), got {self}")


@dataclass(frozen=True)
class Choice:
    """A hyperparameter searched among ``values`` (any YAML-able values, tuples included)."""

    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        if len(self.values) < 2:
            raise ConfigError(f"Choice needs at least two values, got {list(self.values)}")


#: one dimension of a search space
Range = FloatRange | IntRange | Choice


@dataclass(frozen=True)
class ModelConfig:
    """Base of every model's config: ``name`` (the registry key) and the model's own hyperparameters.

    Subclasses redeclare ``name`` as ``Literal["their-name"]`` with that default, and declare
    ``search_space``: the ranges ``graphrec tune`` searches by default, keyed by the config's own field
    names, or by ``train.<key>`` for a training setting the model is sensitive to (its learning rate).
    """

    name: str = ""
    search_space: ClassVar[Mapping[str, Range]] = {}

    def needs(self) -> Needs:
        """The inputs this configuration of the model is built from."""
        return Needs()


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes:
        config: The model's config class (its ``name`` default is the key).
        model: The model class (``trainable`` says whether the BPR trainer trains it).
        build: ``build(config, inputs) -> model`` with fresh weights, from
            plain inputs (:class:`ModelInputs`).
        summary: One line for ``graphrec run --help`` and the docs.
        explanation: How :class:`~graphrec.explain.Explainer` explains its
            scores: ``"exact"`` (linear propagation decomposed over walks),
            ``"integrated-gradients"`` (over the sampled computation
            subgraph), ``"item-weights"`` (a score linear in the user's
            history: one exact part per history item,
            :meth:`~graphrec.nn.ScoringModel.history_parts`), or None.
    """

    config: type[ModelConfig]
    model: type[ScoringModel]
    build: Callable[[Any, ModelInputs], ScoringModel]
    summary: str
    explanation: Literal["exact", "integrated-gradients", "item-weights"] | None = None

    @property
    def name(self) -> str:
        return self.config.name  # the dataclass default

    @property
    def trainable(self) -> bool:
        return self.model.trainable

    def keys(self) -> list[str]:
        """The hyperparameters a YAML ``model:`` section may hold besides ``name``."""
        from dataclasses import fields

        return [f.name for f in fields(self.config) if f.name != "name"]

    def create(self, config: ModelConfig, inputs: ModelInputs) -> ScoringModel:
        """Build the model after checking that ``inputs`` holds what ``config`` needs."""
        if not isinstance(config, self.config):
            raise ConfigError(f"{self.name}: expected a {self.config.__name__}, got {type(config).__name__}")
        inputs.check(self.name, config.needs())
        return self.build(config, inputs)


def check_dim_reg(dim: int, reg: float) -> None:
    """The range checks every embedding model's config shares: ``dim >= 1``, ``reg >= 0``."""
    if dim < 1:
        raise ConfigError(f"dim must be >= 1, got {dim}")
    if reg < 0:
        raise ConfigError(f"reg must be >= 0, got {reg}")
