"""The method layout every graphrec model follows.

A model computes embeddings and scores on index tensors, and nothing else:
vocabularies, negative sampling, the training loop and seen-item filtering
live in :mod:`graphrec.train`, :mod:`graphrec.eval` and :mod:`graphrec.rank`.

* ``get_embedding()`` → ``(user_emb [U, D], item_emb [I, D])`` where the model
  scores by dot product (``None`` for the non-embedding baselines);
* ``forward(users, items)`` → pair scores ``[B]``;
* ``score_all(users)`` → scores of every item ``[B, I]`` (full ranking);
* ``loss(users, pos_items, neg_items)`` for models trained with BPR;
* ``fit(train)`` for closed-form baselines (a CSR user × item matrix);
* constructor arguments are plain values, shown by ``__repr__``, and saved
  with the weights (:meth:`ScoringModel.hparams`) so a checkpoint rebuilds
  the model.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn


class ScoringModel(nn.Module):
    """Base class: ``num_users × num_items`` scores.

    Args:
        num_users: Number of user indices.
        num_items: Number of item indices.
    """

    #: whether :meth:`loss` is defined (trained by the BPR trainer)
    trainable: bool = False
    #: whether a training step may leave some parameters without a gradient (a sampled subgraph that misses
    #: some node or edge types): data-parallel training must then look for them at every step
    partial_gradients: bool = False
    #: in a data-parallel step, the whole global batch's ``(users, positive items)`` while :meth:`loss` sees this
    #: rank's shard (the trainer sets it): a loss term over the batch as a whole (InfoNCE's in-batch negatives)
    #: reads it, so that every rank computes the one-process term; None in one process
    global_batch: tuple[Tensor, Tensor] | None = None
    #: whether every parameter is an ``nn.Embedding`` table that :meth:`loss` reads only at the batch's rows
    #: (lookups, never the whole weight): ``train.optimizer = "sparse_adam"`` then makes the gradients row-sparse,
    #: so a step's cost follows the batch, not the tables
    row_sparse: bool = False

    def __init__(self, num_users: int, num_items: int) -> None:
        super().__init__()
        if num_users < 1 or num_items < 1:
            raise ValueError(f"num_users and num_items must be >= 1, got {num_users} and {num_items}")
        self.num_users = num_users
        self.num_items = num_items

    def hparams(self) -> dict[str, Any]:
        """Constructor arguments, enough to rebuild the model before loading its state dict."""
        return {"num_users": self.num_users, "num_items": self.num_items}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.hparams().items() if not isinstance(v, Tensor))

    def get_embedding(self) -> tuple[Tensor, Tensor] | None:
        return None

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores of (user, item) pairs.

        Shapes:
            users, items: ``[B]`` → ``[B]``.
        """
        emb = self.get_embedding()
        if emb is None:
            return self.score_all(users).gather(1, items.view(-1, 1)).view(-1)
        user_emb, item_emb = emb
        return (user_emb[users] * item_emb[items]).sum(-1)

    def candidate_scores(self, users: Tensor, candidates: Tensor) -> Tensor:
        """Scores of each user's candidate items, as the model scores them in training.

        The trainer's hard-negative sampling (``train.negative_candidates``)
        keeps the highest-scoring candidate of each row as the negative; it
        calls this under ``torch.no_grad()``. Default: :meth:`forward` on the
        flattened pairs; a sampling model overrides it to embed the pairs the
        way its loss does.

        Shapes:
            users: ``[B]``, candidates: ``[B, M]`` → ``[B, M]``.
        """
        m = candidates.shape[1]
        return self(users.repeat_interleave(m), candidates.reshape(-1)).view(-1, m)

    def score_all(self, users: Tensor) -> Tensor:
        """Scores of every item for each user. Shapes: ``[B]`` → ``[B, num_items]``."""
        emb = self.get_embedding()
        if emb is None:
            raise NotImplementedError(f"{type(self).__name__} must implement score_all")
        user_emb, item_emb = emb
        return user_emb[users] @ item_emb.t()

    def score_history(self, items: Tensor) -> Tensor:
        """Scores of every item for a user the model has not seen, from the items they interacted with.

        Default (embedding models): the items' embeddings dotted with the
        user's :meth:`fold_in`. Shapes: ``[H] → [num_items]``.
        """
        emb = self.get_embedding()
        if emb is None:
            raise NotImplementedError(f"{type(self).__name__} must implement score_history")
        return emb[1] @ self.fold_in(items, state=self.fold_in_state())

    def history_parts(self, items: Tensor) -> Tensor:
        """What each of a user's history items adds to every item's score, for a model whose score is a sum
        over the history (``"item-weights"`` explanations): ``[H] → [H, num_items]``, whose rows add up to
        :meth:`score_history` of ``items``."""
        raise NotImplementedError(f"{type(self).__name__}'s scores are not a sum over the user's history items")

    #: :meth:`history_parts_at` reads the parts about this many numbers at a time
    PARTS_CHUNK: ClassVar[int] = 2**24

    def history_parts_at(self, items: Tensor, columns: Tensor) -> Tensor:
        """:meth:`history_parts` of ``items`` times ``columns`` ``[I, C]`` (a target's indicator, the mean over
        candidates...): ``[H] → [H, C]``. By default the parts are read in chunks of rows of about
        :attr:`PARTS_CHUNK` numbers, so that a long history on a large catalogue never holds ``[H, I]`` at once;
        a model with a cheaper way overrides it."""
        chunk = max(1, self.PARTS_CHUNK // max(1, self.num_items))
        cols = columns.to(torch.float64)
        out = [self.history_parts(items[start : start + chunk]).to(torch.float64).cpu() @ cols.cpu()
               for start in range(0, len(items), chunk)]
        return torch.cat(out) if out else torch.zeros(0, columns.shape[1], dtype=torch.float64)

    def fold_in_state(self) -> Any:
        """What :meth:`fold_in` reads, computed once from the trained weights (a server keeps it).

        Default: :meth:`get_embedding`'s ``(users, items)``.
        """
        return self.get_embedding()

    def fold_in(self, items: Tensor, user: int | None = None, state: Any = None) -> Tensor:
        """A user's embedding ``[D]`` from the items they interacted with, without retraining.

        Embedding models only (scores are ``user · item``). Default: the mean
        of the items' final embeddings (the trained ``user`` is not used).
        LightGCN and its successors re-propagate the user's row exactly;
        GraphSAGE embeds the user inductively.

        Args:
            items: Item indices ``[H]`` (H >= 1): the user's whole history.
            user: The user's index when the model was trained with them (for
                the parts of their embedding not made of items), else None.
            state: :meth:`fold_in_state`'s result (computed here when None).
        """
        emb = state if state is not None else self.fold_in_state()
        if emb is None:
            raise NotImplementedError(f"{type(self).__name__} has no embeddings to fold a user into; "
                                      "use score_history")
        if len(items) == 0:
            raise ValueError("fold_in needs at least one item")
        return emb[1][items].mean(0)

    def loss(self, users: Tensor, pos_items: Tensor, neg_items: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} is not trained with a loss; call fit()")

    def rng_state(self) -> dict[str, Tensor]:
        """States of the random generators the model owns (a sampler's, for example).

        The trainer saves them in every checkpoint and restores them with
        :meth:`set_rng_state`, so a resumed run draws exactly what an
        uninterrupted one would. Models that draw only from the trainer's
        generator own none.
        """
        return {}

    def set_rng_state(self, state: dict[str, Tensor]) -> None:
        """Restore what :meth:`rng_state` returned."""
        if state:
            raise ValueError(f"{type(self).__name__} owns no random generator, but the checkpoint has {sorted(state)}")

    def set_rank(self, rank: int, restart: bool = False) -> None:
        """Called by the trainer of a multi-process run with this process's rank, before training starts.

        Every rank draws the same global batches, so draws that must be the
        one-process run's (XSimGCL's noise over the replicated graph) stay
        seeded alike on every rank, and models that own none ignore this
        (the default). A model that draws something for its rank's shard
        alone (GraphSAGE's neighbour sample) gives each rank its own stream
        here (:func:`graphrec.distributed.rank_seed`); rank 0 keeps the
        one-process stream. ``restart``: start the rank's stream afresh even
        where it is already the rank's (called after a resume by another
        number of ranks has restored rank 0's states on every rank).
        """

    def fit(self, train: Any) -> ScoringModel:
        raise NotImplementedError(f"{type(self).__name__} is trained with a loss, not fit()")

    @property
    def device(self) -> torch.device:
        for t in (*self.parameters(), *self.buffers()):
            return t.device
        return torch.device("cpu")


def bpr_loss(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """Bayesian personalised ranking: ``mean(-log σ(s⁺ − s⁻))`` (Rendle et al., UAI 2009).

    Computed as ``softplus(s⁻ − s⁺)``, which is exact and never overflows.
    """
    return nn.functional.softplus(neg_scores - pos_scores).mean()


def l2_reg(*embeddings: Tensor) -> Tensor:
    """``Σ ||E||² / (2 B)`` over the batch's layer-0 embeddings (He et al., SIGIR 2020, eq. 15)."""
    batch = embeddings[0].shape[0]
    return sum((e.pow(2).sum() for e in embeddings), torch.zeros((), device=embeddings[0].device)) / (2 * batch)


def resize_buffers(module: nn.Module, state_dict: dict[str, Any], prefix: str, names: tuple[str, ...]) -> None:
    """Give ``module``'s buffers ``names`` the shapes of a fitted model's state before it is loaded.

    For closed-form models whose buffer sizes depend on the data they were
    fitted on (non-zeros of a CSR matrix, a rank): an unfitted model is built
    with empty buffers and takes the incoming sizes (dtypes and devices kept).
    Call it first thing in ``_load_from_state_dict``.
    """
    for name in names:
        incoming, current = state_dict.get(prefix + name), module._buffers.get(name)
        if isinstance(incoming, Tensor) and isinstance(current, Tensor) and incoming.shape != current.shape:
            module._buffers[name] = current.new_empty(incoming.shape)


def check_train_shape(model: ScoringModel, train: sp.spmatrix) -> None:
    """ValueError naming the model unless ``train`` is ``num_users × num_items``."""
    if train.shape != (model.num_users, model.num_items):
        raise ValueError(f"{type(model).__name__}.fit: train matrix is {train.shape}, "
                         f"expected ({model.num_users}, {model.num_items})")


def binary_train(model: ScoringModel, train: sp.csr_matrix) -> sp.csr_matrix:
    """The interaction matrix a closed-form model fits on: ``train`` checked against the model's sizes, as a
    float32 CSR with duplicates summed, columns sorted, 1 where the sum is > 0 and no explicit zeros."""
    check_train_shape(model, train)
    r = sp.csr_matrix(train, dtype=np.float32, copy=True)
    r.sum_duplicates()  # also sorts each row's columns
    r.data = (r.data > 0).astype(np.float32)
    r.eliminate_zeros()
    return r


def csr_index_tensors(m: sp.csr_matrix, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(indptr, indices)`` of a CSR matrix as int64 tensors on ``device`` (a model's history buffers)."""
    return (torch.from_numpy(m.indptr.astype(np.int64)).to(device),
            torch.from_numpy(m.indices.astype(np.int64)).to(device))
