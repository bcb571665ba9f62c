import pytest

from graphrec.errors import ConfigError
from graphrec.run import ExperimentConfig, dump_config, load_config


def write(tmp_path, text):
    p = tmp_path / "x.yaml"
    p.write_text(text)
    return p


def test_defaults_and_roundtrip(tmp_path):
    c = load_config(write(tmp_path, "name: t\nmodel:\n  name: mf-bpr\n  dim: 16\ntrain:\n  lr: 1e-2\n"))
    assert c.model.name == "mf-bpr" and c.model.dim == 16 and c.train.lr == 0.01
    assert c.split.ratios == (0.8, 0.1, 0.1)
    again = load_config(write(tmp_path, dump_config(c)))
    assert again == c


@pytest.mark.parametrize(("text", "message"), [
    ("model:\n  nam: lightgcn\n", r"model: unknown key\(s\) \['nam'\]"),
    ("trian:\n  epochs: 3\n", r"top level: unknown key\(s\) \['trian'\]"),
    ("train:\n  epochs: five\n", "train.epochs: expected an integer, found 'five'"),
    ("train:\n  epochs: 2.5\n", "train.epochs: expected an integer"),
    ("model:\n  name: gcn\n", r"model.name: expected one of \['mostpop'"),
    ("split:\n  ratios: [0.8, 0.2]\n", "split.ratios: expected 3 values, found 2"),
    ("dataset:\n  name: ml-2k\n", "unknown dataset 'ml-2k'"),
    ("graph:\n  user_features: all\n", "graph.user_features: expected one of"),
    ("train:\n  progress: yes please\n", "train.progress: expected true or false"),
    ("- a\n- b\n", "expected a mapping of sections"),
    ("model: [\n", "not valid YAML"),
    ("model:\n  name: graphsage\n  attribute_nodes: true\n", "model.attribute_nodes is for lightgcn and text-lightgcn"),
    ("model:\n  attribute_nodes: true\ngraph:\n  item_attributes: []\n", "model.attribute_nodes needs graph.item_attributes"),
])
def test_errors_name_file_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as exc:
        load_config(write(tmp_path, text))
    assert str(tmp_path / "x.yaml") in str(exc.value)


def test_overrides():
    c = load_config("experiments/ml100k-lightgcn.yaml", {"train.epochs": 3, "model.dim": 8})
    assert c.train.epochs == 3 and c.model.dim == 8
    with pytest.raises(ConfigError, match=r"train\.epochs: expected an integer"):
        load_config("experiments/ml100k-lightgcn.yaml", {"train.epochs": "x"})


def test_shipped_configs_are_valid():
    import glob

    paths = sorted(glob.glob("experiments/*.yaml"))
    assert len(paths) >= 10
    for p in paths:
        assert isinstance(load_config(p), ExperimentConfig)
