"""Loaders for logs that are not MovieLens: the LightGCN/NGCF text format and any CSV/Parquet file."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from graphrec.data.dataset import Dataset, Interactions
from graphrec.data.io import Source
from graphrec.data.preprocess import DuplicatePolicy, drop_duplicates
from graphrec.data.vocab import Vocabulary
from graphrec.errors import DataFormatError, DatasetNotFoundError


def read_lightgcn_file(src: Source) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse one LightGCN-format file: each line ``user item item ...`` (non-negative ints).

    Returns:
        ``(users, items, listed_users)``: one entry per (user, item) pair, in
        file order, and every user with a line (also those with no items).
    """
    raw = src.read_bytes()
    if not raw.strip():
        raise DataFormatError(src, "file is empty; expected lines 'user item item ...'")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataFormatError(src, f"expected ASCII digits and spaces, found byte {raw[exc.start:exc.start + 1]!r}", line=line) from None
    lines = text.split("\n")
    blank = [i for i, line in enumerate(lines) if not line.strip()]
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    inner = [i for i in blank if i < last]
    if inner:
        raise DataFormatError(src, "empty line in the middle of the file; expected 'user item item ...' on every line",
                              line=inner[0] + 1)
    tokens = pd.Series(lines).str.split().explode()
    tokens = tokens[tokens.notna()]  # trailing blank lines
    bad = ~tokens.str.fullmatch(r"[0-9]+").to_numpy(dtype=bool)  # "1.5", "-3", "1e3" are no ids
    if bad.any():
        k = int(np.argmax(bad))
        raise DataFormatError(src, f"expected a non-negative integer id, found {tokens.iloc[k]!r}", line=int(tokens.index[k]) + 1)
    ids = tokens.astype(np.int64).to_numpy()
    line_no = tokens.index.to_numpy()
    is_user = np.r_[True, line_no[1:] != line_no[:-1]]
    user_of_token = ids[is_user][np.cumsum(is_user) - 1]
    return user_of_token[~is_user], ids[~is_user], ids[is_user]


def load_lightgcn_format(folder: str | Path, name: str | None = None) -> Dataset:
    """Load a dataset published in the LightGCN/NGCF format (Gowalla, Yelp2018, Amazon-Book).

    The folder holds ``train.txt`` and ``test.txt``. Interactions are implicit
    (weight 1, no timestamps); ``fixed_split(dataset, "official")`` gives the
    published train/test split.

    Raises:
        DatasetNotFoundError: a missing file.
        DataFormatError: naming the file and line: an id that is not a
            non-negative integer, an empty line in the middle, or a
            ``test.txt`` user or item that ``train.txt`` never mentions (a
            model could not have learned it).
    """
    root = Path(folder)
    parts = {}
    for part in ("train", "test"):
        src = Source(root / f"{part}.txt")
        if not src.exists():
            raise DatasetNotFoundError(f"{src}: file not found; a LightGCN-format folder holds train.txt and test.txt")
        parts[part] = read_lightgcn_file(src)
    _check_test_known(root / "test.txt", parts["train"], parts["test"])
    users = np.concatenate([parts["train"][0], parts["test"][0]])
    items = np.concatenate([parts["train"][1], parts["test"][1]])
    user_vocab = Vocabulary.from_values(np.concatenate([parts["train"][2], parts["test"][2]]), name="user")
    item_vocab = Vocabulary.from_values(items, name="item")
    inter = Interactions(user_vocab.encode(users), item_vocab.encode(items), np.ones(len(users), dtype=np.float32))
    ds = Dataset(name or root.name, inter, user_vocab, item_vocab, implicit=True, source=root, fixed_splits=("official",))
    return drop_duplicates(ds, "first")


def _check_test_known(test_path: Path, train: tuple[np.ndarray, ...], test: tuple[np.ndarray, ...]) -> None:
    """DataFormatError at the first test.txt line whose user or item train.txt never mentions."""
    src = Source(test_path)
    lines = src.read_bytes().decode("ascii").split("\n")
    known_users = np.unique(train[0])
    for what, ids, known in (("user", test[2], known_users), ("item", test[1], np.unique(train[1]))):
        unknown = ~np.isin(ids, known)
        if unknown.any():
            bad = int(ids[int(np.argmax(unknown))])
            line = next(i for i, text in enumerate(lines, 1)
                        if (text.split()[:1] if what == "user" else text.split()[1:]).count(str(bad)))
            raise DataFormatError(src, f"{what} {bad} does not occur in train.txt; every test user and item "
                                  "must have train interactions", line=line)


