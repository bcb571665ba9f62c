"""The model registry: one declaration per model, looked up by name everywhere else."""

from dataclasses import dataclass
from typing import Literal

import pytest
import torch
from torch import nn

from graphrec.errors import ConfigError
from graphrec.nn import ScoringModel, bpr_loss
from graphrec.nn.registry import MODELS, model_config, model_spec, spec_of
from graphrec.nn.spec import ModelConfig, ModelInputs, ModelSpec, Needs
from tests.nn.test_conformance import TRAIN, N, inputs


def test_every_entry_is_keyed_by_its_config_name():
    for name, spec in MODELS.items():
        assert spec.name == name == spec.config().name
        assert spec.summary
        assert issubclass(spec.model, ScoringModel)


def test_unknown_name_lists_the_known_models():
    with pytest.raises(ConfigError, match=r"model.name: unknown model 'gcn'; known models: mostpop, itemknn"):
        model_config({"name": "gcn"})
    with pytest.raises(ConfigError, match="unknown model 'gcn'"):
        model_spec("gcn")


def test_a_key_of_another_model_is_named_with_the_models_keys():
    with pytest.raises(ConfigError) as err:
        model_config({"name": "lightgcn", "fanouts": [5, 5]})
    assert str(err.value) == ("model: lightgcn has no key(s) ['fanouts']; its keys: "
                              "['dim', 'num_layers', 'reg', 'item_features', 'attribute_nodes']")
    with pytest.raises(ConfigError, match=r"mostpop has no key\(s\) \['dim'\]; its keys: none"):
        model_config({"name": "mostpop", "dim": 8})


@pytest.mark.parametrize(("values", "message"), [
    ({"name": "mf-bpr", "dim": 0}, "dim must be >= 1, got 0"),
    ({"name": "lightgcn", "reg": -1.0}, "reg must be >= 0"),
    ({"name": "lightgcn", "num_layers": -1}, "num_layers must be >= 0"),
    ({"name": "lightgcn", "item_features": "images"}, r"model.item_features: expected one of \['none', 'text'\]"),
    ({"name": "itemknn", "k": 0}, "k must be >= 1"),
    ({"name": "graphsage", "num_layers": 0}, "num_layers must be >= 1"),
    ({"name": "graphsage", "fanouts": [5]}, r"fanouts needs one entry per layer \(num_layers = 2\), found \[5\]"),
    ({"name": "graphsage", "fanouts": [5, 0]}, "each must be >= 1, or -1"),
    ({"name": "graphsage", "dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ({"name": "mf-bpr", "dim": "64"}, "model.dim: expected an integer"),
])
def test_ranges_and_types_are_checked(values, message):
    with pytest.raises(ConfigError, match=message):
        model_config(values)


def test_needs_follow_the_configuration():
    assert model_config({"name": "lightgcn"}).needs() == Needs(adjacency=True)
    assert model_config({"name": "lightgcn", "item_features": "text", "attribute_nodes": True}).needs() == Needs(
        adjacency=True, item_text=True, attribute_nodes=True)
    assert model_config({"name": "graphsage"}).needs() == Needs(graph=True, item_text=True)
    assert model_config({"name": "itemknn"}).needs() == Needs()


def test_missing_input_is_named():
    config = model_config({"name": "lightgcn", "item_features": "text"})
    with pytest.raises(ConfigError, match=r"model 'lightgcn' is built from \['item_text'\]"):
        MODELS["lightgcn"].create(config, ModelInputs(N, N, train=TRAIN, adjacency=inputs().adjacency))
    with pytest.raises(ConfigError, match="expected a LightGCNConfig, got MFBPRConfig"):
        MODELS["lightgcn"].create(model_config({"name": "mf-bpr"}), inputs())


def test_spec_of_finds_the_entry_of_a_model():
    model = MODELS["mf-bpr"].create(model_config({"name": "mf-bpr", "dim": 4}), inputs())
    assert spec_of(model) is MODELS["mf-bpr"]
    assert spec_of(ScoringModel(2, 2)) is None


# --- adding a model: one module (below) and one registry line (monkeypatched in) ---


class ItemBias(ScoringModel):
    """A learned score per item, the same for every user (a trainable popularity)."""

    trainable = True

    def __init__(self, num_users: int, num_items: int, reg: float = 0.0) -> None:
        super().__init__(num_users, num_items)
        self.reg = reg
        self.bias = nn.Parameter(torch.zeros(num_items))

    def hparams(self):
        return {**super().hparams(), "reg": self.reg}

    def score_all(self, users):
        return self.bias.unsqueeze(0).expand(len(users), -1)

    def score_history(self, items):
        return self.bias.detach().clone()

    def loss(self, users, pos_items, neg_items):
        return bpr_loss(self.bias[pos_items], self.bias[neg_items]) + self.reg * self.bias.pow(2).mean()


@dataclass(frozen=True)
class ItemBiasConfig(ModelConfig):
    """Attributes: reg: L2 weight on the biases."""

    name: Literal["item-bias"] = "item-bias"
    reg: float = 0.0

    def __post_init__(self) -> None:
        if self.reg < 0:
            raise ConfigError(f"reg must be >= 0, got {self.reg}")


ITEM_BIAS = ModelSpec(ItemBiasConfig, ItemBias, lambda c, x: ItemBias(x.num_users, x.num_items, reg=c.reg),
                      summary="a learned score per item")


@pytest.fixture
def item_bias(monkeypatch):
    monkeypatch.setitem(MODELS, "item-bias", ITEM_BIAS)  # the registry line


def test_an_added_model_is_parsed_and_listed(item_bias, tmp_path):
    from graphrec.cli import models_help
    from graphrec.run import load_config

    f = tmp_path / "e.yaml"
    f.write_text("model:\n  name: item-bias\n  reg: 0.5\ntrain:\n  epochs: 2\n")
    assert load_config(f).model == ItemBiasConfig(reg=0.5)
    f.write_text("model:\n  name: item-bias\n  dim: 8\n")
    with pytest.raises(ConfigError, match=r"item-bias has no key\(s\) \['dim'\]; its keys: \['reg'\]"):
        load_config(f)
    assert "item-bias: a learned score per item\n      keys: reg=0.0" in models_help()


@pytest.mark.slow
def test_an_added_model_runs_end_to_end(item_bias, tmp_path, data_dir):
    from graphrec.run import load_config, load_run, run_experiment

    f = tmp_path / "e.yaml"
    f.write_text("dataset:\n  name: ml-100k\nmodel:\n  name: item-bias\ntrain:\n  epochs: 2\n  progress: false\n")
    cfg = load_config(f, {"dataset.data_dir": str(data_dir)})
    run_dir, metrics = run_experiment(cfg, tmp_path / "run", log=lambda *_: None)
    assert metrics["epochs_run"] == 2 and metrics["test"]["recall@20"] > 0.05  # learns popularity; chance is 0.013
    _, _, model = load_run(run_dir)
    assert isinstance(model, ItemBias)
