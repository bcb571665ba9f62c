"""GF-CF (Shen et al., "How Powerful is Graph Convolution for Recommendation?", CIKM 2021): a training-free
graph filter, the normalised item-item linear filter plus an ideal low-pass filter."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg
import torch
from torch import Tensor

from graphrec.errors import ConfigError
from graphrec.matrices import csr_rows
from graphrec.nn.base import ScoringModel, binary_train, csr_index_tensors, resize_buffers
from graphrec.nn.spec import FloatRange, IntRange, ModelConfig, ModelInputs, ModelSpec, Range


def normalized_interactions(train: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """``R̃ = D_U^{-1/2} R D_I^{-1/2}`` of a binary matrix (:func:`~graphrec.nn.base.binary_train`), and the item
    degrees' ``d_I^{-1/2}`` (0 for items without interactions)."""
    r = sp.csr_matrix(train, dtype=np.float64)
    du, di = np.asarray(r.sum(axis=1)).ravel(), np.asarray(r.sum(axis=0)).ravel()
    inv_u = np.divide(1.0, np.sqrt(du), out=np.zeros_like(du), where=du > 0)
    inv_i = np.divide(1.0, np.sqrt(di), out=np.zeros_like(di), where=di > 0)
    return sp.csr_matrix(sp.diags(inv_u) @ r @ sp.diags(inv_i)), inv_i


def top_right_singular_vectors(m: sp.csr_matrix, rank: int) -> np.ndarray:
    """The ``rank`` leading right singular vectors of ``m`` as rows ``[rank, num_cols]`` (ARPACK, fixed start)."""
    v0 = np.ones(min(m.shape)) / np.sqrt(min(m.shape))  # deterministic: same fit every time
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        _, _, vt = scipy.sparse.linalg.svds(m, k=rank, v0=v0, which="LM")
    return vt


