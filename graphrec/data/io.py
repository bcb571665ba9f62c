"""Reading delimited data files fast, and precisely diagnosing bad ones.

The fast path is one vectorised :func:`pandas.read_csv` call (C engine) with
explicit dtypes. Only when it fails, or yields missing values, does a second,
line-by-line pass run to find the first bad line and say what is wrong there.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from graphrec.errors import DataFormatError, DatasetNotFoundError

Kind = Literal["int", "float", "str"]
_SEP_NAMES = {"\t": "tab", ",": "comma", "|": "pipe", "::": "'::'", " ": "space", ";": "semicolon"}
_UNIT_SEP = "\x1f"


@dataclass(frozen=True)
class Field:
    """One column of a data file.

    Args:
        name: Column name in the returned frame (and in the header, if any).
        kind: ``"int"``, ``"float"`` or ``"str"``.
        required: Whether an empty value is an error (``str`` fields only;
            numeric fields are always required).
    """

    name: str
    kind: Kind
    required: bool = True


@dataclass(frozen=True)
class Source:
    """A data file on disk, or a member of a zip archive."""

    path: Path
    member: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.member}" if self.member else str(self.path)

    @property
    def name(self) -> str:
        return Path(self.member).name if self.member else self.path.name

    def exists(self) -> bool:
        if self.member is None:
            return self.path.is_file()
        try:
            with zipfile.ZipFile(self.path) as zf:
                zf.getinfo(self.member)
            return True
        except (KeyError, OSError, zipfile.BadZipFile):
            return False

    def read_bytes(self) -> bytes:
        try:
            if self.member is None:
                return self.path.read_bytes()
            with zipfile.ZipFile(self.path) as zf:
                return zf.read(self.member)
        except FileNotFoundError as exc:
            raise DatasetNotFoundError(f"{self}: file not found") from exc
        except KeyError as exc:
            raise DatasetNotFoundError(f"{self}: no such member in the archive") from exc
        except zipfile.BadZipFile as exc:
            raise DataFormatError(self.path, f"not a valid zip archive ({exc})") from exc


def read_table(
    source: Source,
    fields: Sequence[Field],
    sep: str,
    *,
    header: bool = False,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read a delimited file whose rows all have exactly ``fields``.

    Args:
        source: The file.
        fields: Every column of the file, in order.
        sep: The separator; multi-character separators (``"::"``) are
            supported without pandas' slow Python engine.
        header: Whether the first line is a header; it must then name the
            fields in order.
        encoding: The file's text encoding.

    Returns:
        A frame with int64 / float64 / object columns.

    Raises:
        DataFormatError: naming the file, the line and what was expected and
            found, for an empty file, a wrong header, a wrong number of fields,
            a non-numeric value, a missing required value or a byte sequence
            invalid in ``encoding``.
    """
    # Files on disk with a one-character separator are parsed straight from disk;
    # zip members and '::' files are read into memory first.
    direct = source.member is None and len(sep) == 1
    raw = _head(source) if direct else source.read_bytes()
    if not raw.strip() and (not direct or not _has_content(source)):
        raise DataFormatError(source, f"file is empty; expected rows of {_describe(fields, sep)}")
    names = [f.name for f in fields]
    if header:
        _check_header(source, raw, names, sep, encoding)
    read_sep = sep
    if len(sep) > 1:
        if _UNIT_SEP.encode() in raw:
            _diagnose(source, raw, fields, sep, header, encoding)
            raise DataFormatError(source, "contains the control byte 0x1f, which is not valid in this format")
        raw = raw.replace(sep.encode(), _UNIT_SEP.encode())
        read_sep = _UNIT_SEP
    dtype = {f.name: {"int": "int64", "float": "float64", "str": "object"}[f.kind] for f in fields}

    def original() -> bytes:
        if direct:
            return source.read_bytes()
        return raw if len(sep) == 1 else raw.replace(_UNIT_SEP.encode(), sep.encode())

    try:
        frame = pd.read_csv(
            source.path if direct else io.BytesIO(raw),
            sep=read_sep,
            header=0 if header else None,
            names=names,
            dtype=dtype,
            encoding=encoding,
            engine="c",
            quoting=3 if sep != "," else 0,  # QUOTE_NONE except for CSV
            keep_default_na=False,
            na_values={f.name: [""] for f in fields if f.kind == "float"},
        )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, OverflowError) as exc:
        _diagnose(source, original(), fields, sep, header, encoding)
        raise DataFormatError(source, f"could not be parsed as {_describe(fields, sep)}: {exc}") from exc
    bad = _missing_mask(frame, fields)
    if bad is not None:
        _diagnose(source, original(), fields, sep, header, encoding)
        raise DataFormatError(source, f"row {int(bad) + 1} has a missing value")
    return frame


