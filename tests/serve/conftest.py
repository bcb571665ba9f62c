"""Finished runs of the tiny shop log (tests/data/test_sources.shop_files), shared by the serving tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.run.test_bundle import shop_run


@pytest.fixture(scope="session")
def shop_runs(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """``name -> pristine run directory`` (each trained once per session; copy before serving it)."""
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            run_dir, _, _, _ = shop_run(tmp_path_factory.mktemp(f"shop-{name}"), name)
            cache[name] = run_dir
        return cache[name]

    return get


@pytest.fixture
def served(shop_runs, tmp_path):  # type: ignore[no-untyped-def]
    """A fresh copy of a shop run (its serving log empty): ``served("lightgcn")``."""

    def copy(name: str) -> Path:
        dest = tmp_path / f"run-{name}"
        shutil.copytree(shop_runs(name), dest)
        return dest

    return copy
