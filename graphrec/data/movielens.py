"""MovieLens loaders: 100K, 1M, latest-small, and the ml-latest / 20M / 25M / 32M CSV layout.

Files come from (in order) a folder given by ``data_dir``, ``$GRAPHREC_DATA_DIR``,
the download cache, or, when ``download=True``, GroupLens' official address.
A folder may hold the official zip (``ml-100k.zip``) or its extracted folder
(``ml-100k/``), or be that extracted folder itself.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from graphrec.data.dataset import Dataset, Interactions, tags_per_item
from graphrec.data.download import download, fetch_text
from graphrec.data.io import Field, Source, read_table
from graphrec.data.manifests import manifests
from graphrec.data.vocab import Vocabulary
from graphrec.errors import DataFormatError, DatasetNotFoundError
from graphrec.fs import default_cache_dir

BASE_URL = "https://files.grouplens.org/datasets/movielens/"

Layout = Literal["100k", "dat", "csv"]


@dataclass(frozen=True)
class MovieLensSpec:
    """Where a MovieLens release lives and how its files are laid out.

    Attributes:
        name: graphrec's name (``"ml-100k"``).
        folder: The folder inside the official zip.
        layout: ``"100k"`` (``u.data``...), ``"dat"`` (``::``-separated, 1M) or
            ``"csv"`` (``ratings.csv``...).
        md5: The archive's published MD5; ``None`` for releases that change
            over time, whose ``.md5`` file is fetched beside the archive.
        sha256: SHA-256 of the archive where known.
        description: One line for ``graphrec datasets list``.
    """

    name: str
    folder: str
    layout: Layout
    md5: str | None
    description: str
    sha256: str | None = None

    @property
    def url(self) -> str:
        return f"{BASE_URL}{self.name}.zip"


def _from_manifests() -> dict[str, MovieLensSpec]:
    """The MovieLens releases of the dataset manifests (``datasets/ml-*.yaml``)."""
    out = {}
    for m in manifests().values():
        if m.format != "movielens":
            continue
        archive = m.checksums.get(f"{m.name}.zip", {})
        out[m.name] = MovieLensSpec(m.name, m.movielens["folder"], m.movielens["layout"],  # type: ignore[arg-type]
                                    archive.get("md5"), m.description, sha256=archive.get("sha256"))
    return out


#: the MovieLens releases graphrec can load, from their manifests
DATASETS: dict[str, MovieLensSpec] = _from_manifests()

_KEY_FILE = {"100k": "u.data", "dat": "ratings.dat", "csv": "ratings.csv"}
#: files a copy must hold to be loaded (the key file first)
_REQUIRED = {"100k": ("u.data", "u.item", "u.user", "u.genre"), "dat": ("ratings.dat", "movies.dat"),
             "csv": ("ratings.csv", "movies.csv")}

# ML-1M's users.dat codes (from its README).
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)
ML1M_AGES = {1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}


def get_spec(name: str) -> MovieLensSpec:
    """The spec of a MovieLens release; raises DatasetNotFoundError for an unknown name."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetNotFoundError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


class DatasetFiles:
    """The files of one release, in an extracted folder or inside the official zip."""

    def __init__(self, spec: MovieLensSpec, root: Path, archive: bool) -> None:
        self.spec, self.root, self.archive = spec, root, archive

    def __repr__(self) -> str:
        return f"DatasetFiles({self.spec.name!r}, {str(self.root)!r})"

    def source(self, filename: str) -> Source:
        if self.archive:
            return Source(self.root, f"{self.spec.folder}/{filename}")
        return Source(self.root / filename)

    def has(self, filename: str) -> bool:
        return self.source(filename).exists()


def search_roots(data_dir: str | Path | None) -> list[Path]:
    """Folders searched for dataset files, in order: ``data_dir`` alone when given (an explicit folder is never
    passed over for another copy), else ``$GRAPHREC_DATA_DIR`` and the cache."""
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    roots = []
    env = os.environ.get("GRAPHREC_DATA_DIR")
    if env:
        roots.append(Path(env).expanduser())
    roots.append(default_cache_dir() / "datasets")
    return roots


