"""Dataset manifests: one small YAML file per public dataset, in the repository's ``datasets/`` folder.

A manifest holds what a user needs to obtain and cite a dataset, never its
data: the official address, checksums of the files, the format graphrec reads
it in, the licence note and the citation. ``graphrec datasets list`` shows
them; an experiment's ``dataset: {name: gowalla}`` takes the format from the
manifest. Manifests are read from ``$GRAPHREC_DATASETS`` (folders separated
by ``os.pathsep``; a user's own datasets) and then from the ``datasets/``
folder beside the ``graphrec`` package (a checkout or an editable install),
then from ``<prefix>/share/graphrec/datasets`` (where a wheel installs them).

Schema (``datasets/gowalla.yaml``)::

    name: gowalla
    format: lightgcn                 # movielens | lightgcn | csv | parquet
    description: one line
    homepage: https://...
    archive: https://...             # where the files are published
    checksums:                       # per file: md5, sha256 and/or git_blob_sha1
      train.txt: {git_blob_sha1: a27782bd...}
    fixed_splits: [official]         # official splits the source ships
    licence: ...
    citation: ...
    movielens: {folder: ml-100k, layout: 100k}   # movielens format only
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from graphrec.errors import ConfigError
from graphrec.fs import file_digest

#: the formats a manifest may name (the sources of :mod:`graphrec.data.sources`, synthetic aside)
MANIFEST_FORMATS = ("movielens", "lightgcn", "csv", "parquet")
CHECKSUM_KINDS = ("md5", "sha256", "git_blob_sha1")
_KEYS = ("name", "format", "description", "homepage", "archive", "checksums", "fixed_splits", "licence", "citation",
         "movielens")


@dataclass(frozen=True)
class Manifest:
    """One public dataset's card (see the module docstring for the YAML schema).

    Attributes:
        path: The manifest file it was read from.
    """

    name: str
    format: str
    description: str
    homepage: str
    archive: str
    licence: str
    citation: str
    checksums: dict[str, dict[str, str]] = field(default_factory=dict)
    fixed_splits: tuple[str, ...] = ()
    movielens: dict[str, str] = field(default_factory=dict)
    path: Path | None = None


def manifest_dirs() -> list[Path]:
    """Where manifests are read from, first match of a name wins."""
    env = os.environ.get("GRAPHREC_DATASETS")
    dirs = [Path(p).expanduser() for p in env.split(os.pathsep) if p] if env else []
    installed = Path(sys.prefix) / "share" / "graphrec" / "datasets"  # a wheel's copy (pyproject data-files)
    return [*dirs, Path(__file__).resolve().parents[2] / "datasets", installed]


def read_manifest(path: Path) -> Manifest:
    """Parse and check one manifest; ConfigError names the file and the key."""
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of manifest keys")
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; a manifest has {list(_KEYS)}")
    missing = [k for k in ("name", "format", "description", "homepage", "archive", "licence", "citation") if not raw.get(k)]
    if missing:
        raise ConfigError(f"{path}: missing {missing}")
    if raw["name"] != path.stem:
        raise ConfigError(f"{path}: name {raw['name']!r} differs from the file name {path.stem!r}")
    if raw["format"] not in MANIFEST_FORMATS:
        raise ConfigError(f"{path}: format {raw['format']!r}; expected one of {list(MANIFEST_FORMATS)}")
    checksums = raw.get("checksums") or {}
    for f, sums in checksums.items():
        bad = sorted(set(sums) - set(CHECKSUM_KINDS)) if isinstance(sums, dict) else [repr(sums)]
        if bad:
            raise ConfigError(f"{path}: checksums of {f}: unknown {bad}; expected some of {list(CHECKSUM_KINDS)}")
    if raw["format"] == "movielens" and set(raw.get("movielens") or {}) != {"folder", "layout"}:
        raise ConfigError(f"{path}: a movielens manifest needs movielens: {{folder: ..., layout: 100k|dat|csv}}")
    values: dict[str, Any] = {k: raw[k] for k in raw}
    values["fixed_splits"] = tuple(str(s) for s in raw.get("fixed_splits") or ())
    values["checksums"] = {str(f): {k: str(v) for k, v in s.items()} for f, s in checksums.items()}
    values["movielens"] = {k: str(v) for k, v in (raw.get("movielens") or {}).items()}
    return Manifest(**values, path=path)


@functools.lru_cache(maxsize=8)
def _manifests(dirs: tuple[Path, ...]) -> dict[str, Manifest]:
    out: dict[str, Manifest] = {}
    for d in dirs:
        for path in sorted(d.glob("*.yaml")) if d.is_dir() else ():
            m = read_manifest(path)
            out.setdefault(m.name, m)
    return out


def manifests() -> dict[str, Manifest]:
    """Every manifest found, by name (``$GRAPHREC_DATASETS`` first, then the repository's ``datasets/``)."""
    return dict(_manifests(tuple(manifest_dirs())))


def get_manifest(name: str) -> Manifest | None:
    return manifests().get(name)


def verify_files(manifest: Manifest, folder: Path) -> dict[str, str]:
    """Check the files of ``folder`` against the manifest's checksums: ``{file: "ok" | "differs" | "missing"}``.

    Only files the manifest lists checksums for, with every kind it lists.
    """
    out: dict[str, str] = {}
    for name, sums in manifest.checksums.items():
        path = folder / name
        if not path.is_file():
            out[name] = "missing"
            continue
        out[name] = "ok" if all(file_digest(path, kind) == value for kind, value in sums.items()) else "differs"
    return out
