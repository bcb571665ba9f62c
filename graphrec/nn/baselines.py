"""Baselines every results table shows: MostPopular, ItemKNN (cosine) and MF-BPR."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from graphrec.nn.base import ScoringModel, bpr_loss, l2_reg


class MostPopular(ScoringModel):
    """Scores every item by its number of train interactions, the same for every user."""

    popularity: Tensor

    def __init__(self, num_users: int, num_items: int) -> None:
        super().__init__(num_users, num_items)
        self.register_buffer("popularity", torch.zeros(num_items))

    def fit(self, train: sp.csr_matrix) -> MostPopular:
        """Args: train: binary ``num_users × num_items`` CSR matrix."""
        _check_shape(self, train)
        counts = np.asarray((train > 0).sum(axis=0)).ravel().astype(np.float32)
        self.popularity.copy_(torch.from_numpy(counts))
        return self

    def score_all(self, users: Tensor) -> Tensor:
        return self.popularity.unsqueeze(0).expand(len(users), -1)

    def score_history(self, items: Tensor) -> Tensor:
        return self.popularity.clone()


class ItemKNN(ScoringModel):
    """Item-based k-nearest neighbours with cosine similarity (Sarwar et al., WWW 2001).

    .. math:: s(u, i) = \\sum_{j \\in N_u} \\mathrm{sim}_k(i, j)

    where ``sim_k`` keeps, for each item, its ``k`` most similar items
    (cosine of the binary interaction columns, with ``shrink`` added to the
    denominator).

    Args:
        k: Neighbours kept per item.
        shrink: Shrinkage term of the cosine denominator.
    """

    sim: Tensor
    history: Tensor

    def __init__(self, num_users: int, num_items: int, k: int = 100, shrink: float = 0.0) -> None:
        super().__init__(num_users, num_items)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k, self.shrink = k, shrink
        self.register_buffer("sim", torch.zeros(num_items, num_items))  # dense: fine up to ~30k items
        self.register_buffer("history", torch.zeros(num_users, num_items))

    def hparams(self) -> dict[str, Any]:
        return {**super().hparams(), "k": self.k, "shrink": self.shrink}

    def fit(self, train: sp.csr_matrix) -> ItemKNN:
        _check_shape(self, train)
        r = sp.csr_matrix((train > 0).astype(np.float32))
        norms = np.sqrt(np.asarray(r.power(2).sum(axis=0)).ravel())
        co = (r.T @ r).toarray()  # [I, I]
        sim = co / (np.outer(norms, norms) + self.shrink + 1e-12)
        np.fill_diagonal(sim, 0.0)
        if self.k < self.num_items:
            # keep each item's k largest similarities (row-wise)
            cut = np.argpartition(-sim, self.k - 1, axis=1)[:, : self.k]
            keep = np.zeros_like(sim, dtype=bool)
            np.put_along_axis(keep, cut, True, axis=1)
            sim = np.where(keep, sim, 0.0)
        self.sim.copy_(torch.from_numpy(sim.astype(np.float32)))
        self.history.copy_(torch.from_numpy(r.toarray()))
        return self

    def score_all(self, users: Tensor) -> Tensor:
        # s(u, i) = Σ_j r_uj sim(i, j): sim rows are "item i's neighbours"
        return self.history[users] @ self.sim.t()

    def score_history(self, items: Tensor) -> Tensor:
        return self.sim[:, items].sum(1)  # the same formula with the given history


class MFBPR(ScoringModel):
    """Matrix factorisation trained with BPR (Rendle et al., UAI 2009): ``ŷ_ui = p_u · q_i``."""

    trainable = True

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


def _check_shape(model: ScoringModel, train: sp.spmatrix) -> None:
    if train.shape != (model.num_users, model.num_items):
        raise ValueError(f"{type(model).__name__}.fit: train matrix is {train.shape}, "
                         f"expected ({model.num_users}, {model.num_items})")