def locate(name: str, data_dir: str | Path | None = None) -> DatasetFiles | None:
    """Find a release's files locally, or return None.

    Raises:
        DatasetNotFoundError: a copy exists (its folder or zip) but lacks a
            file the loader needs; the message names the file.
        DataFormatError: a zip that is not a valid archive.
    """
    spec = get_spec(name)
    key = _KEY_FILE[spec.layout]
    required = _REQUIRED[spec.layout]
    for root in search_roots(data_dir):
        for folder in dict.fromkeys((root / spec.folder, root / spec.name)):
            if folder.is_dir():
                _check_complete(spec, folder, [f for f in required if not (folder / f).is_file()])
                return DatasetFiles(spec, folder, archive=False)
        if (root / key).is_file():  # the release's own folder given as the data dir
            _check_complete(spec, root, [f for f in required if not (root / f).is_file()])
            return DatasetFiles(spec, root, archive=False)
        archive = root / f"{spec.name}.zip"
        if archive.is_file():
            if not zipfile.is_zipfile(archive):
                raise DataFormatError(archive, "is not a valid zip archive; delete it to download it again")
            with zipfile.ZipFile(archive) as z:
                members = set(z.namelist())
            _check_complete(spec, archive, [f for f in required if f"{spec.folder}/{f}" not in members])
            return DatasetFiles(spec, archive, archive=True)
    return None


def _check_complete(spec: MovieLensSpec, where: Path, missing: list[str]) -> None:
    if missing:
        raise DatasetNotFoundError(
            f"{where}: this copy of {spec.name} is incomplete: {', '.join(missing)} missing. Restore the file(s), "
            f"or remove the copy (graphrec then looks elsewhere or downloads {spec.url})")


