"""Every Python snippet of the README runs verbatim, in order, in one namespace (as a reader would paste them)."""

import os
import re

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def snippets() -> list[tuple[int, str]]:
    text = (REPO / "README.md").read_text()
    return [(text[: m.start()].count("\n") + 1, m.group(1)) for m in FENCE.finditer(text)]


def test_the_readme_has_snippets():
    assert len(snippets()) >= 6


def test_readme_snippets_run_verbatim(tmp_path, data_dir, monkeypatch):
    """Run from a folder whose ``../shared/datasets`` is the datasets folder, as in this project's layout."""
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "datasets").symlink_to(data_dir)
    monkeypatch.chdir(work)
    # the serving snippet reads the run `make demo` leaves; a short one stands in for it
    from graphrec.run import load_config, run_experiment

    demo = load_config(REPO / "experiments" / "ml100k-lightgcn.yaml",
                       {"train.epochs": 2, "train.progress": False, "dataset.data_dir": str(data_dir)})
    run_experiment(demo, work / "runs" / "demo-ml100k-lightgcn", log=lambda *_: None)
    monkeypatch.setenv("GRAPHREC_DATA_DIR", str(data_dir))
    namespace: dict[str, object] = {"__name__": "readme"}
    for line, code in snippets():
        try:
            exec(compile(code, f"README.md:{line}", "exec"), namespace)
        except Exception as exc:
            pytest.fail(f"the README snippet at line {line} fails: {type(exc).__name__}: {exc}")
    assert os.path.isfile(work / "why.png") and os.path.isfile(work / "split" / "train.tsv")
