"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): a closed-form item-item model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch
from torch import Tensor

from graphrec.errors import ConfigError, GraphrecError
from graphrec.matrices import csr_rows
from graphrec.nn.base import ScoringModel, binary_train, check_train_shape, csr_index_tensors, resize_buffers
from graphrec.nn.spec import FloatRange, ModelConfig, ModelInputs, ModelSpec, Range

#: item × item float64 matrices alive at once while fitting (the Gram matrix, then its inverse, in place; B)
_FIT_MATRICES = 2
_BYTES = 8


def ease_weights(train: sp.csr_matrix, reg: float) -> np.ndarray:
    """The EASE item-item weights ``B [I, I]`` (float32) of a binary user × item matrix.

    .. math::
        P = (X^\\top X + \\lambda I)^{-1}, \\qquad B_{ij} = -P_{ij} / P_{jj} \\ (i \\ne j), \\qquad B_{jj} = 0

    The closed form of ``min_B ||X - XB||² + λ||B||²`` subject to ``diag(B) = 0``
    (the paper's eq. 8). ``P`` comes from a Cholesky factorisation, in place.
    """
    x = sp.csr_matrix(train, dtype=np.float64)
    x.data[:] = 1.0
    gram = (x.T @ x).toarray()  # [I, I]
    gram[np.diag_indices_from(gram)] += reg
    c, info = scipy.linalg.lapack.dpotrf(gram, lower=True, overwrite_a=True)
    if info != 0:  # pragma: no cover - X^T X + λI with λ > 0 is positive definite
        raise GraphrecError(f"EASE: the Cholesky factorisation failed (LAPACK info {info})")
    p, info = scipy.linalg.lapack.dpotri(c, lower=True, overwrite_c=True)  # P in the lower triangle
    if info != 0:  # pragma: no cover
        raise GraphrecError(f"EASE: inverting the Gram matrix failed (LAPACK info {info})")
    p = np.tril(p) + np.tril(p, -1).T
    diag = np.diag(p).copy()
    b = p / -diag[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b.astype(np.float32)


def fit_memory(num_items: int) -> int:
    """Bytes EASE needs to fit a catalogue of ``num_items`` (its dense item × item float64 matrices)."""
    return _FIT_MATRICES * num_items * num_items * _BYTES


class EASE(ScoringModel):
    """EASE: ``s(u, ·) = x_u B`` with the closed-form item-item weights of :func:`ease_weights`.

    Dense in the number of items: fitting needs about ``16 · I²`` bytes and
    the model holds ``4 · I²`` (for 10,000 items: 1.6 GB and 0.4 GB).
    :meth:`fit` checks that against the memory available and refuses with
    the largest catalogue that would fit instead of crashing.

    Args:
        reg: λ, the L2 weight (> 0).
        memory_gb: The memory EASE may use to fit, in GB (default: what the
            machine has available when ``fit`` starts).
    """

    weight: Tensor
    history_indptr: Tensor
    history_indices: Tensor

    def __init__(self, num_users: int, num_items: int, reg: float = 250.0, memory_gb: float | None = None) -> None:
        super().__init__(num_users, num_items)
        if not reg > 0:
            raise ValueError(f"reg must be > 0, got {reg}")
        self.reg, self.memory_gb = reg, memory_gb
        # unfitted: no weights (and no I × I allocation before fit() has checked the memory); every score 0
        self.register_buffer("weight", torch.zeros(0, num_items))
        self.register_buffer("history_indptr", torch.zeros(num_users + 1, dtype=torch.long))
        self.register_buffer("history_indices", torch.zeros(0, dtype=torch.long))

    def hparams(self) -> dict[str, Any]:
        return {**super().hparams(), "reg": self.reg}

    def fit(self, train: sp.csr_matrix) -> EASE:
        """Args: train: ``num_users × num_items`` CSR matrix; its non-zeros are the interactions.

        Raises:
            GraphrecError: the catalogue needs more memory than allowed, naming
                how much and the largest catalogue that fits.
        """
        from graphrec.runtime import available_memory

        check_train_shape(self, train)  # before the memory check: a wrong matrix is the first thing to name
        budget = int(self.memory_gb * 1e9) if self.memory_gb is not None else available_memory()
        need = fit_memory(self.num_items)
        if budget is not None and need > budget:
            largest = int(np.sqrt(budget / (_FIT_MATRICES * _BYTES)))
            raise GraphrecError(
                f"EASE on {self.num_items:,} items needs about {need / 1e9:.1f} GB to fit ({_FIT_MATRICES} dense "
                f"{self.num_items:,} × {self.num_items:,} float64 matrices) but {budget / 1e9:.1f} GB is "
                f"{'allowed (model.memory_gb)' if self.memory_gb is not None else 'available'}; the largest "
                f"catalogue that fits is about {largest:,} items: filter items (dataset.k_core) or use a sparse "
                "model (itemknn)")
        r = binary_train(self, train)
        dev = self.device
        self.weight = torch.from_numpy(ease_weights(r, self.reg)).to(dev)
        self.history_indptr, self.history_indices = csr_index_tensors(r, dev)
        return self

    def score_all(self, users: Tensor) -> Tensor:
        """``X_batch B``. Shapes: ``[B] → [B, I]``."""
        if self.weight.shape[0] == 0:
            return torch.zeros(len(users), self.num_items, device=self.weight.device)
        return csr_rows(self.history_indptr, self.history_indices, users, self.num_items) @ self.weight

    def score_history(self, items: Tensor) -> Tensor:
        """``Σ_j B[j, ·]`` over the given items (one given twice counts twice). Shapes: ``[H] → [I]``."""
        if self.weight.shape[0] == 0:
            return torch.zeros(self.num_items, device=self.weight.device)
        return self.weight[items.to(self.weight.device)].sum(0)

    def history_parts(self, items: Tensor) -> Tensor:
        """Row ``B[j, ·]`` of each history item ``j``. Shapes: ``[H] → [H, I]``."""
        if self.weight.shape[0] == 0:
            return torch.zeros(len(items), self.num_items, device=self.weight.device)
        return self.weight[items.to(self.weight.device)]

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, local_metadata: dict[str, Any],
                              strict: bool, missing_keys: list[str], unexpected_keys: list[str],
                              error_msgs: list[str]) -> None:
        weight = state_dict.get(prefix + "weight")
        ok = not isinstance(weight, Tensor) or tuple(weight.shape) in ((self.num_items,) * 2, (0, self.num_items))
        # a fitted model's sizes (I × I weights, its non-zeros); a weight of another shape is reported by the load
        resize_buffers(self, state_dict, prefix, ("weight", "history_indices") if ok else ("history_indices",))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


@dataclass(frozen=True)
class EASEConfig(ModelConfig):
    """Attributes:
    reg: λ, the L2 weight of the item-item weights (> 0; the paper tunes it per dataset, 100-1000).
    memory_gb: The memory EASE may use to fit, in GB (default: what is available when it fits).
    """

    name: Literal["ease"] = "ease"
    search_space: ClassVar[Mapping[str, Range]] = {"reg": FloatRange(1.0, 5000.0, log=True)}
    reg: float = 250.0
    memory_gb: float | None = None

    def __post_init__(self) -> None:
        if not self.reg > 0:
            raise ConfigError(f"reg must be > 0, got {self.reg}")
        if self.memory_gb is not None and not self.memory_gb > 0:
            raise ConfigError(f"memory_gb must be > 0, got {self.memory_gb}")


def _build(c: EASEConfig, x: ModelInputs) -> EASE:
    return EASE(x.num_users, x.num_items, reg=c.reg, memory_gb=c.memory_gb)


SPEC = ModelSpec(EASEConfig, EASE, _build, explanation="item-weights",
                 summary="closed-form item-item autoencoder (Steck, WWW 2019); dense in the number of items")
