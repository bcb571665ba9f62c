"""Checkpoints: model, optimizer, RNG states and progress, written atomically."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from graphrec.fs import atomic_path


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every RNG state a run touches, in types that ``torch.load(weights_only=True)`` accepts.

    The legacy global numpy and python generators are saved too: user code and
    libraries may draw from them.
    """
    py = random.getstate()
    np_state = cast(tuple[Any, ...], np.random.get_state(legacy=True))  # noqa: NPY002 (the global state is what must be restored)
    state: dict[str, Any] = {
        "generator": generator.get_state(),
        "torch": torch.get_rng_state(),
        "python": list(py[1]),
        "python_pos": py[2],
        "numpy": np.asarray(np_state[1]).tolist(),
        "numpy_pos": int(np_state[2]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    np.random.set_state(("MT19937", np.asarray(state["numpy"], dtype=np.uint32), state["numpy_pos"], 0, 0.0))  # noqa: NPY002
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` with :func:`torch.save`, atomically (a crash leaves the previous file)."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code from the file)."""
    return torch.load(path, map_location=map_location, weights_only=True)