class GFCF(ScoringModel):
    """GF-CF: ``s_u = r_u (R̃ᵀR̃ + α D_I^{-1/2} V_k V_kᵀ D_I^{1/2})`` (the paper's eq. 10, as its code computes it).

    ``R̃`` is the symmetrically normalised interaction matrix and ``V_k`` its
    ``rank`` leading right singular vectors (the ideal low-pass filter). Nothing
    is trained: :meth:`fit` normalises and takes a truncated SVD (seconds). The
    item-item operator is never formed: a batch of users costs two sparse
    products with ``R̃`` and two thin dense ones with ``V_k``. A new user is
    scored from their history with the same formula (:meth:`score_history`).

    Args:
        alpha: Weight of the ideal low-pass filter (the paper: 0.3; 0 gives the
            linear filter alone).
        rank: Singular vectors kept (the paper: 256), below ``min(users, items)``.

    Shapes:
        ``norm_*``: ``R̃`` as CSR ``[U, I]`` and ``norm_t_*`` its transpose;
        ``vt [rank, I]``; ``inv_sqrt_degree [I]``.
    """

    norm_indptr: Tensor
    norm_indices: Tensor
    norm_values: Tensor
    norm_t_indptr: Tensor
    norm_t_indices: Tensor
    norm_t_values: Tensor
    vt: Tensor
    inv_sqrt_degree: Tensor
    history_indptr: Tensor
    history_indices: Tensor

    _FITTED = ("norm_indices", "norm_values", "norm_t_indices", "norm_t_values", "vt", "history_indices")

    def __init__(self, num_users: int, num_items: int, alpha: float = 0.3, rank: int = 256) -> None:
        super().__init__(num_users, num_items)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if not 1 <= rank < min(num_users, num_items):
            raise ConfigError(f"rank must be in [1, min(users, items)) = [1, {min(num_users, num_items)}), got {rank}")
        self.alpha, self.rank = alpha, rank
        long = torch.long
        for name, n in (("norm", num_users), ("norm_t", num_items)):  # unfitted: empty operators, every score 0
            self.register_buffer(f"{name}_indptr", torch.zeros(n + 1, dtype=long))
            self.register_buffer(f"{name}_indices", torch.zeros(0, dtype=long))
            self.register_buffer(f"{name}_values", torch.zeros(0))
        self.register_buffer("vt", torch.zeros(0, num_items))
        self.register_buffer("inv_sqrt_degree", torch.zeros(num_items))
        self.register_buffer("history_indptr", torch.zeros(num_users + 1, dtype=long))
        self.register_buffer("history_indices", torch.zeros(0, dtype=long))

    def hparams(self) -> dict[str, Any]:
        return {**super().hparams(), "alpha": self.alpha, "rank": self.rank}

    def fit(self, train: sp.csr_matrix) -> GFCF:
        """Args: train: ``num_users × num_items`` CSR matrix; its non-zeros are the interactions."""
        r = binary_train(self, train)
        norm, inv_i = normalized_interactions(r)
        dev = self.device

        def csr(m: sp.csr_matrix) -> tuple[Tensor, Tensor, Tensor]:
            m = sp.csr_matrix(m, dtype=np.float32)
            m.sort_indices()
            return (*csr_index_tensors(m, dev), torch.from_numpy(m.data).to(dev))

        self.norm_indptr, self.norm_indices, self.norm_values = csr(norm)
        self.norm_t_indptr, self.norm_t_indices, self.norm_t_values = csr(norm.T.tocsr())
        self.vt = torch.from_numpy(top_right_singular_vectors(norm, self.rank).astype(np.float32)).to(dev)
        self.inv_sqrt_degree = torch.from_numpy(inv_i.astype(np.float32)).to(dev)
        self.history_indptr, self.history_indices = csr_index_tensors(r, dev)
        return self

    def _sparse(self, name: str, shape: tuple[int, int]) -> Tensor:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(getattr(self, f"{name}_indptr"), getattr(self, f"{name}_indices"),
                                           getattr(self, f"{name}_values"), shape, check_invariants=False)

    def linear(self, y: Tensor) -> Tensor:
        """The normalised item-item filter ``y R̃ᵀR̃``, as two sparse products. Shapes: ``[B, I] → [B, I]``."""
        norm = self._sparse("norm", (self.num_users, self.num_items))
        norm_t = self._sparse("norm_t", (self.num_items, self.num_users))
        return torch.sparse.mm(norm_t, torch.sparse.mm(norm, y.t().contiguous())).t()

    def ideal(self, y: Tensor) -> Tensor:
        """The ideal low-pass filter ``y D_I^{-1/2} V_kᵀ V_k D_I^{1/2}``. Shapes: ``[B, I] → [B, I]``.

        Items without interactions get 0 (their ``d^{-1/2}`` is 0, and so is their ``d^{1/2}`` here).
        """
        d, sqrt_d = self._degree_scales()
        return (((y * d) @ self.vt.t()) @ self.vt) * sqrt_d

    def _degree_scales(self) -> tuple[Tensor, Tensor]:
        """``d_I^{-1/2}`` and ``d_I^{1/2}`` per item (both 0 for an item without interactions)."""
        d = self.inv_sqrt_degree
        return d, torch.where(d > 0, 1.0 / d.clamp(min=1e-12), torch.zeros_like(d))

    def filter(self, x: Tensor) -> Tensor:
        """The filter applied to histories ``x [B, I]`` (0/1 or counts): ``[B, I]`` scores."""
        if self.vt.shape[0] == 0:
            return torch.zeros_like(x)
        return self.linear(x) + self.alpha * self.ideal(x)

    def score_all(self, users: Tensor) -> Tensor:
        return self.filter(csr_rows(self.history_indptr, self.history_indices, users, self.num_items))

    def history_parts(self, items: Tensor) -> Tensor:
        """The filter of each history item's indicator row: the filter is linear in the row, so these add up to
        :meth:`score_history`. Shapes: ``[H] → [H, I]``."""
        items = items.to(self.vt.device)
        x = torch.zeros(len(items), self.num_items, device=self.vt.device)
        x[torch.arange(len(items), device=x.device), items] = 1.0
        return self.filter(x)

    def history_parts_at(self, items: Tensor, columns: Tensor) -> Tensor:
        """GF-CF's operator ``W = R̃ᵀR̃ + α D^{-1/2}VᵀV D^{1/2}`` applied to the columns once, rows picked after:
        ``(W C)[items]``, two filter passes whatever the history's length (R̃ᵀR̃ is symmetric). A subclass with
        another filter (BSPM) reads the parts row by row."""
        if type(self).filter is not GFCF.filter:
            return super().history_parts_at(items, columns)
        c = columns.to(self.vt.device, torch.float32)
        if self.vt.shape[0] == 0:
            return torch.zeros(len(items), c.shape[1], dtype=torch.float64)
        d, sqrt_d = self._degree_scales()
        wc = self.linear(c.t().contiguous()).t() + self.alpha * d[:, None] * (self.vt.t() @ (self.vt @ (sqrt_d[:, None] * c)))
        return wc[items.to(wc.device)].to(torch.float64).cpu()

    def score_history(self, items: Tensor) -> Tensor:
        x = torch.zeros(1, self.num_items, device=self.vt.device)
        x.index_add_(1, items.to(x.device), torch.ones(1, len(items), device=x.device))
        return self.filter(x)[0]

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, local_metadata: dict[str, Any],
                              strict: bool, missing_keys: list[str], unexpected_keys: list[str],
                              error_msgs: list[str]) -> None:
        resize_buffers(self, state_dict, prefix, self._FITTED)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


