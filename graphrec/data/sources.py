"""Dataset sources: one registry of the formats an experiment's ``dataset:`` section may name.

Each format has a typed, frozen config (only its own keys, checked before any
data loads) whose :meth:`~SourceConfig.load` gives a :class:`Dataset`:

========== ================================================================
format     keys (besides ``name``, ``implicit_threshold``, ``k_core``)
========== ================================================================
movielens  ``data_dir`` (a MovieLens release: ``graphrec datasets list``)
lightgcn   ``path`` (a folder with ``train.txt`` and ``test.txt``), ``data_dir``
csv        ``path``, ``columns``, ``items`` (item table), ``sep``, ``data_dir``
parquet    ``path``, ``columns``, ``items``, ``data_dir``
synthetic  ``users``, ``items``, ``interactions``, ``seed``
========== ================================================================

Without ``format``, a MovieLens name is ``movielens`` and any other name takes
the format of its manifest (``datasets/<name>.yaml``). Adding a format is one
config class here plus one line in :data:`SOURCES`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from graphrec.data.dataset import Dataset, Interactions
from graphrec.data.formats import default_sep, load_interactions, load_lightgcn_format, read_parquet, table_name
from graphrec.data.manifests import get_manifest, manifests
from graphrec.data.preprocess import DuplicatePolicy, k_core, to_implicit
from graphrec.data.vocab import Vocabulary
from graphrec.errors import ConfigError, DataFormatError, DatasetNotFoundError

DEFAULT_DATASET = "ml-100k"


@dataclass(frozen=True)
class SourceConfig:
    """What every source has.

    Attributes:
        name: The dataset's name (a MovieLens release, a manifest's name, or any
            name for your own files: it names the run and the cache entries).
        format: Which source reads it (see the module docstring).
        implicit_threshold: Keep interactions rated at least this as positives;
            None keeps every interaction.
        k_core: Keep the k-core (None: no filtering).
        added: A served run's log (``<run>/serving/events.log``) whose events
            and new items are appended to the data first (``graphrec retrain``
            sets it).
    """

    name: str = DEFAULT_DATASET
    format: str = ""
    implicit_threshold: float | None = None
    k_core: int | None = None

    @property
    def rated(self) -> bool:
        """Whether the files hold ratings (explanations then say "you rated"); a source without says so."""
        return True
    added: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("name must not be empty")
        if self.k_core is not None and self.k_core < 1:
            raise ConfigError(f"k_core must be >= 1, got {self.k_core}")

    @classmethod
    def __from_mapping__(cls, values: Any, where: str) -> SourceConfig:
        """Parse a YAML ``dataset:`` section into the config class its format picks."""
        return source_config(values, where)

    def read(self, download: bool = False) -> Dataset:
        """The dataset as the files hold it (before ``implicit_threshold`` and ``k_core``)."""
        raise NotImplementedError

    def load(self, download: bool = False) -> Dataset:
        """The dataset, filtered by ``implicit_threshold`` and ``k_core``.

        Args:
            download: Fetch a public dataset into the cache when no local
                copy is found (MovieLens).
        """
        ds = self.read(download)
        if self.added:
            from graphrec.data.served import with_served_log

            ds = with_served_log(ds, self.added, self.implicit_threshold)
        ds = to_implicit(ds, self.implicit_threshold)
        if self.implicit_threshold is not None and len(ds) == 0:
            raise ConfigError(f"dataset.implicit_threshold: no interaction of {self.name} is rated {self.implicit_threshold} "
                              "or more; nothing is left")
        if self.k_core:
            before = ds
            ds = k_core(ds, self.k_core)
            if len(ds) == 0:
                raise ConfigError(f"dataset.k_core: the {self.k_core}-core of {self.name} is empty (no set of users and "
                                  f"items has {self.k_core} interactions each among them; the log has "
                                  f"{len(before):,}); lower k_core or leave it out")
        return ds

    def anchored(self) -> SourceConfig:
        """This config with each relative file or folder it names that exists from the current folder made
        absolute, so that a run's ``config.yaml`` reads the same files from any folder (``graphrec retrain``,
        ``--resume``). Paths found through the data folder stay relative: ``$GRAPHREC_DATA_DIR`` finds them.
        A separator left to the file's name is recorded as the one it reads with."""
        from dataclasses import replace

        changes: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("path", "data_dir") and isinstance(value, str) and value:
                changes[f.name] = _anchored(value)
            elif isinstance(value, ItemTable):
                changes[f.name] = replace(value, path=_anchored(value.path), sep=value.sep or default_sep(value.path))
        if any(f.name == "sep" for f in fields(self)) and getattr(self, "sep", None) is None and \
                getattr(self, "path", None):  # the separator the log is read with, recorded
            changes["sep"] = default_sep(self.path)  # type: ignore[attr-defined]
        return replace(self, **changes)

    def with_data_dir(self, data_dir: str | None) -> SourceConfig:
        """This config with ``data_dir`` replaced (the command line's ``--data-dir``)."""
        if data_dir is None:
            return self
        if "data_dir" not in {f.name for f in fields(self)}:
            raise ConfigError(f"dataset {self.name!r} ({self.format}) reads no files: --data-dir does not apply")
        from dataclasses import replace

        return replace(self, data_dir=data_dir)  # type: ignore[call-arg]


