"""What goes into the heterogeneous graph."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from graphrec.errors import ConfigError

ITEM_ATTRIBUTES = ("genre", "tag", "year", "decade")
USER_ATTRIBUTES = ("occupation", "age", "gender")
UserFeatures = Literal["none", "attributes", "text_mean"]
AttributeFeatures = Literal["id", "text"]


@dataclass(frozen=True)
class GraphConfig:
    """Configuration of :class:`~graphrec.graph.GraphBuilder`.

    Attributes:
        item_attributes: Attribute node types linked to items: ``"genre"``,
            ``"tag"``, ``"year"``, ``"decade"`` (MovieLens), or any column of
            the dataset's item table (``"category"``). None: the dataset's
            own (MovieLens: genre; an item table: its ``attributes``).
        user_attributes: Attribute node types linked to users: any of
            ``"occupation"``, ``"age"`` (bucketed), ``"gender"``.
        user_features: ``user.x``: ``"none"`` (models learn id embeddings),
            ``"attributes"`` (one-hot occupation, age bucket and gender) or
            ``"text_mean"`` (mean text embedding of the user's train items).
        attribute_features: ``x`` of attribute nodes: ``"id"`` (none; learned
            ids) or ``"text"`` (text embedding of the attribute's name).
        genre_multihot: Concatenate multi-hot genres to ``item.x``.
        min_tag_count: Tags applied fewer times than this (in train) are left out.
        age_edges: Upper bounds of the age buckets (``age < 18`` is the first).
    """

    item_attributes: tuple[str, ...] | None = None
    user_attributes: tuple[str, ...] = ()
    user_features: UserFeatures = "none"
    attribute_features: AttributeFeatures = "id"
    genre_multihot: bool = False
    min_tag_count: int = 1
    age_edges: tuple[int, ...] = field(default=(18, 25, 35, 45, 50, 56))

    def __post_init__(self) -> None:
        if self.item_attributes is not None:
            object.__setattr__(self, "item_attributes", tuple(self.item_attributes))
            bad = [a for a in self.item_attributes if not a or a in ("user", "item")]
            if bad:
                raise ConfigError(f"GraphConfig.item_attributes: {bad} cannot name an attribute node type")
        object.__setattr__(self, "user_attributes", tuple(self.user_attributes))
        object.__setattr__(self, "age_edges", tuple(self.age_edges))
        bad = [a for a in self.user_attributes if a not in USER_ATTRIBUTES]
        if bad:
            raise ConfigError(f"GraphConfig.user_attributes: unknown {bad}; expected some of {list(USER_ATTRIBUTES)}")
        if self.user_features not in ("none", "attributes", "text_mean"):
            raise ConfigError(f"GraphConfig.user_features must be 'none', 'attributes' or 'text_mean', got {self.user_features!r}")
        if self.attribute_features not in ("id", "text"):
            raise ConfigError(f"GraphConfig.attribute_features must be 'id' or 'text', got {self.attribute_features!r}")
        if self.min_tag_count < 1:
            raise ConfigError(f"GraphConfig.min_tag_count must be >= 1, got {self.min_tag_count}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GraphConfig:
        """Build from a mapping (a YAML section); unknown keys raise ConfigError."""
        from graphrec.config import from_dict

        return from_dict(cls, values, "graph")