#: the file formats :func:`load_interactions` reads
TABLE_FORMATS = ("csv", "parquet")


def table_format(path: str | Path) -> str:
    """``"parquet"`` for a ``.parquet`` / ``.pq`` file name, else ``"csv"`` (``.csv``, ``.tsv``, ``.csv.gz``...)."""
    return "parquet" if Path(path).suffix.lower() in (".parquet", ".pq") else "csv"


def table_name(path: str | Path) -> str:
    """A log's name by its file: ``data/clicks.csv.gz`` is ``"clicks"`` (the known suffixes taken off, no more:
    ``2024.01.clicks.csv`` is ``"2024.01.clicks"``)."""
    name = Path(path).name
    for suffixes in ((".gz", ".bz2", ".xz", ".zst", ".zip"), (".csv", ".tsv", ".txt", ".parquet", ".pq")):
        for suffix in suffixes:
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                break
    return name


def default_sep(path: str | Path) -> str:
    """A text log's field separator by its name: a tab for ``.tsv`` (``.tsv.gz``...), else a comma."""
    return "\t" if ".tsv" in [s.lower() for s in Path(path).suffixes] else ","


def load_interactions(
    path: str | Path,
    columns: Mapping[str, str] | None = None,
    *,
    sep: str | None = None,
    name: str | None = None,
    duplicates: DuplicatePolicy = "last",
    format: str | None = None,
) -> Dataset:
    """Load a generic interaction log from CSV (optionally compressed) or Parquet.

    Ids are kept as written: a column whose every id is an integer in its
    own canonical spelling (``7``, not ``007`` or ``+7``) holds integers,
    any other holds strings (``"007"`` and ``"7"`` are two items).

    Args:
        path: ``.csv``, ``.tsv``, ``.csv.gz`` ... or ``.parquet``.
        columns: Maps graphrec's fields to the file's column names:
            ``{"user": "userId", "item": "movieId", "rating": "stars",
            "timestamp": "ts"}``. ``user`` and ``item`` are required (default
            names ``user`` and ``item``); without ``rating`` every interaction
            has weight 1 (implicit). Timestamps may be numbers (seconds),
            date strings (ISO 8601 or other common forms) or Parquet
            timestamps; they are read as seconds since the epoch (UTC).
        sep: Field separator of a text file (default: a tab for ``.tsv``,
            else a comma).
        duplicates: Policy for repeated (user, item) pairs, see
            :func:`~graphrec.data.preprocess.drop_duplicates`.
        format: ``"csv"`` or ``"parquet"``; default by the file name
            (:func:`table_format`).
    """
    p = Path(path)
    mapping = {"user": "user", "item": "item", **(columns or {})}
    unknown = set(mapping) - {"user", "item", "rating", "timestamp"}
    if unknown:
        raise ValueError(f"column mapping: unknown field(s) {sorted(unknown)}; expected user, item, rating, timestamp")
    fmt = format or table_format(p)
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"format must be one of {TABLE_FORMATS}, got {fmt!r}")
    if not p.is_file():
        raise DatasetNotFoundError(f"{p}: file not found")
    sep = sep or default_sep(p)
    wanted = list(mapping.values())
    lines: _Lines | None = None  # data row -> line of the file, for messages
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            have = pq.read_schema(p).names
        except pa.ArrowInvalid as exc:
            raise DataFormatError(p, f"is not a Parquet file ({exc}); for a text log say format: csv") from None
        _check_columns(p, mapping, have)
        frame = read_parquet(p, columns=wanted)
    else:
        try:
            head = pd.read_csv(p, sep=sep, nrows=0)
        except pd.errors.EmptyDataError:
            raise DataFormatError(p, "file is empty; expected a header line naming the columns") from None
        except UnicodeDecodeError as exc:
            raise DataFormatError(p, f"is not UTF-8 text ({exc.reason} at byte {exc.start}); a CSV log is UTF-8 "
                                     "text (a Parquet file: format: parquet)") from None
        have = list(head.columns)
        if len(have) == 1 and sep not in ("\t", ";") and any(c in have[0] for c in "\t;"):
            hint = "\t" if "\t" in have[0] else ";"
            raise DataFormatError(p, f"has one column {have[0]!r} split by {sep!r}; the fields look separated by "
                                     f"{hint!r}: set sep", line=1)
        _check_columns(p, mapping, have)
        try:
            # No usecols: with it the C parser ignores rows with too many fields.
            frame = pd.read_csv(p, sep=sep, engine="c")[wanted]
        except pd.errors.ParserError as exc:
            m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
            if m:
                raise DataFormatError(p, f"expected {m.group(1)} fields, found {m.group(3)}", line=int(m.group(2))) from None
            raise DataFormatError(p, f"could not be parsed: {exc}") from None
        except UnicodeDecodeError as exc:
            raise DataFormatError(p, f"not valid UTF-8 ({exc.reason}); give the file in UTF-8") from None
        lines = _Lines(p)
        _ids_as_written(p, sep, frame, [mapping["user"], mapping["item"]])
    if len(frame) == 0:
        raise DataFormatError(p, "has a header but no rows")

    def where(row: int) -> dict[str, int | None]:
        return {"line": lines.of(row)} if lines is not None else {"line": None}

    def at(row: int) -> str:
        return "" if lines is not None else f" at row {row}"

    for field in ("user", "item"):
        col = frame[mapping[field]]
        if col.isna().any():
            row = int(np.argmax(col.isna().to_numpy()))
            raise DataFormatError(p, f"column '{mapping[field]}' ({field}) is empty{at(row)}", **where(row))
    user_ids, item_ids = _ids(frame[mapping["user"]]), _ids(frame[mapping["item"]])
    if "rating" in mapping:
        rating = _numeric(p, frame[mapping["rating"]], mapping["rating"], where, at)
    else:
        rating = np.ones(len(frame), dtype=np.float64)
    ts = None
    if "timestamp" in mapping:
        ts = _timestamps(p, frame[mapping["timestamp"]], mapping["timestamp"], where, at)
    user_vocab = Vocabulary.from_values(user_ids, name="user")
    item_vocab = Vocabulary.from_values(item_ids, name="item")
    inter = Interactions(user_vocab.encode(user_ids), item_vocab.encode(item_ids), rating, ts)
    ds = Dataset(name or table_name(p), inter, user_vocab, item_vocab, implicit="rating" not in mapping, source=p)
    return drop_duplicates(ds, duplicates)


