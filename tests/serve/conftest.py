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


@pytest.fixture(scope="session")
def ml100k_pristine(data_dir, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A finished ML-100K run with integer ids (MF-BPR, a few epochs: quick and an embedding model)."""
    from graphrec.run import load_config, run_experiment

    root = tmp_path_factory.mktemp("ml100k")
    exp = root / "exp.yaml"
    exp.write_text(f"name: serve-ml100k\ndataset:\n  name: ml-100k\n  data_dir: {data_dir}\n"
                   "model:\n  name: mf-bpr\n  dim: 16\n"
                   "train:\n  epochs: 2\n  batch_size: 4096\n  progress: false\n  threads: 1\n")
    run_dir, _ = run_experiment(load_config(exp), root / "run", log=lambda *_: None)
    return run_dir


@pytest.fixture
def ml100k_run(ml100k_pristine, tmp_path):  # type: ignore[no-untyped-def]
    dest = tmp_path / "ml100k-run"
    shutil.copytree(ml100k_pristine, dest)
    return dest