@dataclass(frozen=True)
class GFCFConfig(ModelConfig):
    """Attributes:
    alpha: Weight of the ideal low-pass filter (>= 0; the paper: 0.3).
    rank: Leading singular vectors of the ideal filter (>= 1, below min(users, items); the paper: 256).
    """

    name: Literal["gf-cf"] = "gf-cf"
    search_space: ClassVar[Mapping[str, Range]] = {"alpha": FloatRange(0.0, 1.0), "rank": IntRange(16, 512, log=True)}
    alpha: float = 0.3
    rank: int = 256

    def __post_init__(self) -> None:
        if self.alpha < 0:
            raise ConfigError(f"alpha must be >= 0, got {self.alpha}")
        if self.rank < 1:
            raise ConfigError(f"rank must be >= 1, got {self.rank}")


def _build(c: GFCFConfig, x: ModelInputs) -> GFCF:
    return GFCF(x.num_users, x.num_items, alpha=c.alpha, rank=c.rank)


SPEC = ModelSpec(GFCFConfig, GFCF, _build, explanation="item-weights",
                 summary="training-free graph filter: normalised item-item filter + ideal low-pass (Shen et al., "
                         "CIKM 2021); fits in seconds")


# --- BSPM: the same operators, applied as blurring and sharpening processes ---


def _ode(y: Tensor, f: Any, t: float, steps: int, solver: str) -> list[Tensor]:
    """The states at ``t·k/steps``, ``k = 1..steps``, of ``dy/dt = f(y)`` from ``y`` (Euler or classical RK4)."""
    h, out = t / steps, []
    for _ in range(steps):
        if solver == "euler":
            y = y + h * f(y)
        else:
            k1 = f(y)
            k2 = f(y + h / 2 * k1)
            k3 = f(y + h / 2 * k2)
            k4 = f(y + h * k3)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(y)
    return out


