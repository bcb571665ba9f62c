"""Negative sampling for BPR: uniform over items, never one of the user's train positives."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from graphrec.errors import GraphrecError


class NegativeSampler:
    """Draws, for each user, an item uniformly among those the user has no train interaction with.

    Vectorised rejection sampling: draw for the whole batch, look the
    (user, item) keys up in the sorted train keys, redraw only the rejected
    ones. A user with train interactions on every item has no negative and
    raises :class:`~graphrec.errors.GraphrecError`.

    Args:
        train: ``num_users × num_items`` CSR of train interactions.
        generator: The random generator (its state is checkpointed by the trainer).
    """

    def __init__(self, train: sp.csr_matrix, generator: torch.Generator) -> None:
        train = sp.csr_matrix(train)
        self.num_users, self.num_items = train.shape
        coo = train.tocoo()
        keys = np.unique(coo.row.astype(np.int64) * self.num_items + coo.col)
        self.keys = torch.from_numpy(keys)  # sorted [nnz]
        self.full_users = torch.from_numpy(np.flatnonzero(np.diff(train.indptr) >= self.num_items))
        self.generator = generator

    def is_positive(self, users: Tensor, items: Tensor) -> Tensor:
        """Whether each (user, item) pair is a train interaction. Shapes: ``[B], [B] → [B]``."""
        q = users * self.num_items + items
        pos = torch.searchsorted(self.keys, q).clamp(max=max(len(self.keys) - 1, 0))
        return self.keys[pos] == q if len(self.keys) else torch.zeros_like(q, dtype=torch.bool)

    def sample(self, users: Tensor) -> Tensor:
        """One negative item per entry of ``users`` (``int64 [B]``, on the CPU)."""
        if len(self.full_users) and torch.isin(users, self.full_users).any():
            raise GraphrecError("a user has train interactions with every item: no negative item exists for them")
        neg = torch.randint(self.num_items, users.shape, generator=self.generator)
        bad = self.is_positive(users, neg)
        while bad.any():
            idx = bad.nonzero().view(-1)
            neg[idx] = torch.randint(self.num_items, idx.shape, generator=self.generator)
            bad[idx] = self.is_positive(users[idx], neg[idx])
        return neg
