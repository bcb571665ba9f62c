"""Negative sampling for BPR: uniform over items, never one of the user's train positives; optionally the
hardest of several such candidates under the current model."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from graphrec.errors import GraphrecError
from graphrec.matrices import sorted_unique
from graphrec.nn.base import ScoringModel


class NegativeSampler:
    """Draws, for each user, an item uniformly among those the user has no train interaction with.

    Vectorised rejection sampling: draw for the whole batch, look the
    (user, item) keys up in the sorted train keys, redraw only the rejected
    ones. A user with train interactions on every item has no negative and
    raises :class:`~graphrec.errors.GraphrecError`.

    Args:
        train: ``num_users × num_items`` CSR of train interactions.
        generator: The random generator (its state is checkpointed by the trainer).
        items: ``[num_items]`` boolean mask of the items that may be drawn
            (default: every item). A cold-start experiment passes the items
            with train interactions, so that the held-out items it ranks later
            are never pushed down as negatives.
    """

    def __init__(self, train: sp.csr_matrix, generator: torch.Generator, items: np.ndarray | None = None) -> None:
        train = sp.csr_matrix(train)
        self.num_users, self.num_items = train.shape
        coo = train.tocoo()
        keys = sorted_unique(coo.row.astype(np.int64) * self.num_items + coo.col)
        self.keys = torch.from_numpy(keys)  # sorted [nnz]
        self.pool: torch.Tensor | None = None  # item indices that may be drawn; None: all
        allowed = self.num_items
        if items is not None:
            mask = np.asarray(items, dtype=bool)
            if mask.shape != (self.num_items,):
                raise ValueError(f"items must be a [{self.num_items}] boolean mask, got shape {mask.shape}")
            self.pool = torch.from_numpy(np.flatnonzero(mask))
            allowed = len(self.pool)
            if allowed == 0:
                raise GraphrecError("no item may be drawn as a negative: the items mask is all False")
            per_user = np.asarray(sp.csr_matrix((np.ones(len(coo.col), np.int64), (coo.row, coo.col)),
                                                shape=train.shape)[:, self.pool.numpy()].sum(axis=1)).ravel()
        else:
            per_user = np.diff(train.indptr)
        self.full_users = torch.from_numpy(np.flatnonzero(per_user >= allowed))
        self.generator = generator

    def _draw(self, shape: torch.Size) -> Tensor:
        if self.pool is None:
            return torch.randint(self.num_items, shape, generator=self.generator)
        return self.pool[torch.randint(len(self.pool), shape, generator=self.generator)]

    def is_positive(self, users: Tensor, items: Tensor) -> Tensor:
        """Whether each (user, item) pair is a train interaction. Shapes: ``[B], [B] → [B]``."""
        q = users * self.num_items + items
        pos = torch.searchsorted(self.keys, q).clamp(max=max(len(self.keys) - 1, 0))
        return self.keys[pos] == q if len(self.keys) else torch.zeros_like(q, dtype=torch.bool)

    def sample(self, users: Tensor) -> Tensor:
        """One negative item per entry of ``users`` (``int64 [B]``, on the CPU)."""
        if len(self.full_users) and torch.isin(users, self.full_users).any():
            raise GraphrecError("a user has train interactions with every item that may be drawn: no negative exists for them")
        neg = self._draw(users.shape)
        bad = self.is_positive(users, neg)
        while bad.any():
            idx = bad.nonzero().view(-1)
            neg[idx] = self._draw(idx.shape)
            bad[idx] = self.is_positive(users[idx], neg[idx])
        return neg


def hardest(model: ScoringModel, users: Tensor, candidates: Tensor) -> Tensor:
    """Each row's candidate that ``model`` scores highest: dynamic negative sampling (Zhang et al., SIGIR 2013).

    Scored without gradient, in the model's current mode. Ties go to the first
    such candidate. Shapes: ``users [B], candidates [B, M] → [B]``.
    """
    with torch.no_grad():
        scores = model.candidate_scores(users, candidates)
    return candidates.gather(1, scores.argmax(dim=1, keepdim=True)).view(-1)
