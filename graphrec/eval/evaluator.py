"""Full-ranking evaluation: every item is a candidate, the user's known items excluded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from graphrec import distributed
from graphrec.errors import ConfigError
from graphrec.eval.metrics import METRICS
from graphrec.eval.topk import topk, unseen_scores
from graphrec.matrices import in_sorted
from graphrec.nn.base import ScoringModel


@dataclass
class RankingResult:
    """Top-K lists of the evaluated users, kept for beyond-accuracy metrics."""

    users: np.ndarray  # [U]
    top_items: np.ndarray  # [U, K]
    hits: np.ndarray  # [U, K] bool
    n_relevant: np.ndarray  # [U]
    #: [U, K] bool: the list's entries with a finite score (a user with fewer than K items to rank, such as
    #: a small candidate set, gets -inf filler after them, which lists nothing); None: every entry
    listed: np.ndarray | None = None


class Evaluator:
    """Full-ranking top-K evaluation of a model (never sampled negatives).

    For each user with at least one relevant item, every item is scored, the
    items in ``exclude`` (train, and valid when testing) are removed, and the
    top ``max(ks)`` are compared with the relevant ones. Equal scores are
    ordered at random (:func:`graphrec.eval.topk.topk`), from a generator
    reseeded with ``seed`` at every evaluation, so a model that ties items is
    credited as chance would be, and evaluating twice gives the same figures.
    Runs in user batches on the model's device; each batch's tie-breaking
    generator is seeded by ``(seed, batch index)``, so the figures do not
    depend on which process ranks which batch. With ``world`` set to a
    multi-process run's (:mod:`graphrec.distributed`; the trainer and
    :func:`~graphrec.run.run_experiment` set it), every rank calls
    :meth:`rank`, the batches are dealt out to the ranks (batch ``b`` to rank
    ``b mod N``) and the top-K lists gathered: every rank gets the
    single-process result exactly.

    Args:
        truth: ``num_users × num_items`` CSR of relevant (held-out) items.
        exclude: CSR of items never to rank per user (the known history).
        ks: Cut-offs.
        metrics: Names from :data:`graphrec.eval.metrics.METRICS`.
        batch_size: Users scored at once.
        item_popularity: ``[num_items]`` train counts, for popularity, novelty
            and the cold-item report.
        item_features: ``[num_items, F]`` vectors (text embeddings or
            multi-hot genres) for intra-list diversity.
        user_activity: ``[num_users]`` train counts, for per-bucket metrics.
        candidates: ``[num_items]`` boolean mask: rank only these items (for
            example the cold-start items); default every item. The relevant
            items are then the candidates among ``truth``: nothing else can
            be listed, so nothing else counts, in a hit or in a recall's
            denominator.
        seed: Seed of the tie-breaking order.
    """

    def __init__(
        self,
        truth: sp.csr_matrix,
        exclude: sp.csr_matrix | None = None,
        ks: Sequence[int] = (10, 20),
        metrics: Sequence[str] = ("recall", "ndcg", "precision", "hit", "mrr", "map"),
        batch_size: int = 1024,
        item_popularity: np.ndarray | None = None,
        item_features: Tensor | None = None,
        user_activity: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
        seed: int = 0,
    ) -> None:
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
        if exclude is not None and exclude.shape != truth.shape:
            raise ValueError(f"exclude is {exclude.shape}, truth is {truth.shape}")
        self.truth = sp.csr_matrix(truth)
        self.exclude = sp.csr_matrix(exclude) if exclude is not None else sp.csr_matrix((np.zeros(0, np.float32), (np.zeros(0, np.int64), np.zeros(0, np.int64))), shape=truth.shape)
        self.ks = tuple(sorted(set(ks)))
        if self.ks and self.ks[-1] > truth.shape[1]:
            raise ConfigError(f"cut-offs {list(self.ks)}: k={self.ks[-1]} is more than the {truth.shape[1]} items to "
                              "rank; lower eval.ks (and train.metric) to at most the number of items")
        self.metrics = tuple(metrics)
        self.batch_size = batch_size
        self.item_popularity = item_popularity
        self.item_features = item_features
        self.user_activity = user_activity
        self.candidates = None if candidates is None else torch.from_numpy(np.asarray(candidates, dtype=bool))
        if self.candidates is not None and self.candidates.shape != (truth.shape[1],):
            raise ValueError(f"candidates must be a [{truth.shape[1]}] boolean mask, got {tuple(self.candidates.shape)}")
        if self.candidates is not None:
            self.truth = sp.csr_matrix(self.truth.multiply(self.candidates.numpy()[None, :].astype(np.float32)))
            self.truth.eliminate_zeros()
        n_rel = np.diff(self.truth.indptr)
        self.users = np.flatnonzero(n_rel > 0)
        self.seed = seed
        #: the ranks that share the evaluation (None: this process alone)
        self.world: distributed.World | None = None
        self.last_result: RankingResult | None = None

    @torch.inference_mode()
    def rank(self, model: ScoringModel) -> RankingResult:
        """Top ``max(ks)`` items of every evaluated user, and which of them are relevant."""
        was_training = model.training
        model.eval()
        device = model.device
        k_max = max(self.ks)
        emb = model.get_embedding()  # propagate once for all batches
        world = self.world or distributed.World()
        n, bs, num_items = len(self.users), self.batch_size, self.truth.shape[1]
        mine = range(world.rank, -(-n // bs), world.size)  # this rank's batches: b, b + N, ...
        # the results written into arrays allocated once: per-batch small tensors kept between the batches'
        # large temporaries fragmented the heap (graphrec keeps freed memory) and grew RSS with the users
        count = sum(min(bs, n - b * bs) for b in mine)
        tops, hits = np.empty((count, k_max), dtype=np.int64), np.empty((count, k_max), dtype=bool)
        listings = np.empty((count, k_max), dtype=bool)
        at = 0
        for b in mine:
            users = self.users[b * bs : (b + 1) * bs]
            scores = unseen_scores(model, users, self.exclude, emb)  # [B, I]
            if self.candidates is not None:
                scores[:, ~self.candidates.to(device)] = -torch.inf
            generator = torch.Generator(device=device).manual_seed(batch_seed(self.seed, b))
            top_scores, top_idx = topk(scores, k_max, generator)
            # fewer than k items to rank (candidates, seen items): the rest of the list is -inf, and lists nothing
            listed = torch.isfinite(top_scores).cpu().numpy()
            top = top_idx.cpu().numpy()  # [B, K]
            del scores, top_scores, top_idx
            tr = self.truth[users].tocoo()  # relevant pairs, rows local to the batch
            truth_keys = np.sort(tr.row.astype(np.int64) * num_items + tr.col)
            tops[at : at + len(users)] = top
            listings[at : at + len(users)] = listed
            hits[at : at + len(users)] = in_sorted(np.arange(len(users))[:, None] * num_items + top, truth_keys) & listed
            at += len(users)
        if world.distributed:  # rank r holds batches r, r + N, ...: interleave them back into batch order
            parts = distributed.all_gather((tops, hits, listings), world)
            order = [(parts[b % world.size], (b // world.size) * bs, min(bs, n - b * bs)) for b in range(-(-n // bs))]
            tops = np.concatenate([p[0][o : o + c] for p, o, c in order]) if order else tops
            hits = np.concatenate([p[1][o : o + c] for p, o, c in order]) if order else hits
            listings = np.concatenate([p[2][o : o + c] for p, o, c in order]) if order else listings
        model.train(was_training)
        n_rel = np.diff(self.truth.indptr)[self.users]
        result = RankingResult(self.users, tops, hits, n_rel, listings)
        self.last_result = result
        return result

    def evaluate(self, model: ScoringModel, beyond: bool = False) -> dict[str, float]:
        """Mean of each metric at each cut-off: ``{"recall@20": ..., "ndcg@20": ...}``.

        Args:
            beyond: Also compute catalogue coverage, mean popularity, novelty,
                intra-list diversity, per-activity-bucket and cold-item metrics.
        """
        result = self.rank(model)
        out = accuracy(result, self.ks, self.metrics)
        if beyond:
            from graphrec.eval.beyond import beyond_accuracy

            out.update(beyond_accuracy(result, self))
        return out


def batch_seed(seed: int, batch: int) -> int:
    """The tie-breaking seed of user batch ``batch`` of an evaluator seeded ``seed``."""
    return int(np.random.SeedSequence([seed, batch]).generate_state(1, np.uint64)[0] >> 1)


def per_user(result: RankingResult, ks: Sequence[int], metrics: Sequence[str]) -> dict[str, np.ndarray]:
    """Each metric at each cut-off for every evaluated user, ``{"recall@20": [U] float64}`` in ``result.users``'
    order: what a paired significance test between two models compares."""
    hits = torch.from_numpy(result.hits)
    n_rel = torch.from_numpy(result.n_relevant)
    return {f"{name}@{k}": (METRICS[name](hits, n_rel, k) if len(n_rel) else torch.zeros(0)).double().numpy()
            for name in metrics for k in ks}


def accuracy(result: RankingResult, ks: Sequence[int], metrics: Sequence[str]) -> dict[str, float]:
    """The mean over users of :func:`per_user` (NaN when no user has a relevant item)."""
    return {key: float(values.mean()) if len(values) else float("nan")
            for key, values in per_user(result, ks, metrics).items()}