def _data_dir(data_dir: str | None) -> Path | None:
    d = data_dir or os.environ.get("GRAPHREC_DATA_DIR")
    return Path(d).expanduser() if d else None


def _anchored(path: str) -> str:
    p = Path(path).expanduser()
    return str(p.resolve()) if not p.is_absolute() and p.exists() else path


def _resolve(path: str, data_dir: str | None, key: str) -> Path:
    """``path`` as written (absolute, or relative to the current folder), else relative to the data folder
    (``data_dir``, else ``$GRAPHREC_DATA_DIR``).

    Raises:
        DatasetNotFoundError: naming ``key`` (``"dataset.path"``) and each place it looked.
    """
    p = Path(path).expanduser()
    if p.exists():
        return p
    tried = [p if p.is_absolute() else Path.cwd() / p]
    folder = _data_dir(data_dir)
    if not p.is_absolute() and folder is not None:
        if (folder / p).exists():
            return folder / p
        if (folder / p).resolve() != tried[0].resolve():  # --data-dir . is the current folder again
            tried.append(folder / p)
    where = " nor at ".join(str(t) for t in tried)
    hint = ("; a relative path is read from the current folder, then from the data folder (--data-dir or "
            f"$GRAPHREC_DATA_DIR{', neither of which is set' if folder is None else ''})") if not p.is_absolute() else ""
    raise DatasetNotFoundError(f"{key} {path!r}: not found at {where}{hint}")


@dataclass(frozen=True)
class MovieLensSource(SourceConfig):
    """A MovieLens release. Attributes: data_dir: folder with its zip or extracted folder
    (default ``$GRAPHREC_DATA_DIR``, then the cache)."""

    format: Literal["movielens"] = "movielens"
    data_dir: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        from graphrec.data.movielens import DATASETS

        if self.name not in DATASETS:
            raise ConfigError(f"name: {self.name!r} is no MovieLens release; known: {', '.join(DATASETS)}")

    def read(self, download: bool = False) -> Dataset:
        from graphrec.data.movielens import load_movielens

        return load_movielens(self.name, self.data_dir, download=download)


@dataclass(frozen=True)
class LightGCNSource(SourceConfig):
    """A folder in the LightGCN/NGCF format (``train.txt``, ``test.txt``: ``user item item ...`` per line).

    Attributes:
        path: The folder (default ``<data_dir>/<name>``).
        data_dir: Where ``path`` is looked up when relative (default ``$GRAPHREC_DATA_DIR``).
    """

    format: Literal["lightgcn"] = "lightgcn"
    path: str | None = None
    data_dir: str | None = None

    @property
    def rated(self) -> bool:
        return False

    def folder(self) -> Path:
        if self.path is not None:
            return _resolve(self.path, self.data_dir, "dataset.path")
        data_dir = _data_dir(self.data_dir)
        if data_dir is None:
            raise DatasetNotFoundError(f"dataset {self.name!r}: no path; set dataset.path, or put the folder "
                                       f"{self.name}/ in --data-dir or $GRAPHREC_DATA_DIR")
        return data_dir / self.name

    def read(self, download: bool = False) -> Dataset:
        return load_lightgcn_format(self.folder(), self.name)


