import json

import pytest

from graphrec.cli import main


def test_datasets_list(capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("ml-100k", "ml-1m", "ml-latest-small", "ml-25m", "ml-32m", "ml-latest"):
        assert name in out


def test_info_ml100k(data_dir, capsys):
    assert main(["datasets", "info", "ml-100k", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "users                  943" in out
    assert "items                1,682" in out
    assert "interactions       100,000" in out
    assert "34,174" in out  # ratings of 4
    assert main(["datasets", "info", "ml-100k", "--data-dir", str(data_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rating_histogram"] == {"1": 6110, "2": 11370, "3": 27145, "4": 34174, "5": 21201}
    assert info["per_user_quantiles"]["0"] == 20


def test_split_command(data_dir, tmp_path, capsys):
    assert main(["split", "ml-100k", "--data-dir", str(data_dir), "--method", "fixed", "--fixed", "u1", "--out", str(tmp_path)]) == 0
    assert "train     80,000" in capsys.readouterr().out
    assert len((tmp_path / "test.tsv").read_text().splitlines()) == 20_001


def test_errors_without_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GRAPHREC_DATA_DIR", raising=False)
    assert main(["datasets", "info", "ml-1m", "--data-dir", str(tmp_path), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: dataset 'ml-1m' was not found") and "Traceback" not in err
    bad = tmp_path / "ml-100k"
    bad.mkdir()
    for f in ("u.genre", "u.item", "u.user"):
        (bad / f).write_text("")
    (bad / "u.data").write_text("1\t2\t3\n")
    assert main(["datasets", "info", "ml-100k", "--data-dir", str(tmp_path)]) == 2
    assert "u.genre: file is empty" in capsys.readouterr().err


def test_bad_method_is_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["split", "ml-100k", "--method", "nope", "--out", "x"])
    assert exc.value.code == 2