def _head(source: Source, size: int = 1 << 16) -> bytes:
    try:
        with open(source.path, "rb") as fh:
            return fh.read(size)
    except FileNotFoundError as exc:
        raise DatasetNotFoundError(f"{source}: file not found") from exc


def _has_content(source: Source) -> bool:
    with open(source.path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            if chunk.strip():
                return True
    return False


def _missing_mask(frame: pd.DataFrame, fields: Sequence[Field]) -> int | None:
    """Position of the first row with a missing required value, else None."""
    first: int | None = None
    for f in fields:
        col = frame[f.name]
        if f.kind == "float":
            missing = col.isna().to_numpy()
        elif f.kind == "str" and f.required:
            missing = (col.isna() | (col == "")).to_numpy()
        else:
            missing = col.isna().to_numpy()
        if missing.any():
            pos = int(np.argmax(missing))
            first = pos if first is None else min(first, pos)
    return first


def _describe(fields: Sequence[Field], sep: str) -> str:
    sep_name = _SEP_NAMES.get(sep, repr(sep))
    return f"{len(fields)} {sep_name}-separated fields ({', '.join(f.name for f in fields)})"


def _check_header(source: Source, raw: bytes, names: list[str], sep: str, encoding: str) -> None:
    first = raw.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        found = _split_line(first.decode(encoding).lstrip("\ufeff"), sep)
    except UnicodeDecodeError as exc:
        raise DataFormatError(source, f"header is not valid {encoding}: {exc.reason}", line=1) from exc
    if found != names:
        raise DataFormatError(source, f"expected header {sep.join(names)!r}, found {sep.join(found)!r}", line=1)


def _diagnose(source: Source, raw: bytes, fields: Sequence[Field], sep: str, header: bool, encoding: str) -> None:
    """Raise a DataFormatError for the first bad line of ``raw``, if any.

    Only runs on the error path: a line-by-line pass is fine here.
    """
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        found = raw[exc.start : exc.start + 4]
        raise DataFormatError(
            source, f"bytes {found!r} are not valid {encoding} (wrong encoding?)", line=line
        ) from None
    lines = text.split("\n")
    for number, text_line in enumerate(lines, start=1):
        if header and number == 1:
            continue
        row = text_line.rstrip("\r")
        if not row.strip():
            continue
        values = _split_line(row, sep)
        if len(values) != len(fields):
            raise DataFormatError(
                source,
                f"expected {_describe(fields, sep)}, found {len(values)} field{'s' if len(values) != 1 else ''}",
                line=number,
            )
        for f, value in zip(fields, values, strict=False):
            problem = _check_value(f, value)
            if problem:
                raise DataFormatError(source, f"field '{f.name}' {problem}", line=number)


def _split_line(line: str, sep: str) -> list[str]:
    if sep == ",":
        import csv

        return next(csv.reader([line]))
    return line.split(sep)


def _check_value(f: Field, value: str) -> str | None:
    if f.kind == "str":
        return "is empty, expected a value" if f.required and value == "" else None
    try:
        number: float = float(value) if f.kind == "float" else int(value)
    except ValueError:
        wanted = "an integer" if f.kind == "int" else "a number"
        return f"expected {wanted}, found {value!r}"
    if f.kind == "float" and number != number:  # NaN
        return f"expected a number, found {value!r}"
    if f.kind == "int" and not (-(2**63) <= int(number) < 2**63):
        return f"integer {value!r} out of the 64-bit range"
    return None
