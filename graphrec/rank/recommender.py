"""The recommend contract: raw ids in, raw ids and scores out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from graphrec.data.vocab import Vocabulary
from graphrec.errors import ConfigError, UnknownIdError
from graphrec.eval.topk import topk, unseen_scores
from graphrec.nn.base import ScoringModel
from graphrec.rank.mmr import mmr

#: how many top-scored items MMR re-ranks, per requested item
MMR_POOL = 5


class Recommender:
    """Top-K recommendation over a trained model, in the caller's raw ids.

    Unknown ids: a user id the model was not trained with raises
    :class:`~graphrec.errors.UnknownIdError` naming it (use
    :meth:`recommend_for_history` for a new user); an unknown item id in
    ``candidates``, ``exclude`` or a history raises it too.

    Args:
        model: A fitted or trained :class:`~graphrec.nn.ScoringModel`.
        users, items: The vocabularies the model was trained with.
        seen: ``num_users × num_items`` CSR of the interactions each user
            already has (excluded by default).
        item_features: ``[num_items, F]`` vectors (text embeddings) for
            diversity re-ranking.
        seed: Seed of the order of equal scores (random, as in evaluation;
            the same request gets the same list).
    """

    def __init__(self, model: ScoringModel, users: Vocabulary, items: Vocabulary, seen: sp.csr_matrix | None = None,
                 item_features: Tensor | None = None, seed: int = 0) -> None:
        if (len(users), len(items)) != (model.num_users, model.num_items):
            raise ValueError(f"vocabularies ({len(users)} users, {len(items)} items) do not match the model "
                             f"({model.num_users}, {model.num_items})")
        self.model, self.users, self.items = model, users, items
        empty = (np.zeros(0, np.float32), (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        self.seen = sp.csr_matrix(seen) if seen is not None else sp.csr_matrix(empty, shape=(len(users), len(items)))
        self.item_features = item_features
        self.seed = seed

    @torch.inference_mode()
    def recommend(self, users: object | Sequence[object], k: int = 10, exclude_seen: bool = True,
                  candidates: Sequence[object] | None = None, exclude: Sequence[object] | None = None,
                  diversity: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items for one user or a batch.

        Args:
            users: A raw user id, or a sequence of them.
            k: List length (at most the number of items).
            exclude_seen: Leave out items the user already interacted with.
            candidates: Rank only these raw item ids.
            exclude: Never recommend these raw item ids.
            diversity: λ of maximal-marginal-relevance re-ranking on
                ``item_features`` (0: plain score order; 1: most diverse).

        Returns:
            ``(item_ids, scores)``: raw item ids and their model scores, in
            list order; shape ``[k]`` for one user, ``[B, k]`` for a batch.
            Where fewer than ``k`` items remain, trailing entries hold ``None``
            ids and ``-inf``.

        Raises:
            UnknownIdError: an unknown user id, or an unknown item id in
                ``candidates`` / ``exclude``.
        """
        single = isinstance(users, (str, int, np.integer)) or not isinstance(users, Sequence | np.ndarray)
        batch: list[object] = [users] if single else list(users)  # type: ignore[arg-type]
        self._check_k(k)
        idx = self.users.encode(batch)  # raises UnknownIdError
        was_training = self.model.training
        self.model.eval()
        scores = unseen_scores(self.model, idx, self.seen if exclude_seen else None).cpu()  # [B, I]
        self.model.train(was_training)
        ids, top = self._top(scores, k, candidates, exclude, diversity)
        return (ids[0], top[0]) if single else (ids, top)

    @torch.inference_mode()
    def recommend_for_history(self, items: Sequence[object], k: int = 10, candidates: Sequence[object] | None = None,
                              exclude: Sequence[object] | None = None, diversity: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Recommendations for a user the model has never seen, from the raw ids of items they interacted with.

        No retraining: LightGCN and MF fold the user in (mean of the items'
        embeddings), GraphSAGE embeds the new user from its neighbourhood,
        ItemKNN and MostPopular score as for any user. The given items are
        excluded from the list.
        """
        self._check_k(k)
        hist = self.items.encode(list(items))  # raises UnknownIdError
        if len(hist) == 0:
            raise ValueError("recommend_for_history needs at least one item")
        was_training = self.model.training
        self.model.eval()
        scores = self.model.score_history(torch.from_numpy(hist).to(self.model.device)).float().cpu().clone()
        self.model.train(was_training)
        scores[torch.from_numpy(hist)] = -torch.inf
        ids, top = self._top(scores.unsqueeze(0), k, candidates, exclude, diversity)
        return ids[0], top[0]

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)

    def _check_k(self, k: int) -> None:
        if not 1 <= k <= len(self.items):
            raise ConfigError(f"k must be in [1, {len(self.items)}] (the number of items), got {k}")

    def _top(self, scores: Tensor, k: int, candidates: Sequence[object] | None, exclude: Sequence[object] | None,
             diversity: float) -> tuple[np.ndarray, np.ndarray]:
        if candidates is not None:
            keep = torch.zeros(scores.shape[1], dtype=torch.bool)
            keep[torch.from_numpy(self.items.encode(list(candidates)))] = True
            scores[:, ~keep] = -torch.inf
        if exclude is not None and len(exclude):
            scores[:, torch.from_numpy(self.items.encode(list(exclude)))] = -torch.inf
        if diversity > 0:
            if self.item_features is None:
                raise ConfigError("diversity > 0 needs item_features (text embeddings) in the Recommender")
            top_scores, top = self._mmr(scores, k, diversity)
        else:
            top_scores, top = topk(scores, k, self._generator())
        ids = self.items.decode(top.numpy().ravel()).reshape(top.shape).astype(object)
        ids[~torch.isfinite(top_scores).numpy()] = None
        return ids, top_scores.numpy()

    def _mmr(self, scores: Tensor, k: int, diversity: float) -> tuple[Tensor, Tensor]:
        assert self.item_features is not None
        pool = min(scores.shape[1], k * MMR_POOL)
        pool_scores, pool_idx = topk(scores, pool, self._generator())  # [B, P]
        out_idx = torch.zeros((len(scores), k), dtype=torch.long)
        out_scores = torch.full((len(scores), k), -torch.inf)
        for row in range(len(scores)):  # one small greedy selection per user
            finite = torch.isfinite(pool_scores[row])
            cand, cand_scores = pool_idx[row][finite], pool_scores[row][finite]
            if len(cand) == 0:
                continue
            order = mmr(cand_scores, self.item_features[cand], k, diversity)
            out_idx[row, : len(order)] = cand[order]
            out_scores[row, : len(order)] = cand_scores[order]
        return out_scores, out_idx


__all__ = ["Recommender", "UnknownIdError"]