class _Lines:
    """The file line of a CSV data row: its index plus the header line, plus the blank lines before it (which
    the parser skips). The file is read again only when a message needs a line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def of(self, row: int) -> int:
        from pandas.io.common import get_handle

        seen = -1
        with get_handle(self.path, "r", compression="infer", encoding="utf-8", errors="replace") as handle:
            for line_no, line in enumerate(handle.handle, 1):
                if line_no == 1 or not line.strip():  # the parser skips blank (and whitespace-only) lines
                    continue
                seen += 1
                if seen == row:
                    return line_no
        return row + 2


_POWERS_OF_TEN = np.array([10**k for k in range(20)], dtype=np.uint64)


def _ids_as_written(p: Path, sep: str, frame: pd.DataFrame, columns: list[str]) -> None:
    """Where the parser read an id column as numbers, check the file's own text: unless every id is an
    integer in its canonical spelling, the column becomes the strings as written (``"007"`` stays ``"007"``,
    not the 7 that ``"7"`` also is). One extra read of those columns, as text, by Arrow.

    An integer column's text is canonical exactly when each id is as long as its digits (leading zeros, a
    sign or spaces add characters). A column pandas read as floats is canonical where every id is an
    integer, written plain or with a ``.0`` (``7.0``: as pandas writes integer ids it holds as floats), and
    stays numbers (integers, as a Parquet column of whole floats does). A column with an empty cell is left
    alone: the loader's "is empty" error names it.
    """
    numeric = [c for c in dict.fromkeys(columns) if frame[c].dtype.kind in "iuf" and not frame[c].hasnans]
    if not numeric:
        return
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    text: dict[str, pa.ChunkedArray | pa.Array] = {}
    try:
        if len(sep) != 1:
            raise ValueError("a multi-character separator")
        table = pcsv.read_csv(p, parse_options=pcsv.ParseOptions(delimiter=sep),
                              convert_options=pcsv.ConvertOptions(include_columns=numeric,
                                                                  column_types=dict.fromkeys(numeric, pa.string())))
        if table.num_rows != len(frame):
            raise ValueError("another count of rows")
        text = {c: table[c] for c in numeric}
    except (ValueError, pa.ArrowException):  # what pandas parsed, Arrow does not: read the columns as text
        raw = pd.read_csv(p, sep=sep, engine="c", dtype=dict.fromkeys(numeric, str), keep_default_na=False)
        text = {c: pa.array(raw[c].to_numpy(dtype=object), type=pa.string()) for c in numeric}
    for c in numeric:
        values = frame[c].to_numpy()
        if values.dtype.kind in "iu":
            # |v| as uint64 (the wrap of abs(-2**63) is 2**63 there), its digits by exact powers of ten
            magnitude = values.astype(np.uint64) if values.dtype.kind == "u" else \
                np.abs(values.astype(np.int64)).astype(np.uint64)
            digits = np.maximum(np.searchsorted(_POWERS_OF_TEN, magnitude, side="right"), 1)
            canonical = bool(np.array_equal(digits + (values < 0), pc.utf8_length(text[c]).to_numpy()))
        else:  # rare: floats; each text checked whole
            canonical = bool(pc.all(pc.match_substring_regex(text[c], r"^-?(0|[1-9][0-9]*)(\.0)?$")).as_py())
        if not canonical:
            frame[c] = text[c].to_pandas().to_numpy(dtype=object)


_ARROW_POOL_LOCK = threading.Lock()


@contextmanager
def _system_arrow_pool() -> Iterator[None]:
    """Arrow allocates from the C library's malloc inside the block (its default pool is restored after).

    The PyPI wheels' default pool (mimalloc) maps fresh pages for each large
    column a process reads first: the first load of a 5M-row Parquet log in a
    fresh process took 0.86 s (median of 6) against 0.36 s with the system
    pool; at 1M rows both take 0.1 s (``experiments/bench_scale.py``'s load
    stage). The pool is process-wide, so reads through here take a lock:
    two threads reading at once cannot leave the system pool set.
    """
    import pyarrow as pa

    with _ARROW_POOL_LOCK:
        previous = pa.default_memory_pool()
        pa.set_memory_pool(pa.system_memory_pool())
        try:
            yield
        finally:
            pa.set_memory_pool(previous)


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet file as a DataFrame, its buffers from the system allocator (see :func:`_system_arrow_pool`)."""
    with _system_arrow_pool():
        return pd.read_parquet(path, columns=columns)


