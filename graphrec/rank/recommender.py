"""The recommend contract: raw ids in, raw ids and scores out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch

from graphrec.data.vocab import Vocabulary
from graphrec.errors import UnknownIdError
from graphrec.nn.base import ScoringModel


class Recommender:
    """Top-K recommendation over a trained model, in the caller's raw ids.

    Unknown-user policy: a user id the model was not trained with raises
    :class:`~graphrec.errors.UnknownIdError` naming it (the model has no
    embedding for it; fold-in of new users is the ranker's job).

    Args:
        model: A fitted or trained :class:`~graphrec.nn.ScoringModel`.
        users, items: The vocabularies the model was trained with.
        seen: ``num_users × num_items`` CSR of the interactions each user
            already has (excluded by default).
    """

    def __init__(self, model: ScoringModel, users: Vocabulary, items: Vocabulary, seen: sp.csr_matrix | None = None) -> None:
        if (len(users), len(items)) != (model.num_users, model.num_items):
            raise ValueError(f"vocabularies ({len(users)} users, {len(items)} items) do not match the model "
                             f"({model.num_users}, {model.num_items})")
        self.model, self.users, self.items = model, users, items
        self.seen = sp.csr_matrix(seen) if seen is not None else sp.csr_matrix((np.zeros(0, np.float32), (np.zeros(0, np.int64), np.zeros(0, np.int64))), shape=(len(users), len(items)))

    @torch.inference_mode()
    def recommend(self, users: object | Sequence[object], k: int = 10, exclude_seen: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items for one user or a batch.

        Args:
            users: A raw user id, or a sequence of them.
            k: List length (at most the number of items).
            exclude_seen: Leave out items the user already interacted with.

        Returns:
            ``(item_ids, scores)``: raw item ids and their scores, best first;
            shape ``[k]`` for one user, ``[B, k]`` for a batch. Where fewer than
            ``k`` items remain, trailing entries hold ``None`` ids and ``-inf``.

        Raises:
            UnknownIdError: a user id the model does not know.
        """
        single = isinstance(users, (str, int, np.integer))
        batch = [users] if single else list(users)  # type: ignore[arg-type]
        if not 1 <= k <= len(self.items):
            raise ValueError(f"k must be in [1, {len(self.items)}], got {k}")
        idx = self.users.encode(batch)  # raises UnknownIdError
        was_training = self.model.training
        self.model.eval()
        scores = self.model.score_all(torch.from_numpy(idx).to(self.model.device)).float().cpu().clone()  # [B, I]
        self.model.train(was_training)
        if exclude_seen:
            ex = self.seen[idx].tocoo()
            scores[torch.from_numpy(ex.row), torch.from_numpy(ex.col)] = -torch.inf
        top_scores, top = torch.topk(scores, k, dim=1)
        ids = self.items.decode(top.numpy().ravel()).reshape(top.shape).astype(object)
        ids[~torch.isfinite(top_scores).numpy()] = None
        out_ids, out_scores = ids, top_scores.numpy()
        return (out_ids[0], out_scores[0]) if single else (out_ids, out_scores)


__all__ = ["Recommender", "UnknownIdError"]
