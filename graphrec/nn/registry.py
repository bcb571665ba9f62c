"""The model registry: each model's name, typed config, inputs and builder, declared once.

A model module defines, beside the model, a frozen config dataclass that
subclasses :class:`ModelConfig` (only that model's hyperparameters, validated
in ``__post_init__``) and one :class:`ModelSpec`. :data:`MODELS` lists the
specs; everything that needs a model by name (``graphrec run``, the
experiment files, the conformance suite, the explainer) looks it up here.

Adding a model (say ``my-model``):

1. ``graphrec/nn/my_model.py``: the :class:`~graphrec.nn.ScoringModel`
   subclass, ``MyModelConfig(ModelConfig)`` (:mod:`graphrec.nn.spec`) with
   ``name: Literal["my-model"] = "my-model"`` and its hyperparameters, and
   ``SPEC = ModelSpec(MyModelConfig, MyModel, build=..., summary=...)``;
2. one line in :data:`MODELS` below.

``graphrec run``, ``load_config`` and the conformance suite
(``tests/nn/test_conformance.py``) then know it with no other edit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphrec.errors import ConfigError
from graphrec.nn import baselines, ease, gfcf, lightgcn, sage, simgcl
from graphrec.nn.base import ScoringModel
from graphrec.nn.spec import ModelConfig, ModelSpec

#: every model graphrec can run, by name (one line per model)
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    baselines.MOSTPOP_SPEC,
    baselines.ITEMKNN_SPEC,
    baselines.MFBPR_SPEC,
    ease.SPEC,
    gfcf.SPEC,
    gfcf.BSPM_SPEC,
    lightgcn.SPEC,
    simgcl.SIMGCL_SPEC,
    simgcl.XSIMGCL_SPEC,
    sage.SPEC,
)}
#: the model an experiment runs when its ``model:`` section names none
DEFAULT_MODEL = "lightgcn"


def model_spec(name: str) -> ModelSpec:
    """The registry entry of ``name``; ConfigError listing the known names otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None


def spec_of(model: ScoringModel) -> ModelSpec | None:
    """The registry entry whose model class ``model`` is (or derives from); None for unregistered models."""
    for cls in type(model).__mro__:
        for spec in MODELS.values():
            if spec.model is cls:
                return spec
    return None


def model_config(values: Mapping[str, Any], where: str = "model") -> ModelConfig:
    """Build the typed config of ``values["name"]`` from a plain mapping (a YAML ``model:`` section).

    Raises:
        ConfigError: an unknown name (listing the known ones), a key the model
            does not have (listing its keys), a wrong type or a value out of range.
    """
    from graphrec.config import from_dict

    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping with a name, found {values!r}")
    name = values.get("name", DEFAULT_MODEL)
    if not isinstance(name, str):
        raise ConfigError(f"{where}.name: expected a string, found {name!r}")
    if name not in MODELS:
        raise ConfigError(f"{where}.name: unknown model {name!r}; known models: {', '.join(MODELS)}")
    spec = MODELS[name]
    unknown = [k for k in values if k != "name" and k not in spec.keys()]
    if unknown:
        raise ConfigError(f"{where}: {name} has no key(s) {unknown}; its keys: {spec.keys() or 'none'}")
    return from_dict(spec.config, {**values, "name": name}, where)
