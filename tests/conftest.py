from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_datasets() -> Path | None:
    """../shared/datasets (or $GRAPHREC_DATA_DIR), where CI keeps MovieLens."""
    for cand in (os.environ.get("GRAPHREC_DATA_DIR"), REPO.parent / "shared" / "datasets"):
        if cand and (Path(cand) / "ml-100k" / "u.data").is_file():
            return Path(cand)
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_datasets()
    if path is None:
        pytest.skip("MovieLens not found: set GRAPHREC_DATA_DIR to the folder holding ml-100k/")
    return path


@pytest.fixture(scope="session")
def ml100k(data_dir: Path):  # type: ignore[no-untyped-def]
    from graphrec.data import load_movielens

    return load_movielens("ml-100k", data_dir, download=False)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's real cache."""
    monkeypatch.setenv("GRAPHREC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))
