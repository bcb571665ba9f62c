"""Baselines every results table shows: MostPopular, ItemKNN (cosine) and MF-BPR."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from graphrec.errors import ConfigError
from graphrec.matrices import csr_rows
from graphrec.nn.base import (
    ScoringModel,
    binary_train,
    bpr_loss,
    check_train_shape,
    csr_index_tensors,
    l2_reg,
    resize_buffers,
)
from graphrec.nn.spec import FloatRange, IntRange, ModelConfig, ModelSpec, Range, check_dim_reg


class MostPopular(ScoringModel):
    """Scores every item by its number of train interactions, the same for every user."""

    popularity: Tensor

    def __init__(self, num_users: int, num_items: int) -> None:
        super().__init__(num_users, num_items)
        self.register_buffer("popularity", torch.zeros(num_items))

    def fit(self, train: sp.csr_matrix) -> MostPopular:
        """Args: train: binary ``num_users × num_items`` CSR matrix."""
        check_train_shape(self, train)
        counts = np.asarray((train > 0).sum(axis=0)).ravel().astype(np.float32)
        self.popularity.copy_(torch.from_numpy(counts))
        return self

    def score_all(self, users: Tensor) -> Tensor:
        return self.popularity.unsqueeze(0).expand(len(users), -1)

    def score_history(self, items: Tensor) -> Tensor:
        return self.popularity.clone()


class ItemKNN(ScoringModel):
    """Item-based k-nearest neighbours with cosine similarity (Sarwar et al., WWW 2001).

    .. math::
        \\mathrm{sim}(i, j) = \\frac{|U_i \\cap U_j|}{\\sqrt{|U_i|} \\sqrt{|U_j|} + \\mathrm{shrink}},
        \\qquad s(u, i) = \\sum_{j \\in N_u} \\mathrm{sim}_k(i, j)

    where ``U_i`` is the set of users of item ``i``, ``N_u`` the items of user
    ``u``, and ``sim_k`` keeps, for each item ``i``, its ``k`` most similar
    other items (equal float32 similarities: the lower item index first) and is 0 elsewhere.

    Everything stays sparse: :meth:`fit` computes the co-occurrences a block
    of items at a time and keeps each block's top ``k`` per item, so the
    ``items × items`` matrix never exists; the model holds (and saves) the
    neighbour lists and the binary user history as CSR index tensors, and
    :meth:`score_all` densifies only its batch of users.

    Args:
        k: Neighbours kept per item.
        shrink: Shrinkage term of the cosine denominator (>= 0).

    Shapes:
        ``sim_indptr [I + 1]``, ``sim_indices [nnz_s]``, ``sim_values [nnz_s]``:
        row ``i`` of ``sim_k`` in CSR, at most ``k`` entries per row, columns
        ascending. ``history_indptr [U + 1]``, ``history_indices [nnz_r]``: the
        binary train matrix in CSR.
    """

    sim_indptr: Tensor
    sim_indices: Tensor
    sim_values: Tensor
    history_indptr: Tensor
    history_indices: Tensor

    #: the buffers whose length is the number of non-zeros, which a load resizes
    _SPARSE = ("sim_indices", "sim_values", "history_indices")

    def __init__(self, num_users: int, num_items: int, k: int = 100, shrink: float = 0.0) -> None:
        super().__init__(num_users, num_items)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if shrink < 0:
            raise ValueError(f"shrink must be >= 0, got {shrink}")
        self.k, self.shrink = k, shrink
        # unfitted: no neighbours and no history, every score 0
        self.register_buffer("sim_indptr", torch.zeros(num_items + 1, dtype=torch.long))
        self.register_buffer("sim_indices", torch.zeros(0, dtype=torch.long))
        self.register_buffer("sim_values", torch.zeros(0))
        self.register_buffer("history_indptr", torch.zeros(num_users + 1, dtype=torch.long))
        self.register_buffer("history_indices", torch.zeros(0, dtype=torch.long))

    def hparams(self) -> dict[str, Any]:
        return {**super().hparams(), "k": self.k, "shrink": self.shrink}

    def fit(self, train: sp.csr_matrix) -> ItemKNN:
        """Args: train: ``num_users × num_items`` CSR matrix; its non-zeros are the interactions."""
        r = binary_train(self, train)
        indptr, indices, values = topk_cosine(r, self.k, self.shrink)
        dev = self.device
        self.sim_indptr = torch.from_numpy(indptr).to(dev)
        self.sim_indices = torch.from_numpy(indices).to(dev)
        self.sim_values = torch.from_numpy(values).to(dev)
        self.history_indptr, self.history_indices = csr_index_tensors(r, dev)
        return self

    def _sim(self) -> Tensor:
        """``sim_k`` as a sparse CSR tensor ``[I, I]`` over the buffers (no copy)."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(self.sim_indptr, self.sim_indices, self.sim_values,
                                           (self.num_items, self.num_items),
                                           check_invariants=False)  # checked by fit and on load

    def score_all(self, users: Tensor) -> Tensor:
        """``s(u, i) = Σ_j r_uj sim_k(i, j)``: ``sim_k @ R_batchᵀ``. Shapes: ``[B] → [B, I]``."""
        history = csr_rows(self.history_indptr, self.history_indices, users, self.num_items)  # [B, I]
        return torch.sparse.mm(self._sim(), history.t()).t().contiguous()  # [B, I]

    def history_parts(self, items: Tensor) -> Tensor:
        """Column ``sim_k(·, j)`` of each history item ``j``: what it adds to every item. Shapes: ``[H] → [H, I]``."""
        items = items.to(self.sim_indptr.device)
        one_hot = torch.zeros(self.num_items, len(items), device=items.device)
        one_hot[items, torch.arange(len(items), device=items.device)] = 1.0
        return torch.sparse.mm(self._sim(), one_hot).t().contiguous()

    def score_history(self, items: Tensor) -> Tensor:
        """The same formula with the given history (an item given twice counts twice). Shapes: ``[H] → [I]``."""
        items = items.to(self.sim_indptr.device)
        history = torch.zeros(self.num_items, 1, device=items.device).index_add_(
            0, items, torch.ones(len(items), 1, device=items.device))  # [I, 1]
        return torch.sparse.mm(self._sim(), history).view(-1)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, local_metadata: dict[str, Any],
                              strict: bool, missing_keys: list[str], unexpected_keys: list[str],
                              error_msgs: list[str]) -> None:
        if prefix + "sim" in state_dict and prefix + "history" in state_dict:
            _dense_to_sparse_state(state_dict, prefix)  # a checkpoint written before the sparse format
        # the non-zero counts are the fitted model's, not this one's: take the incoming sizes
        resize_buffers(self, state_dict, prefix, self._SPARSE)
        # out-of-range CSR indices would read out of bounds in the sparse product: refuse them here
        for ptr, idx in (("sim_indptr", "sim_indices"), ("history_indptr", "history_indices")):
            p, i = state_dict.get(prefix + ptr), state_dict.get(prefix + idx)
            if isinstance(p, Tensor) and isinstance(i, Tensor) and p.shape == getattr(self, ptr).shape:
                problem = _csr_problem(p, i, self.num_items)
                if problem:
                    error_msgs.append(f"{prefix}{ptr}, {prefix}{idx}: {problem}")
        values, indices = state_dict.get(prefix + "sim_values"), state_dict.get(prefix + "sim_indices")
        if isinstance(values, Tensor) and isinstance(indices, Tensor) and values.shape != indices.shape:
            error_msgs.append(f"{prefix}sim_values has {len(values)} entries, {prefix}sim_indices {len(indices)}")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


