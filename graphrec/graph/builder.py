"""Build a PyG ``HeteroData`` from a dataset's (train) interactions and side information.

Node types: ``user``, ``item`` and the attribute types chosen in
:class:`GraphConfig` (``genre``, ``tag``, ``year``, ``decade``, ``occupation``,
``age``, ``gender``). Edge types: ``(user, interacts, item)`` with ``rating``,
``weight`` and ``time`` attributes, ``(item, has_genre, genre)`` and so on,
each with its reverse ``(genre, rev_has_genre, item)``.

Every node type stores ``node_id`` (``arange``). The dataset's id and a
human-readable name of every node (a title, a genre name) are graph-level
dictionaries, ``data.node_raw_ids[type]`` and ``data.node_labels[type]``
(lists), so that mini-batch loaders, which index only tensors, pass them
through untouched; :func:`node_raw_ids` and :func:`node_labels` read them.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch_geometric.data import HeteroData

from graphrec.data.dataset import Dataset, Interactions
from graphrec.data.split import Split
from graphrec.errors import ConfigError
from graphrec.graph.config import GraphConfig
from graphrec.matrices import multihot
from graphrec.text.encoder import TextEncoder
from graphrec.text.templates import item_labels, item_texts

INTERACTS = ("user", "interacts", "item")
REV_INTERACTS = ("item", "rev_interacts", "user")
# attribute -> (owner node type, relation, column of the owner's table)
ATTRIBUTE_EDGES = {
    "genre": ("item", "has_genre", "genres"),
    "tag": ("item", "has_tag", "tags"),
    "year": ("item", "released_in", "year"),
    "decade": ("item", "released_in_decade", "year"),
    "occupation": ("user", "has_occupation", "occupation"),
    "age": ("user", "has_age", "age"),
    "gender": ("user", "has_gender", "gender"),
}


def node_raw_ids(data: HeteroData, node_type: str) -> list[object]:
    """The dataset ids of the nodes of one type, by index."""
    return data.node_raw_ids[node_type]


def node_labels(data: HeteroData, node_type: str) -> list[str]:
    """Human-readable names of the nodes of one type (titles, genre names...), by index."""
    return data.node_labels[node_type]


def reverse(edge_type: tuple[str, str, str]) -> tuple[str, str, str]:
    src, rel, dst = edge_type
    return (dst, rel[4:] if rel.startswith("rev_") else f"rev_{rel}", src)


class GraphBuilder:
    """Turns a dataset (or the train part of a split) into a heterogeneous graph.

    Args:
        config: Which attribute nodes and features to build.
        text_encoder: Encodes item texts into ``item.x`` (and attribute names
            when ``config.attribute_features == "text"``). Without one, and
            without ``item_features`` at :meth:`build`, items have no ``x``.
        item_template: Template of the item texts (see
            :func:`graphrec.text.item_texts`); None: the dataset's own
            (MovieLens: ``{title}. Genres: {genres}. Tags: {tags}``).

    Example:
        >>> builder = GraphBuilder(GraphConfig(item_attributes=("genre",)), TextEncoder())
        >>> data = builder.build(dataset, split=split)   # train edges only
    """

    def __init__(self, config: GraphConfig | None = None, text_encoder: TextEncoder | None = None,
                 item_template: str | None = None) -> None:
        self.config = config or GraphConfig()
        self.text_encoder = text_encoder
        self.item_template = item_template

    def __repr__(self) -> str:
        return f"GraphBuilder({self.config}, text_encoder={self.text_encoder!r})"

    def build(self, dataset: Dataset, split: Split | None = None, item_features: torch.Tensor | None = None) -> HeteroData:
        """Build the graph.

        Args:
            dataset: The dataset; all its users and items become nodes.
            split: If given, only its train interactions become edges, and
                item tables, tag nodes and item texts come from
                :meth:`Split.train_view <graphrec.data.Split.train_view>`
                (no tag applied to a valid/test pair, or after a temporal
                cut-off). Without a split, every interaction is an edge: use
                that only for a model that is not evaluated on this dataset.
            item_features: Precomputed ``[num_items, d]`` item features
                (instead of encoding item texts).

        Returns:
            A validated ``HeteroData``.
        """
        if split is not None and split.dataset is not dataset:
            raise ConfigError("GraphBuilder.build: the split belongs to another dataset object")
        cfg = self.config
        inter = split.part("train") if split is not None else dataset.interactions
        known = split.train_view() if split is not None else dataset  # side information train could know
        data = HeteroData()
        self._entity(data, "user", dataset.num_users, list(dataset.users.ids.tolist()), _user_labels(dataset))
        item_ids = list(dataset.items.ids.tolist())
        self._entity(data, "item", dataset.num_items, item_ids,
                     item_labels(dataset.item_info["title"].tolist(), item_ids) if "title" in dataset.item_info
                     else [f"item {x}" for x in item_ids])
        self._interactions(data, inter)

        item_info = known.item_info.copy()
        item_attributes = item_attributes_of(cfg, dataset)
        if "tag" in item_attributes:
            item_info["tags"] = _tag_lists(known, cfg.min_tag_count)
        for attr in item_attributes:
            self._attribute(data, dataset, attr, item_info)
        for attr in cfg.user_attributes:
            self._attribute(data, dataset, attr, dataset.user_info)

        # --- features ---
        text = item_features
        if text is None and self.text_encoder is not None:
            text = self.text_encoder.encode(item_texts(known, self.item_template))
        if text is not None:
            if text.shape[0] != dataset.num_items:
                raise ConfigError(f"item_features has {text.shape[0]} rows, the dataset has {dataset.num_items} items")
            x = text.float()
            if cfg.genre_multihot:
                x = torch.cat([x, multihot(item_info["genres"])], dim=1) if "genres" in item_info else x
            data["item"].x = x
        elif cfg.genre_multihot and "genres" in item_info:
            data["item"].x = multihot(item_info["genres"])
        if cfg.user_features == "attributes":
            data["user"].x = _user_onehots(dataset, cfg)
        elif cfg.user_features == "text_mean":
            if text is None:
                raise ConfigError("user_features='text_mean' needs item text features (a text_encoder or item_features)")
            data["user"].x = _mean_of_items(inter, dataset.num_users, text.float())
        if cfg.attribute_features == "text":
            if self.text_encoder is None:
                raise ConfigError("attribute_features='text' needs a text_encoder")
            for attr in (*item_attributes, *cfg.user_attributes):
                data[attr].x = self.text_encoder.encode(node_labels(data, attr))

        data.validate(raise_on_error=True)
        return data

    # --- pieces ---

    @staticmethod
    def _entity(data: HeteroData, node_type: str, n: int, raw_ids: list[object], labels: list[str]) -> None:
        store = data[node_type]
        store.num_nodes = n
        store.node_id = torch.arange(n)
        if "node_raw_ids" not in data:
            data.node_raw_ids, data.node_labels = {}, {}
        data.node_raw_ids[node_type] = raw_ids
        data.node_labels[node_type] = labels

    @staticmethod
    def _interactions(data: HeteroData, inter: Interactions) -> None:
        edge_index = torch.from_numpy(np.stack([inter.user, inter.item]))  # [2, E]
        fwd, rev = data[INTERACTS], data[REV_INTERACTS]
        fwd.edge_index, rev.edge_index = edge_index, edge_index.flip(0)
        rating = torch.from_numpy(inter.rating)
        for store in (fwd, rev):
            store.rating = rating
            store.weight = torch.ones(len(inter))
            if inter.timestamp is not None:
                store.time = torch.from_numpy(inter.timestamp)

    def _attribute(self, data: HeteroData, dataset: Dataset, attr: str, table: pd.DataFrame) -> None:
        owner, rel, column = ATTRIBUTE_EDGES.get(attr, ("item", f"has_{attr}", attr))  # any item-table column
        if column not in table.columns:
            raise ConfigError(f"attribute {attr!r}: {dataset.name} {owner}s have no {column!r} field "
                              f"(they have {sorted(table.columns)})")
        values = table[column]
        if attr == "decade":
            values = values.map(lambda y: f"{int(y) // 10 * 10}s" if pd.notna(y) else None)
        elif attr == "year":
            values = values.map(lambda y: str(int(y)) if pd.notna(y) else None)
        elif attr == "age":
            values = _age_bucket(values, self.config.age_edges)
        exploded = values.explode()  # list cells (genres, tags, multi-valued columns) give one row per value
        exploded = exploded[exploded.notna() & (exploded.astype(str) != "")]
        # one edge per (owner, attribute); weight = how often it occurs (tag applications)
        pairs = pd.DataFrame({"owner": exploded.index.to_numpy(np.int64), "name": exploded.astype(str).to_numpy()})
        counted = pairs.groupby(["owner", "name"], sort=False).size().reset_index(name="weight")
        owners = counted["owner"].to_numpy(np.int64)
        names = counted["name"].to_numpy(dtype=object)
        weights = counted["weight"].to_numpy(np.float32)
        vocab = np.array(sorted(set(names.tolist()), key=_natural_key), dtype=object)
        index = pd.Index(vocab).get_indexer(names)
        self._entity(data, attr, len(vocab), vocab.tolist(), [str(v) for v in vocab])
        edge_index = torch.from_numpy(np.stack([owners, index.astype(np.int64)]))
        fwd_type = (owner, rel, attr)
        data[fwd_type].edge_index = edge_index
        data[fwd_type].weight = torch.from_numpy(weights)
        data[reverse(fwd_type)].edge_index = edge_index.flip(0)
        data[reverse(fwd_type)].weight = torch.from_numpy(weights)


def item_attributes_of(config: GraphConfig, dataset: Dataset) -> tuple[str, ...]:
    """The item attribute node types a graph of ``dataset`` gets: the config's, else the dataset's default."""
    return config.item_attributes if config.item_attributes is not None else dataset.default_item_attributes


def _natural_key(s: str) -> tuple[int, float, str]:
    try:
        return (0, float(s.rstrip("s")), s)
    except ValueError:
        return (1, 0.0, s)


def _user_labels(dataset: Dataset) -> list[str]:
    # "user 42"; an id that says it already ("user_26", "User-7") as it is
    return [str(u) if str(u)[:4].lower() == "user" else f"user {u}" for u in dataset.users.ids.tolist()]


def _age_bucket(ages: pd.Series, edges: tuple[int, ...]) -> pd.Series:
    bounds = [0, *edges]
    labels = [f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(bounds)] + [f"{edges[-1]}+"]
    pos = np.searchsorted(np.asarray(edges), pd.to_numeric(ages, errors="coerce").to_numpy(), side="right")
    return pd.Series(np.asarray(labels, dtype=object)[pos], index=ages.index).where(ages.notna(), None)


def _tag_lists(dataset: Dataset, min_count: int) -> pd.Series:
    """Per item, its tag list (one entry per application), tags applied fewer than ``min_count`` times left out."""
    out = np.empty(dataset.num_items, dtype=object)
    out[:] = [[] for _ in range(dataset.num_items)]
    tags = dataset.tag_assignments
    if tags is None:
        raise ConfigError(f"attribute 'tag': {dataset.name} has no tags")
    norm = tags.assign(tag=tags["tag"].str.lower())
    counts = norm.groupby("tag")["item"].transform("size")
    norm = norm[counts >= min_count]
    grouped = norm.groupby("item")["tag"].agg(list)
    out[grouped.index.to_numpy()] = grouped.to_numpy()
    return pd.Series(out)


def _user_onehots(dataset: Dataset, cfg: GraphConfig) -> torch.Tensor:
    info = dataset.user_info
    parts = []
    for column in ("occupation", "age", "gender"):
        if column not in info:
            continue
        values = _age_bucket(info["age"], cfg.age_edges) if column == "age" else info[column]
        codes, uniques = pd.factorize(values.astype(str), sort=True)
        parts.append(torch.nn.functional.one_hot(torch.from_numpy(codes.astype(np.int64)), len(uniques)).float())
    if not parts:
        raise ConfigError(f"user_features='attributes': {dataset.name} users have no occupation, age or gender")
    return torch.cat(parts, dim=1)


def _mean_of_items(inter: Interactions, num_users: int, item_x: torch.Tensor) -> torch.Tensor:
    """``[num_users, d]``: mean of the item features of each user's interactions (zeros without any).

    One sparse × dense product: memory ``O(num_users · d + interactions)``, never ``interactions × d``.
    """
    count = np.bincount(inter.user, minlength=num_users)
    weight = (1.0 / np.maximum(count, 1))[inter.user].astype(np.float32)
    mean = sp.csr_matrix((weight, (inter.user, inter.item)), shape=(num_users, item_x.shape[0]))
    return torch.from_numpy(np.asarray(mean @ item_x.numpy(), dtype=np.float32))