@dataclass(frozen=True)
class Columns:
    """The log's column names of graphrec's fields (``rating`` and ``timestamp`` optional)."""

    user: str = "user"
    item: str = "item"
    rating: str | None = None
    timestamp: str | None = None

    def mapping(self) -> dict[str, str]:
        return {k: v for k, v in (("user", self.user), ("item", self.item), ("rating", self.rating),
                                  ("timestamp", self.timestamp)) if v is not None}


@dataclass(frozen=True)
class ItemTable:
    """An item table beside the log: one row per item.

    Attributes:
        path: CSV (``sep``) or Parquet file.
        id: Its column of item ids (the log's item ids).
        text: Columns joined into each item's text (BERT features), in order.
        attributes: Columns that become attribute nodes (``category``,
            ``brand``); a cell may hold several values separated by ``|``.
        sep: Field separator of a CSV table (default: a tab for ``.tsv``, else a comma).
    """

    path: str
    id: str = "item"
    text: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    sep: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", tuple(self.text))
        object.__setattr__(self, "attributes", tuple(self.attributes))
        both = sorted(set(self.text) & set(self.attributes))
        if both:
            raise ConfigError(f"items: {both} are both text and attributes; a column is one or the other")


@dataclass(frozen=True)
class TableSource(SourceConfig):
    """Any interaction log in a CSV or Parquet file, with an optional item table.

    Attributes:
        path: The log (``.csv``, ``.tsv``, ``.csv.gz``, ``.parquet``...).
        columns: Which columns hold user, item, rating and timestamp.
        items: The item table (text and attribute columns), if any.
        sep: Field separator of a CSV log (default: a tab for ``.tsv``, else a comma).
        duplicates: Which interaction of a repeated (user, item) pair is kept: ``"last"`` (by timestamp),
            ``"first"``, ``"max"`` (the highest rating) or ``"error"`` (refuse the log), see
            :func:`~graphrec.data.preprocess.drop_duplicates`.
        data_dir: Where relative paths are looked up when they do not exist as written (default
            ``$GRAPHREC_DATA_DIR``).
    """

    format: Literal["csv", "parquet"] = "csv"
    path: str = ""
    columns: Columns = field(default_factory=Columns)
    items: ItemTable | None = None
    sep: str | None = None
    duplicates: DuplicatePolicy = "last"
    data_dir: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.path:
            raise ConfigError(f"path: a {self.format} dataset needs the log's path")
        if self.implicit_threshold is not None and self.implicit_threshold > 1 and self.columns.rating is None:
            raise ConfigError("implicit_threshold keeps interactions rated at least that, but this log has no "
                              "ratings (columns.rating is not set): every interaction is a positive already")

    @property
    def rated(self) -> bool:
        return self.columns.rating is not None

    def read(self, download: bool = False) -> Dataset:
        path = _resolve(self.path, self.data_dir, "dataset.path")
        ds = load_interactions(path, self.columns.mapping(), sep=self.sep, name=self.name, format=self.format,
                               duplicates=self.duplicates)
        return ds if self.items is None else attach_item_table(ds, self.items, self.data_dir)