#: co-occurrence products computed per block of items; bounds a block's sparse product (entries)
BLOCK_PRODUCTS = 1 << 24


def topk_cosine(r: sp.csr_matrix, k: int, shrink: float = 0.0,
                block_products: int = BLOCK_PRODUCTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each item's ``k`` most similar other items by shrunk cosine, as CSR arrays, without an ``I × I`` matrix.

    Items are taken in contiguous blocks whose co-occurrence products (``Σ_{u ∈ U_i} |N_u|``
    over the block's items, an upper bound on the non-zeros of ``R[:, block]ᵀ R``)
    stay under ``block_products``; of each block's sparse product only the top ``k``
    per row are kept. Similarities are ranked as stored, in float32; equal ones go to
    the lower item index.

    Args:
        r: Binary ``num_users × num_items`` CSR matrix.
        k: Neighbours kept per item.
        shrink: Added to the cosine denominator.
        block_products: Bound on one block's products (a single item above it is a block alone).

    Returns:
        ``(indptr [I + 1] int64, indices [nnz] int64, values [nnz] float32)``, columns ascending in each row.
    """
    num_items = r.shape[1]
    counts = np.asarray(r.sum(axis=0)).ravel().astype(np.float64)  # |U_i|
    norms = np.sqrt(counts)
    products = r.T @ np.asarray(r.sum(axis=1)).ravel().astype(np.float64)  # [I] Σ_{u ∈ U_i} |N_u|
    cum = np.cumsum(products)
    rc = r.tocsc()
    rows_out: list[np.ndarray] = []
    cols_out: list[np.ndarray] = []
    vals_out: list[np.ndarray] = []
    b0 = 0
    while b0 < num_items:
        done = cum[b0 - 1] if b0 else 0.0
        b1 = max(int(np.searchsorted(cum, done + block_products, side="right")), b0 + 1)
        co = (rc[:, b0:b1].T.tocsr() @ r).tocsr()  # [b, I] co-occurrence counts
        co.sort_indices()
        rows = np.repeat(np.arange(b0, b1), np.diff(co.indptr))
        cols = co.indices.astype(np.int64)
        sim = (co.data / (norms[rows] * norms[cols] + shrink + 1e-12)).astype(np.float32)  # as stored
        off = cols != rows  # no item is its own neighbour
        rows, cols, sim = rows[off], cols[off], sim[off]
        # Order by row, then similarity descending, then column, with one stable sort of an int64 key
        # (several times faster than np.lexsort): the row above the bits of the float32 similarity,
        # which order as the values do for non-negative floats, flipped; the stable sort keeps each
        # row's columns ascending among equal similarities.
        key = ((rows - b0) << 32) | (0x7FFFFFFF - sim.view(np.int32)).astype(np.int64)
        order = np.argsort(key, kind="stable")
        rows, cols, sim = rows[order], cols[order], sim[order]
        per_row = np.bincount(rows - b0, minlength=b1 - b0)
        rank = np.arange(len(rows)) - (np.cumsum(per_row) - per_row)[rows - b0]
        keep = rank < k
        rows_out.append(rows[keep])
        cols_out.append(cols[keep])
        vals_out.append(sim[keep])
        b0 = b1
    all_rows, all_cols, all_sims = np.concatenate(rows_out), np.concatenate(cols_out), np.concatenate(vals_out)
    order = np.lexsort((all_cols, all_rows))
    indptr = np.zeros(num_items + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(all_rows, minlength=num_items))
    return indptr, all_cols[order], all_sims[order]


def _csr_problem(indptr: Tensor, indices: Tensor, num_cols: int) -> str | None:
    """What makes ``(indptr, indices)`` an invalid CSR structure with ``num_cols`` columns, or None."""
    if indices.dim() != 1:
        return f"indices must be 1-d, got shape {tuple(indices.shape)}"
    if int(indptr[0]) != 0 or bool((indptr[1:] < indptr[:-1]).any()):
        return "indptr must start at 0 and never decrease"
    if int(indptr[-1]) != len(indices):
        return f"indptr ends at {int(indptr[-1])}, but there are {len(indices)} indices"
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= num_cols):
        return f"indices must lie in [0, {num_cols}), found [{int(indices.min())}, {int(indices.max())}]"
    return None


def _dense_to_sparse_state(state_dict: dict[str, Any], prefix: str) -> None:
    """Rewrite an ItemKNN state dict of the dense format (``sim [I, I]``, ``history [U, I]``) in place."""
    sim, history = state_dict.pop(prefix + "sim"), state_dict.pop(prefix + "history")
    s = sim.to_sparse_csr()
    h = (history > 0).to(torch.float32).to_sparse_csr()
    state_dict[prefix + "sim_indptr"] = s.crow_indices().long()
    state_dict[prefix + "sim_indices"] = s.col_indices().long()
    state_dict[prefix + "sim_values"] = s.values().float()
    state_dict[prefix + "history_indptr"] = h.crow_indices().long()
    state_dict[prefix + "history_indices"] = h.col_indices().long()


class MFBPR(ScoringModel):
    """Matrix factorisation trained with BPR (Rendle et al., UAI 2009): ``ŷ_ui = p_u · q_i``."""

    trainable = True
    row_sparse = True

    def __init__(self, num_users: int, num_items: int, dim: int = 64, reg: float = 1e-4) -> None:
        super().__init__(num_users, num_items)
        self.dim, self.reg = dim, reg
        self.user_emb = nn.Embedding(num_users, dim)
        self.item_emb = nn.Embedding(num_items, dim)
        nn.init.xavier_uniform_(self.user_emb.weight)
        nn.init.xavier_uniform_(self.item_emb.weight)

    def hparams(self) -> dict[str, Any]:
        return {**super().hparams(), "dim": self.dim, "reg": self.reg}

    def get_embedding(self) -> tuple[Tensor, Tensor]:
        return self.user_emb.weight, self.item_emb.weight

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        e_u, e_p, e_n = self.user_emb(users), self.item_emb(pos_items), self.item_emb(neg_items)
        return bpr_loss((e_u * e_p).sum(-1), (e_u * e_n).sum(-1)) + self.reg * l2_reg(e_u, e_p, e_n)


# --- registry entries (graphrec.nn.registry) ---


@dataclass(frozen=True)
class MostPopularConfig(ModelConfig):
    """MostPopular has no hyperparameters."""

    name: Literal["mostpop"] = "mostpop"


@dataclass(frozen=True)
class ItemKNNConfig(ModelConfig):
    """Attributes:
    k: Neighbours kept per item (>= 1).
    shrink: Shrinkage added to the cosine denominator (>= 0).
    """

    name: Literal["itemknn"] = "itemknn"
    search_space: ClassVar[Mapping[str, Range]] = {"k": IntRange(10, 1000, log=True), "shrink": FloatRange(0.0, 100.0)}
    k: int = 100
    shrink: float = 0.0

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"k must be >= 1, got {self.k}")
        if self.shrink < 0:
            raise ConfigError(f"shrink must be >= 0, got {self.shrink}")


@dataclass(frozen=True)
class MFBPRConfig(ModelConfig):
    """Attributes:
    dim: Embedding size (>= 1).
    reg: L2 weight on the batch's embeddings (>= 0).
    """

    name: Literal["mf-bpr"] = "mf-bpr"
    search_space: ClassVar[Mapping[str, Range]] = {
        "reg": FloatRange(1e-6, 1e-2, log=True), "train.lr": FloatRange(1e-4, 1e-2, log=True)}
    dim: int = 64
    reg: float = 1e-4

    def __post_init__(self) -> None:
        check_dim_reg(self.dim, self.reg)


MOSTPOP_SPEC = ModelSpec(MostPopularConfig, MostPopular, lambda c, x: MostPopular(x.num_users, x.num_items),
                         summary="every user gets the items with the most train interactions")
ITEMKNN_SPEC = ModelSpec(ItemKNNConfig, ItemKNN, lambda c, x: ItemKNN(x.num_users, x.num_items, k=c.k, shrink=c.shrink),
                         explanation="item-weights",
                         summary="item-based k-nearest neighbours, cosine similarity (sparse)")
MFBPR_SPEC = ModelSpec(MFBPRConfig, MFBPR, lambda c, x: MFBPR(x.num_users, x.num_items, dim=c.dim, reg=c.reg),
                       summary="matrix factorisation trained with BPR")