class BSPM(GFCF):
    """BSPM (Choi et al., "Blurring-Sharpening Process Models for Collaborative Filtering", SIGIR 2023).

    With ``P = R̃ᵀR̃`` (GF-CF's linear filter) and ``L = D_I^{-1/2} V_k V_kᵀ
    D_I^{1/2}`` (its ideal low-pass filter), a user's history ``r`` is
    blurred, ``dr/dt = r P − r`` for ``t ∈ [0, T_b]``, then sharpened,
    ``dr/dt = −r P`` for ``t ∈ [0, T_s]``. Early merge (``final_sharpening``)
    starts the sharpening from ``blur(T_b) + β · idl(T_idl)``, where ``idl``
    solves ``dr/dt = r L − r``; late merge adds ``β · idl`` at the end.
    ``t_point_combination`` averages the states at every solver step of both
    processes instead of taking the last. The blurring and ideal processes
    use Euler steps, the sharpening ``solver_shr`` (as the official code's
    defaults). Training-free: :meth:`fit` is GF-CF's (normalise, truncated SVD).
    """

    def __init__(self, num_users: int, num_items: int, rank: int = 448, idl_beta: float = 0.2,
                 t_idl: float = 1.0, k_idl: int = 1, t_b: float = 1.0, k_b: int = 1, t_s: float = 2.5, k_s: int = 1,
                 solver_shr: str = "rk4", final_sharpening: bool = True, t_point_combination: bool = False) -> None:
        super().__init__(num_users, num_items, alpha=0.0, rank=rank)
        if solver_shr not in ("euler", "rk4"):
            raise ConfigError(f"solver_shr must be 'euler' or 'rk4', got {solver_shr!r}")
        self.idl_beta, self.t_idl, self.k_idl, self.t_b, self.k_b = idl_beta, t_idl, k_idl, t_b, k_b
        self.t_s, self.k_s, self.solver_shr = t_s, k_s, solver_shr
        self.final_sharpening, self.t_point_combination = final_sharpening, t_point_combination

    def hparams(self) -> dict[str, Any]:
        keys = ("idl_beta", "t_idl", "k_idl", "t_b", "k_b", "t_s", "k_s", "solver_shr", "final_sharpening",
                "t_point_combination")
        return {"num_users": self.num_users, "num_items": self.num_items, "rank": self.rank,
                **{k: getattr(self, k) for k in keys}}

    def filter(self, x: Tensor) -> Tensor:
        if self.vt.shape[0] == 0:
            return torch.zeros_like(x)
        idl = _ode(x, lambda y: self.ideal(y) - y, self.t_idl, self.k_idl, "euler")[-1] if self.idl_beta else None
        blurred = _ode(x, lambda y: self.linear(y) - y, self.t_b, self.k_b, "euler")
        start = blurred[-1] + self.idl_beta * idl if self.final_sharpening and idl is not None else blurred[-1]
        sharpened = _ode(start, lambda y: -self.linear(y), self.t_s, self.k_s, self.solver_shr)
        out = torch.stack(blurred + sharpened).mean(0) if self.t_point_combination else sharpened[-1]
        if not self.final_sharpening and idl is not None:
            out = out + self.idl_beta * idl
        return out


@dataclass(frozen=True)
class BSPMConfig(ModelConfig):
    """BSPM's settings; defaults are the official code's Gowalla command (rk4, ``T_s`` 2.5, β 0.2, rank 448).

    Attributes:
        rank: Singular vectors of the ideal low-pass filter (``factor_dim``).
        idl_beta: Weight β of the ideal low-pass process.
        t_idl, k_idl, t_b, k_b, t_s, k_s: End time and solver steps of the
            ideal, blurring and sharpening processes.
        solver_shr: ``euler`` or ``rk4`` for the sharpening process.
        final_sharpening: Early merge (True) or late merge (False) of the ideal filter.
        t_point_combination: Average the states of every solver step.
    """

    name: Literal["bspm"] = "bspm"
    search_space: ClassVar[Mapping[str, Range]] = {
        "rank": IntRange(16, 512, log=True), "idl_beta": FloatRange(0.0, 1.0), "t_b": FloatRange(0.1, 5.0),
        "t_s": FloatRange(0.1, 5.0)}
    rank: int = 448
    idl_beta: float = 0.2
    t_idl: float = 1.0
    k_idl: int = 1
    t_b: float = 1.0
    k_b: int = 1
    t_s: float = 2.5
    k_s: int = 1
    solver_shr: Literal["euler", "rk4"] = "rk4"
    final_sharpening: bool = True
    t_point_combination: bool = False

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ConfigError(f"rank must be >= 1, got {self.rank}")
        if self.idl_beta < 0:
            raise ConfigError(f"idl_beta must be >= 0, got {self.idl_beta}")
        for name in ("t_idl", "t_b", "t_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("k_idl", "k_b", "k_s"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


def _build_bspm(c: BSPMConfig, x: ModelInputs) -> BSPM:
    return BSPM(x.num_users, x.num_items, rank=c.rank, idl_beta=c.idl_beta, t_idl=c.t_idl, k_idl=c.k_idl, t_b=c.t_b,
                k_b=c.k_b, t_s=c.t_s, k_s=c.k_s, solver_shr=c.solver_shr, final_sharpening=c.final_sharpening,
                t_point_combination=c.t_point_combination)


BSPM_SPEC = ModelSpec(BSPMConfig, BSPM, _build_bspm, explanation="item-weights",
                      summary="training-free blurring-sharpening process over GF-CF's filters (Choi et al., "
                              "SIGIR 2023); fits in seconds")