def read_item_table(table: ItemTable, data_dir: str | None = None) -> pd.DataFrame:
    """The item table's id, text and attribute columns, as strings (ConfigError / DataFormatError naming the file)."""
    path = _resolve(table.path, data_dir, "dataset.items.path")
    if not path.is_file():
        raise DatasetNotFoundError(f"dataset.items.path {table.path!r}: {path} is not a file")
    wanted = [table.id, *table.text, *table.attributes]
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = read_parquet(path)
    else:
        try:
            frame = pd.read_csv(path, sep=table.sep or default_sep(path), dtype=str, keep_default_na=False)
        except pd.errors.ParserError as exc:
            raise DataFormatError(path, f"could not be parsed: {exc}") from None
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataFormatError(path, f"no column(s) {missing}; it has {list(frame.columns)}")
    frame = frame[wanted].astype(str)
    dup = frame[table.id].duplicated()
    if dup.any():
        row = int(np.argmax(dup.to_numpy()))
        raise DataFormatError(path, f"item id {frame[table.id].iloc[row]!r} appears twice", line=row + 2)
    return frame


def attach_item_table(ds: Dataset, table: ItemTable, data_dir: str | None = None) -> Dataset:
    """``ds`` with ``item_info`` filled from the item table (text columns as they are, attributes as lists).

    Items of the log missing from the table get empty fields; table rows for
    items the log never mentions are ignored.
    """
    frame = read_item_table(table, data_dir)
    ids = [str(x) for x in ds.items.ids.tolist()]
    by_id = frame.set_index(table.id)
    aligned = by_id.reindex(ids)
    found = int(aligned.index.isin(by_id.index).sum())
    if found == 0 and ids:
        raise DataFormatError(table.path, f"none of the log's {len(ids):,} items has a row here: the log's item "
                                          f"ids are like {ids[:3]}, column '{table.id}' holds ones like "
                                          f"{frame[table.id].head(3).tolist()}")
    if found < len(ids) / 2:
        warnings.warn(f"{table.path}: only {found:,} of the log's {len(ids):,} items have a row (their titles, "
                      "texts and attributes); the others get empty ones", stacklevel=2)
    info = pd.DataFrame(index=pd.RangeIndex(ds.num_items))
    for col in table.text:
        info[col] = aligned[col].fillna("").to_numpy(dtype=object)
    for col in table.attributes:
        info[col] = [[v.strip() for v in s.split("|") if v.strip()] if isinstance(s, str) else []
                     for s in aligned[col].tolist()]
    return ds.with_item_info(info, text_fields=table.text, attributes=table.attributes)


@dataclass(frozen=True)
class SyntheticSource(SourceConfig):
    """A seeded power-law users × items log of any size (scale benchmarks and tests).

    Attributes:
        users, items: Sizes (every one has at least one interaction).
        interactions: Distinct (user, item) pairs, at most ``users × items``.
        seed: The generator's seed: the same seed gives the same log.
    """

    format: Literal["synthetic"] = "synthetic"
    users: int = 1000
    items: int = 500
    interactions: int = 20_000
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_synthetic_sizes(self.users, self.items, self.interactions)

    @property
    def rated(self) -> bool:
        return False

    def read(self, download: bool = False) -> Dataset:
        return synthetic_dataset(self.users, self.items, self.interactions, self.seed, self.name)


def check_synthetic_sizes(num_users: int, num_items: int, interactions: int) -> None:
    """Raise :class:`ConfigError` unless a synthetic log of these sizes can exist: every user and every item
    present once at least, and each (user, item) pair at most once."""
    if num_users < 1 or num_items < 1:
        raise ConfigError(f"users and items must be >= 1, got {num_users} and {num_items}")
    if not max(num_users, num_items) <= interactions <= num_users * num_items:
        raise ConfigError(f"interactions must be in [max(users, items), users × items] = "
                          f"[{max(num_users, num_items)}, {num_users * num_items}], got {interactions}")