def fetch(name: str, data_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Download a release's official zip into ``data_dir`` (default: the cache).

    Returns the path of the verified archive; an existing verified archive is
    not downloaded again.
    """
    spec = get_spec(name)
    target_dir = Path(data_dir).expanduser() if data_dir is not None else default_cache_dir() / "datasets"
    dest = target_dir / f"{spec.name}.zip"
    md5 = spec.md5 or fetch_text(spec.url + ".md5").split()[0]
    if dest.is_file():
        from graphrec.fs import file_digest

        if file_digest(dest, "md5") == md5:
            return dest
    return download(spec.url, dest, md5=md5, sha256=spec.sha256, progress=progress)


def _not_found_message(name: str, data_dir: str | Path | None) -> str:
    spec = get_spec(name)
    places = "\n".join(f"  {r}" for r in search_roots(data_dir))
    return (
        f"dataset {name!r} was not found locally and could not be downloaded.\n"
        f"Put the official {spec.name}.zip, or its extracted folder {spec.folder}/, in one of:\n{places}\n"
        f"(download it from {spec.url}), or pass --data-dir / set GRAPHREC_DATA_DIR to the folder holding it."
    )


def load_movielens(name: str, data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    """Load a MovieLens release as a :class:`Dataset`.

    Args:
        name: One of :data:`DATASETS` (``"ml-100k"``, ``"ml-1m"``,
            ``"ml-latest-small"``, ``"ml-20m"``, ``"ml-25m"``, ``"ml-32m"``,
            ``"ml-latest"``).
        data_dir: A folder holding the zip or the extracted folder.
        download: Download into the cache when no local copy is found.

    Raises:
        DatasetNotFoundError: no local copy and no download possible; the
            message says where to put the files.
        DataFormatError: a file is malformed (naming file and line).
    """
    files = locate(name, data_dir)
    if files is None:
        if not download:
            raise DatasetNotFoundError(_not_found_message(name, data_dir))
        try:
            fetch(name, data_dir)
        except DatasetNotFoundError as exc:
            raise DatasetNotFoundError(f"{_not_found_message(name, data_dir)}\n(download failed: {exc})") from None
        files = locate(name, data_dir)
        if files is None:  # pragma: no cover - fetch wrote where locate looks
            raise DatasetNotFoundError(_not_found_message(name, data_dir))
    return read_movielens(files)


def read_movielens(files: DatasetFiles) -> Dataset:
    """Parse a located release."""
    layout = files.spec.layout
    if layout == "100k":
        return _read_100k(files)
    if layout == "dat":
        return _read_dat(files)
    return _read_csv(files)


# --- ML-100K -----------------------------------------------------------------

ML100K_RATING_FIELDS = [Field("user", "int"), Field("item", "int"), Field("rating", "float"), Field("timestamp", "int")]
CSV_RATING_FIELDS = [Field("userId", "int"), Field("movieId", "int"), Field("rating", "float"), Field("timestamp", "int")]


def _read_100k(files: DatasetFiles) -> Dataset:
    enc = "ISO-8859-1"
    genres = read_table(files.source("u.genre"), [Field("genre", "str"), Field("index", "int")], "|", encoding=enc)
    genre_names = genres.sort_values("index")["genre"].to_numpy()
    item_fields = [
        Field("item", "int"), Field("title", "str"), Field("release_date", "str", required=False),
        Field("video_release_date", "str", required=False), Field("imdb_url", "str", required=False),
    ] + [Field(f"g{i}", "int") for i in range(len(genre_names))]
    items = read_table(files.source("u.item"), item_fields, "|", encoding=enc)
    users = read_table(
        files.source("u.user"),
        [Field("user", "int"), Field("age", "int"), Field("gender", "str"), Field("occupation", "str"), Field("zip", "str")],
        "|", encoding=enc,
    )
    ratings = read_table(files.source("u.data"), ML100K_RATING_FIELDS, "\t", encoding=enc)

    item_vocab = Vocabulary(items["item"].to_numpy(), name="item")
    user_vocab = Vocabulary(users["user"].to_numpy(), name="user")
    flags = items[[f"g{i}" for i in range(len(genre_names))]].to_numpy()
    item_info = pd.DataFrame({
        "title": items["title"].to_numpy(dtype=object),
        "genres": _lists_from_flags(flags, genre_names),
        "year": _year(items["title"], items["release_date"]),
        "release_date": items["release_date"].to_numpy(dtype=object),
    })
    user_info = users[["age", "gender", "occupation", "zip"]].reset_index(drop=True)
    inter = _encode_ratings(files.source("u.data"), ratings, user_vocab, item_vocab)
    splits = tuple(s for s in ("u1", "u2", "u3", "u4", "u5", "ua", "ub") if files.has(f"{s}.base") and files.has(f"{s}.test"))
    return Dataset("ml-100k", inter, user_vocab, item_vocab, item_info, user_info,
                   source=files.root, fixed_splits=splits)


# --- ML-1M (::-separated .dat files) -------------------------------------------

def _read_dat(files: DatasetFiles) -> Dataset:
    enc = "ISO-8859-1"
    ratings = read_table(files.source("ratings.dat"), ML100K_RATING_FIELDS, "::", encoding=enc)
    movies = read_table(files.source("movies.dat"), [Field("item", "int"), Field("title", "str"), Field("genres", "str")],
                        "::", encoding=enc)
    item_vocab = Vocabulary(movies["item"].to_numpy(), name="item")
    item_info = pd.DataFrame({
        "title": movies["title"].to_numpy(dtype=object),
        "genres": _split_genres(movies["genres"]),
        "year": _year(movies["title"]),
    })
    if files.has("users.dat"):
        users = read_table(
            files.source("users.dat"),
            [Field("user", "int"), Field("gender", "str"), Field("age", "int"), Field("occupation", "int"), Field("zip", "str")],
            "::", encoding=enc,
        )
        occ = users["occupation"].to_numpy()
        bad = (occ < 0) | (occ >= len(ML1M_OCCUPATIONS))
        if bad.any():
            raise DataFormatError(files.source("users.dat"), f"occupation code {int(occ[bad][0])} is not in 0..20",
                                  line=int(np.argmax(bad)) + 1)
        user_vocab = Vocabulary(users["user"].to_numpy(), name="user")
        user_info = pd.DataFrame({
            "age": users["age"].to_numpy(),
            "age_group": users["age"].map(ML1M_AGES).fillna("unknown").to_numpy(dtype=object),
            "gender": users["gender"].to_numpy(dtype=object),
            "occupation": np.asarray(ML1M_OCCUPATIONS, dtype=object)[occ],
            "zip": users["zip"].to_numpy(dtype=object),
        })
    else:
        user_vocab = Vocabulary.from_values(ratings["user"].to_numpy(), name="user")
        user_info = pd.DataFrame(index=pd.RangeIndex(len(user_vocab)))
    inter = _encode_ratings(files.source("ratings.dat"), ratings, user_vocab, item_vocab)
    return Dataset(files.spec.name, inter, user_vocab, item_vocab, item_info, user_info, source=files.root)


# --- ml-latest layout (CSV with headers) ---------------------------------------

def _read_csv(files: DatasetFiles) -> Dataset:
    ratings = read_table(files.source("ratings.csv"), CSV_RATING_FIELDS, ",", header=True)
    movies = read_table(files.source("movies.csv"), [Field("movieId", "int"), Field("title", "str"), Field("genres", "str")],
                        ",", header=True)
    item_vocab = Vocabulary(movies["movieId"].to_numpy(), name="item")
    user_vocab = Vocabulary.from_values(ratings["userId"].to_numpy(), name="user")
    ratings = ratings.rename(columns={"userId": "user", "movieId": "item"})
    inter = _encode_ratings(files.source("ratings.csv"), ratings, user_vocab, item_vocab)
    item_info = pd.DataFrame({
        "title": movies["title"].to_numpy(dtype=object),
        "genres": _split_genres(movies["genres"]),
        "year": _year(movies["title"]),
    })
    tags = None
    if files.has("tags.csv"):
        raw_tags = read_table(
            files.source("tags.csv"),
            [Field("userId", "int"), Field("movieId", "int"), Field("tag", "str", required=False), Field("timestamp", "int")],
            ",", header=True,
        )
        # Tags by users without ratings, or of unknown movies, cannot be placed; they are dropped.
        u = user_vocab.encode(raw_tags["userId"].to_numpy(), unknown="mask")
        i = item_vocab.encode(raw_tags["movieId"].to_numpy(), unknown="mask")
        tags = pd.DataFrame({"user": u, "item": i, "tag": raw_tags["tag"].astype(str).str.strip().to_numpy(dtype=object),
                             "timestamp": raw_tags["timestamp"].to_numpy()})
        tags = tags[(tags["user"] >= 0) & (tags["item"] >= 0) & (tags["tag"] != "")].reset_index(drop=True)
        item_info["tags"] = tags_per_item(tags, len(item_vocab))
    return Dataset(files.spec.name, inter, user_vocab, item_vocab, item_info,
                   pd.DataFrame(index=pd.RangeIndex(len(user_vocab))), tag_assignments=tags, source=files.root)


# --- shared helpers -------------------------------------------------------------

def _encode_ratings(source: Source, ratings: pd.DataFrame, users: Vocabulary, items: Vocabulary) -> Interactions:
    """Map raw ids to indices; an id missing from the user/item table is a format error."""
    u = users.encode(ratings["user"].to_numpy(), unknown="mask")
    i = items.encode(ratings["item"].to_numpy(), unknown="mask")
    for name, idx, raw in (("user", u, ratings["user"]), ("item", i, ratings["item"])):
        if (idx < 0).any():
            row = int(np.argmax(idx < 0))
            raise DataFormatError(source, f"{name} id {raw.iloc[row]} is not in the {name} table", line=row + 1)
    return Interactions(u, i, ratings["rating"].to_numpy(np.float32), ratings["timestamp"].to_numpy(np.int64))


def _lists_from_flags(flags: np.ndarray, names: np.ndarray) -> np.ndarray:
    """Per row, the list of ``names`` whose flag is 1."""
    rows, cols = np.nonzero(flags == 1)
    grouped = pd.Series(names[cols]).groupby(rows).agg(list)
    out = np.empty(len(flags), dtype=object)
    out[:] = [[] for _ in range(len(flags))]
    out[grouped.index.to_numpy()] = grouped.to_numpy()
    return out


def _split_genres(genres: pd.Series) -> np.ndarray:
    """``"Action|Comedy"`` → ``["Action", "Comedy"]``; ``"(no genres listed)"`` → ``[]``."""
    s = genres.astype(object).where(genres != "(no genres listed)", "")
    return s.str.split("|").map(lambda xs: [x for x in xs if x]).to_numpy(dtype=object)


def _year(title: pd.Series, date: pd.Series | None = None) -> pd.Series:
    """Release year from a ``"Title (1995)"`` title, else from a ``01-Jan-1995`` date."""
    year = pd.to_numeric(title.astype(str).str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")
    if date is not None:
        from_date = pd.to_numeric(date.astype(str).str.extract(r"(\d{4})\s*$")[0], errors="coerce")
        year = year.fillna(from_date)
    return year.astype("Int64").reset_index(drop=True)