def _check_columns(p: Path, mapping: Mapping[str, str], have: list[str]) -> None:
    for field, column in mapping.items():
        if column not in have:
            raise DataFormatError(p, f"column '{column}' (mapped to {field}) not found; the file has columns {have}", line=1)


def _ids(col: pd.Series) -> np.ndarray:
    if col.dtype.kind in "iu":
        return col.to_numpy(np.int64)
    if col.dtype.kind == "f" and (col == col.round()).all():
        return col.to_numpy(np.int64)
    return col.astype(str).to_numpy(dtype=object)


def _numeric(p: Path, col: pd.Series, name: str, where, at) -> np.ndarray:  # type: ignore[no-untyped-def]
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataFormatError(p, f"column '{name}' expected a number{at(row)}, found {_cell(col, row)}", **where(row))
    return values.to_numpy(np.float64)


def _timestamps(p: Path, col: pd.Series, name: str, where, at) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Seconds since the epoch (UTC) of numbers, Parquet timestamps or date strings (ISO 8601 first, then any
    form pandas reads); a DataFormatError at the first value that is none of them."""
    if col.dtype.kind in "iu" and not col.hasnans:  # seconds already (a nullable Int64 may have gaps)
        return col.to_numpy(np.int64)
    if col.dtype.kind == "M":  # a Parquet timestamp column (any unit, with or without a time zone)
        if col.hasnans:
            row = int(np.argmax(col.isna().to_numpy()))
            raise DataFormatError(p, f"column '{name}' has an empty timestamp{at(row)}", **where(row))
        return _epoch_seconds(col.dt.tz_localize("UTC") if col.dt.tz is None else col)
    values = pd.to_numeric(col, errors="coerce")
    if col.dtype.kind not in "iuf" and values.isna().all():  # dates: ISO 8601, else any form pandas reads
        parsed = pd.to_datetime(col, errors="coerce", utc=True, format="ISO8601")
        if parsed.isna().any():
            parsed = pd.to_datetime(col, errors="coerce", utc=True, format="mixed")
        bad = parsed.isna().to_numpy()
        if bad.any():
            row = int(np.argmax(bad))
            raise DataFormatError(p, f"column '{name}' expected a date or seconds since the epoch{at(row)}, "
                                     f"found {_cell(col, row)}", **where(row))
        return _epoch_seconds(parsed)
    return _numeric(p, col, name, where, at).astype(np.int64)


def _epoch_seconds(stamps: pd.Series) -> np.ndarray:
    """Whole seconds since the epoch of time-zone-aware timestamps."""
    return ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)


def _cell(col: pd.Series, row: int) -> str:
    """A cell as a message quotes it: its value, or that it is empty."""
    return "an empty cell" if pd.isna(col.iloc[row]) else repr(col.iloc[row])