def synthetic_dataset(num_users: int, num_items: int, interactions: int, seed: int = 0,
                      name: str = "synthetic") -> Dataset:
    """A seeded log of distinct (user, item) pairs with power-law user activity and item popularity.

    First one pair for every user and every item (so all are present), then
    pairs drawn with weights ``1 / rank^0.8`` over a random order of users and
    of items until there are ``interactions``; timestamps follow the draw
    order. The same arguments give the same log.

    Raises:
        ConfigError: No such log exists (:func:`check_synthetic_sizes`).
    """
    check_synthetic_sizes(num_users, num_items, interactions)
    rng = np.random.default_rng(seed)
    n = max(num_users, num_items)
    users = np.r_[np.arange(num_users), rng.integers(0, num_users, n - num_users)]
    items = rng.permutation(np.r_[np.arange(num_items), rng.integers(0, num_items, n - num_items)])
    base = np.unique(users.astype(np.int64) * num_items + items)
    needed = interactions - len(base)
    if interactions > num_users * num_items // 2:  # dense: draw the rest uniformly from every other pair
        rest = np.setdiff1d(np.arange(num_users * num_items, dtype=np.int64), base)
        extra = rng.choice(rest, needed, replace=False)
    else:
        pu, pi = 1.0 / np.arange(1, num_users + 1) ** 0.8, 1.0 / np.arange(1, num_items + 1) ** 0.8
        user_at, item_at = rng.permutation(num_users), rng.permutation(num_items)
        extra = np.empty(0, dtype=np.int64)
        while len(extra) < needed:
            m = 2 * (needed - len(extra)) + 16
            new = (user_at[rng.choice(num_users, m, p=pu / pu.sum())].astype(np.int64) * num_items
                   + item_at[rng.choice(num_items, m, p=pi / pi.sum())])
            extra = np.union1d(extra, np.setdiff1d(new, base))
        extra = rng.choice(extra, needed, replace=False)
    keys = np.r_[rng.permutation(base), extra]
    inter = Interactions(keys // num_items, keys % num_items, np.ones(len(keys), dtype=np.float32),
                         np.arange(len(keys), dtype=np.int64))
    return Dataset(name, inter, Vocabulary(np.arange(num_users), name="user"),
                   Vocabulary(np.arange(num_items), name="item"), implicit=True)


#: every format an experiment's ``dataset.format`` may name (one line per source)
SOURCES: dict[str, type[SourceConfig]] = {
    "movielens": MovieLensSource,
    "lightgcn": LightGCNSource,
    "csv": TableSource,
    "parquet": TableSource,
    "synthetic": SyntheticSource,
}


def source_keys(cls: type[SourceConfig]) -> list[str]:
    return [f.name for f in fields(cls)]


def source_config(values: Mapping[str, Any], where: str = "dataset") -> SourceConfig:
    """Build the typed config of a ``dataset:`` section (its format picks the class).

    Raises:
        ConfigError: an unknown name without a format, an unknown format, a
            key the format does not have (listing its keys), a wrong type or
            a value out of range.
    """
    from graphrec.config import from_dict
    from graphrec.data.movielens import DATASETS

    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping with a name, found {values!r}")
    fmt = values.get("format")
    name = values.get("name")
    if name is None:  # your own log is named by its file (clicks.csv: "clicks"), else the default dataset
        path = values.get("path")
        name = table_name(path) if fmt in ("csv", "parquet") and isinstance(path, str) and path else DEFAULT_DATASET
    if fmt is None:
        manifest = get_manifest(name) if isinstance(name, str) else None
        if isinstance(name, str) and name in DATASETS:
            fmt = "movielens"
        elif manifest is not None:
            fmt = manifest.format
        else:
            raise ConfigError(f"{where}.name: {name!r} is no known dataset (known: {', '.join(manifests())}); for your "
                              f"own files give {where}.format ({', '.join(SOURCES)}) and its path")
    if fmt not in SOURCES:
        raise ConfigError(f"{where}.format: unknown format {fmt!r}; expected one of {list(SOURCES)}")
    cls = SOURCES[fmt]
    unknown = [k for k in values if k not in source_keys(cls)]
    if unknown:
        raise ConfigError(f"{where}: a {fmt} dataset has no key(s) {unknown}; its keys: {source_keys(cls)}")
    return from_dict(cls, {**values, "name": name, "format": fmt}, where)
