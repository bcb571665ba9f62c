"""A deployed model that learns from new interactions, users and items while it serves, without retraining.

:class:`LiveModel` wraps a run's bundle (:func:`graphrec.run.bundle.load`)
and keeps what changed since training beside it:

* **events** (a user interacted with an item): the item leaves the user's
  recommendations at once, and the user's representation is recomputed from
  the updated history: LightGCN, SimGCL and XSimGCL re-propagate the user's
  row exactly over the trained layers (:meth:`graphrec.nn.LightGCN.fold_in`),
  MF-BPR takes the mean of the history's item embeddings, GraphSAGE re-embeds
  the user's node (their attributes kept) with the history as its item edges,
  and the graph filters, EASE and ItemKNN score the user's
  updated row (:meth:`~graphrec.nn.ScoringModel.score_history`). Other users
  and the items keep their trained representations until ``graphrec retrain``.
* **new users** appear with their first event, and are folded in the same way.
* **new items** come with their text (``POST /items``): the text is encoded
  with the run's BERT encoder, and the item scores as the similarity-weighted
  mean of its :data:`NEW_ITEM_NEIGHBOURS` nearest catalogue items by text
  (for embedding models: its embedding is that mean of theirs). In a user's
  history a new item stands for its nearest catalogue item.

Every change is a record of the write-ahead log (:mod:`graphrec.data.wal`),
appended and fsync'd before the caller hears back, and replayed on start.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from graphrec.data.wal import EventLog
from graphrec.errors import ConfigError, GraphrecError, UnknownIdError
from graphrec.eval.topk import topk
from graphrec.rank.mmr import mmr
from graphrec.run.bundle import DeployedModel

log = logging.getLogger(__name__)

#: how many catalogue items (nearest by text) a new item's score is built from
NEW_ITEM_NEIGHBOURS = 5
#: how many top-scored items diversity re-ranking (MMR) chooses from, per requested item
MMR_POOL = 5
#: default weight of a user's standardised personal score in ``search`` (text cosine + weight · z-score)
SEARCH_PERSONAL_WEIGHT = 0.05
#: event timestamps are seconds since the epoch below this (the year 5138)
MAX_TIMESTAMP = 1e11
#: the longest title a new item may have (one given none is titled by its text, cut to this)
MAX_TITLE_CHARS = 200


class TextUnavailable(GraphrecError):
    """Search and new items need the run's text encoder, which could not be loaded."""


@dataclass(frozen=True)
class Recommendation:
    """One listed item: raw id, score and title."""

    item: object
    score: float
    title: str


@dataclass
class _NewItem:
    id: object
    title: str
    text: str
    vector: Tensor  # [F] text embedding (normalised)
    neighbours: Tensor  # [n] catalogue item indices
    weights: Tensor  # [n] summing to 1


class LiveModel:
    """A :class:`~graphrec.run.bundle.DeployedModel` plus the interactions, users and items added since.

    Args:
        deployed: The loaded bundle.
        event_log: The write-ahead log (replayed here); None keeps changes in memory only (tests).
        item_text: ``[I, F]`` the catalogue's text embeddings (search, diversity, new items); None: none of those.
        encode: Encodes texts (queries, new items) into the space of ``item_text``; None: search by text and
            new items are refused with :class:`TextUnavailable`.
        text_error: Why there is no encoder, for that error's message.
        index: Top-k retrieval of ``recommend``: ``"exact"`` (scores of every item, a matrix product;
            catalogues up to about a million items) or ``"faiss"`` (embedding models: an HNSW graph over
            the item vectors with ``ann_m`` links per node, searched with ``ann_ef_search`` candidates or
            ``k`` plus the user's excluded items where more; approximate, equal scores in the index's order;
            ``pip install 'graphrec[faiss]'``). Diversity re-ranking, search and similar items stay exact.
    """

    def __init__(self, deployed: DeployedModel, event_log: EventLog | None = None, item_text: Tensor | None = None,
                 encode: Callable[[Sequence[str]], Tensor] | None = None, text_error: str = "",
                 index: str = "exact", ann_m: int = 32, ann_ef_search: int = 128) -> None:
        self.deployed, self.model = deployed, deployed.model.eval()
        self.num_users, self.num_items = len(deployed.users), len(deployed.items)
        self._int_users = deployed.users.ids.dtype.kind in "iu"
        self._int_items = deployed.items.ids.dtype.kind in "iu"
        self.item_text = torch.nn.functional.normalize(item_text.float(), dim=1) if item_text is not None else None
        self._encode, self._text_error = encode, text_error
        self._encode_lock = threading.Lock()  # a fast tokenizer refuses concurrent calls from threads
        self._lock = threading.RLock()
        self.log = event_log
        self.events = 0
        self.started = time.time()
        self._titles: list[str] = list(deployed.graph.node_labels["item"])
        self._item_ids: list[object] = deployed.items.ids.tolist()  # raw ids as Python values, by index
        self._user_ids: list[object] = deployed.users.ids.tolist()
        self._user_pos = {raw: i for i, raw in enumerate(self._user_ids)}  # one dict lookup per request
        self._item_pos = {raw: i for i, raw in enumerate(self._item_ids)}
        self._new_users: dict[object, int] = {}  # raw id -> index >= num_users
        self._new_user_ids: list[object] = []  # index - num_users -> raw id
        self._user_version: dict[int, int] = {}  # user index -> events applied (a folded-in vector's freshness)
        self._ann_lock = threading.Lock()  # faiss's HNSW is not safe for a search during an add
        self._new_items: list[_NewItem] = []
        self._new_item_index: dict[object, int] = {}  # raw id -> index >= num_items
        self._added: dict[int, list[int]] = {}  # user index -> items added since training (indices)
        self._train = deployed.train.tocsr()
        self._seen = deployed.seen.tocsr()
        with torch.inference_mode():
            emb = self.model.get_embedding()
        self._user_vec: Tensor | None = emb[0].float() if emb is not None else None
        self._item_vec: Tensor | None = emb[1].float() if emb is not None else None
        self._live_vec: dict[int, Tensor] = {}  # user index -> folded-in embedding (embedding models)
        self._fold_state: Any = None
        self._gen = torch.Generator()
        self._ann: Any = None
        self.ann_ef_search = ann_ef_search
        if index == "faiss":
            self._ann = _hnsw(self._item_vec, ann_m)
        elif index != "exact":
            raise ConfigError(f"index must be 'exact' or 'faiss', got {index!r}")
        if event_log is not None:
            try:
                for record in event_log.replay():
                    self._apply(record)
            except BaseException:
                event_log.close()
                raise
            if event_log.records:
                log.info("replayed %d log records (%d events) from %s", event_log.records, self.events, event_log.path)

    # ---------------------------------------------------------------- ids

    @property
    def users_count(self) -> int:
        return self.num_users + len(self._new_users)

    @property
    def items_count(self) -> int:
        return self.num_items + len(self._new_items)

    def _raw(self, value: object, integer: bool, kind: str) -> object:
        """A raw id as the vocabulary stores it (query strings of an integer vocabulary become ints)."""
        if integer:
            if isinstance(value, bool) or not isinstance(value, int | str | np.integer):
                raise UnknownIdError(f"unknown {kind} {value!r}")
            try:
                out = int(value)
            except ValueError:
                raise UnknownIdError(f"unknown {kind} {value!r} ({kind} ids of this run are integers)") from None
            if not -(2**63) <= out < 2**63:
                raise UnknownIdError(f"unknown {kind} {value!r} (outside the 64-bit integers ids are)")
            return out
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise UnknownIdError(f"unknown {kind} {value!r}")
        return _utf8(str(value), f"{kind} id")

    def _new_id(self, value: object, integer: bool, kind: str, where: str) -> object:
        """:meth:`_raw` of an id a write may create: a malformed one is a ConfigError saying where (not unknown)."""
        try:
            return self._raw(value, integer, kind)
        except UnknownIdError:
            what = "64-bit integers" if integer else "strings or integers"
            raise ConfigError(f"{where}: {value!r} cannot be a {kind} id of this run: its {kind} ids are {what}") from None

    def user_index(self, user: object) -> int:
        """The index of a raw user id (trained or added); UnknownIdError naming it otherwise."""
        return self._index(user, "user", self._int_users, self._user_pos, self._new_users)

    def item_index(self, item: object) -> int:
        """The index of a raw item id (catalogue or added); UnknownIdError naming it otherwise."""
        return self._index(item, "item", self._int_items, self._item_pos, self._new_item_index)

    def _index(self, value: object, kind: str, integer: bool, trained: dict[object, int],
               added: dict[object, int]) -> int:
        raw = self._raw(value, integer, kind)
        pos = trained.get(raw)
        if pos is None:
            pos = added.get(raw)
        if pos is None:
            raise UnknownIdError(f"unknown {kind} {raw!r}")
        return pos

    def item_id(self, index: int) -> object:
        return self._new_items[index - self.num_items].id if index >= self.num_items else self._item_ids[index]

    def title(self, index: int) -> str:
        return self._new_items[index - self.num_items].title if index >= self.num_items else self._titles[index]

    def user_id(self, index: int) -> object:
        if index >= self.num_users:
            return self._new_user_ids[index - self.num_users]
        return self._user_ids[index]

    def added_items(self, user: int) -> list[int]:
        return list(self._added.get(user, ()))

    # ---------------------------------------------------------------- scoring

    def _catalogue(self, items: Sequence[int]) -> Tensor:
        """Catalogue item indices standing for ``items`` (a new item: its nearest catalogue item)."""
        return torch.tensor([i if i < self.num_items else int(self._new_items[i - self.num_items].neighbours[0])
                             for i in items], dtype=torch.long)

    def history(self, user: int) -> list[int]:
        """A user's items: train interactions, then those added since (indices, new items included)."""
        base = self._train[user].indices.tolist() if user < self.num_users else []
        known = set(base)
        return base + [i for i in self._added.get(user, ()) if i not in known]

    def _fold_in(self, items: Sequence[int], user: int | None) -> Tensor:
        if self._fold_state is None:
            with torch.inference_mode():
                self._fold_state = self.model.fold_in_state()
        with torch.inference_mode():
            return self.model.fold_in(self._catalogue(items).to(self.model.device), user=user,
                                      state=self._fold_state).float()

    def _scores_of_history(self, items: Sequence[int], user: int | None) -> Tensor:
        """Scores ``[items_count]`` of a user with this history (the trained ``user`` index where there is one)."""
        if self._item_vec is not None:
            return self._item_scores(self._fold_in(items, user))
        with torch.inference_mode():
            base = self.model.score_history(self._catalogue(items).to(self.model.device)).float().cpu()
        return self._extend(base)

    def _item_scores(self, vec: Tensor) -> Tensor:
        assert self._item_vec is not None
        return (self._item_vec @ vec).cpu()  # [items_count]: new items' vectors are appended

    def _extend(self, base: Tensor) -> Tensor:
        """Catalogue scores ``[I]`` plus the new items' (their neighbours' weighted mean) ``[items_count]``."""
        if not self._new_items:
            return base
        extra = torch.stack([(base[n.neighbours] * n.weights).sum() for n in self._new_items])
        return torch.cat([base, extra])

    def user_vector(self, user: int) -> Tensor:
        """An embedding model's current vector of a user ``[D]``: as trained, or folded in after their events."""
        assert self._user_vec is not None
        if user < self.num_users and user not in self._added:
            return self._user_vec[user]
        vec = self._live_vec.get(user)
        if vec is None:
            version = self._user_version.get(user, 0)
            vec = self._fold_in(self.history(user), user if user < self.num_users else None)
            if self._user_version.get(user, 0) == version:  # no event applied meanwhile: still current
                self._live_vec[user] = vec
        return vec

    def scores(self, user: int) -> Tensor:
        """Every item's score for a user (trained or added), their current history folded in. ``[items_count]``."""
        if self._item_vec is not None:
            return self._item_scores(self.user_vector(user))
        if user < self.num_users and user not in self._added:
            with torch.inference_mode():
                return self._extend(self.model.score_all(torch.tensor([user], device=self.model.device))[0].float().cpu())
        return self._scores_of_history(self.history(user), user if user < self.num_users else None)

    def _excluded(self, user: int) -> list[int]:
        return self._seen_row(user).tolist() + list(self._added.get(user, ()))

    def _seen_row(self, user: int) -> np.ndarray:
        if user >= self.num_users:
            return np.zeros(0, dtype=np.int64)
        return self._seen.indices[self._seen.indptr[user]:self._seen.indptr[user + 1]]

    def _mask(self, scores: Tensor, user: int | None, extra: Sequence[int] = ()) -> Tensor:
        """``scores`` (a fresh tensor, changed in place: call in inference mode) with the user's seen and added
        items and ``extra`` at -inf."""
        if user is not None:
            seen = self._seen_row(user)
            if len(seen):
                scores[torch.from_numpy(seen.astype(np.int64))] = -torch.inf
            extra = [*self._added.get(user, ()), *extra]
        extra = [i for i in extra if i < scores.shape[0]]  # an item added after the scores were computed
        if extra:
            scores[torch.tensor(extra, dtype=torch.long)] = -torch.inf
        return scores

    @torch.inference_mode()
    def _top(self, scores: Tensor, k: int, exclude: Sequence[int] = (), diversity: float = 0.0,
             user: int | None = None) -> list[Recommendation]:
        """The top ``k`` of ``scores`` (a fresh tensor: masked in place) less ``user``'s items and ``exclude``;
        equal scores in the seeded random order of :func:`graphrec.eval.topk.topk`."""
        scores = self._mask(scores, user, exclude)
        k = min(k, scores.shape[0])
        if diversity > 0:
            if self.item_text is None:
                raise ConfigError("diversity needs the items' text embeddings, which this run has none of")
            pool = min(scores.shape[0], k * MMR_POOL)
            pool_scores, pool_idx = topk(scores.unsqueeze(0), pool, self._gen.manual_seed(0))
            finite = torch.isfinite(pool_scores[0])
            cand, cand_scores = pool_idx[0][finite], pool_scores[0][finite]
            order = mmr(cand_scores, self._all_text()[cand], k, diversity) if len(cand) else torch.zeros(0, dtype=torch.long)
            top_idx, top_scores = cand[order], cand_scores[order]
        else:
            top_scores, top_idx = _top_k(scores, k, self._gen)
        return [Recommendation(self.item_id(i), float(s), self.title(i))
                for i, s in zip(top_idx.tolist(), top_scores.tolist(), strict=True) if s != -float("inf")]

    def _all_text(self) -> Tensor:
        assert self.item_text is not None
        if not self._new_items:
            return self.item_text
        return torch.cat([self.item_text, torch.stack([n.vector for n in self._new_items])])

    def check_k(self, k: int) -> None:
        if not 1 <= k <= self.items_count:
            raise ConfigError(f"k must be in [1, {self.items_count}] (the number of items), got {k}")

    # ---------------------------------------------------------------- reads

    def recommend(self, user: object, k: int = 10, exclude: Sequence[object] = (),
                  diversity: float = 0.0) -> list[Recommendation]:
        """Top-k for a trained or added user, with everything they interacted with (including just now) left out."""
        self.refresh()
        self.check_k(k)
        u = self.user_index(user)
        extra = [self.item_index(i) for i in exclude]
        if self._ann is not None and diversity == 0:
            return self._ann_top(self.user_vector(u), k, self._excluded(u) + extra)
        return self._top(self.scores(u), k, extra, diversity, user=u)

    def _ann_top(self, vec: Tensor, k: int, excluded: list[int]) -> list[Recommendation]:
        """Top-k by the approximate index: the ``k + len(excluded)`` nearest by inner product, less the excluded."""
        assert self._ann is not None
        want = min(self.items_count, k + len(excluded))
        with self._ann_lock:
            self._ann.hnsw.efSearch = max(self.ann_ef_search, want)
            scores, idx = self._ann.search(vec.cpu().numpy().astype(np.float32)[None], want)
        drop = set(excluded)
        out = [(int(i), float(sc)) for i, sc in zip(idx[0], scores[0], strict=True) if i >= 0 and int(i) not in drop]
        return [Recommendation(self.item_id(i), sc, self.title(i)) for i, sc in out[:k]]

    def recommend_for_history(self, items: Sequence[object], k: int = 10, exclude: Sequence[object] = (),
                              diversity: float = 0.0) -> list[Recommendation]:
        """Top-k for an anonymous user from the items they interacted with (folded in; nothing is stored)."""
        self.refresh()
        self.check_k(k)
        if not items:
            raise ConfigError("history needs at least one item")
        hist = [self.item_index(i) for i in items]
        return self._top(self._scores_of_history(hist, None), k, hist + [self.item_index(i) for i in exclude], diversity)

    def similar(self, item: object, k: int = 10) -> list[Recommendation]:
        """The k items nearest to ``item`` in the model's space: cosine of item embeddings (embedding models),
        else the items the model recommends to someone whose history is that item alone."""
        self.refresh()
        self.check_k(k)
        i = self.item_index(item)
        if self._item_vec is not None:
            vecs = torch.nn.functional.normalize(self._item_vec, dim=1)
            scores = (vecs @ vecs[i]).cpu()
        else:
            scores = self._scores_of_history([i], None)
        return self._top(scores, k, [i])

    def search(self, query: str, k: int = 10, user: object | None = None,
               personal_weight: float = SEARCH_PERSONAL_WEIGHT) -> list[Recommendation]:
        """Items ranked by text similarity to ``query`` (cosine of BERT embeddings); with ``user``, plus
        ``personal_weight`` times the user's standardised model score (their items already seen left out).

        The blended score is ``cos(q, item) + w · (s_u(item) − mean) / std`` over the catalogue.
        """
        self.refresh()
        self.check_k(k)
        if self.item_text is None or self._encode is None:
            raise TextUnavailable(f"search needs the run's text encoder and item texts: {self._text_error or 'none'}")
        with self._encode_lock:
            q = torch.nn.functional.normalize(self._encode([query]).float().cpu(), dim=1)[0]
        scores = self._all_text() @ q
        u: int | None = None
        if user is not None:
            u = self.user_index(user)
            personal = self.scores(u)
            # an item added by another request between the two reads is in one of them only: leave it out
            n = min(len(scores), len(personal))
            scores, personal = scores[:n], personal[:n]
            finite = personal[torch.isfinite(personal)]
            z = (personal - finite.mean()) / finite.std().clamp(min=1e-12)
            scores = scores + personal_weight * z
        return self._top(scores, k, user=u)

    def explain(self, user: object, item: object) -> Any:
        """The trained model's explanation (:meth:`DeployedModel.explain`) of a trained user and item.

        An item the user interacted with since training is reported as such (``seen``, no rank), as the
        recommendations leave it out; the rest explains the trained model, without the added interactions.
        """
        self.refresh()
        u, i = self.user_index(user), self.item_index(item)
        if u >= self.num_users or i >= self.num_items:
            what = f"user {user!r}" if u >= self.num_users else f"item {item!r}"
            raise NotExplainable(f"{what} was added after training; explanations cover the trained graph "
                                 "(graphrec retrain folds the added data into a new run)")
        ex = self.deployed.explain(self.user_id(u), self.item_id(i))
        if not ex.seen and i in self._added.get(u, ()):
            ex = replace(ex, seen=True, rank=None)
        return ex

    # ---------------------------------------------------------------- writes

    def add_events(self, events: Sequence[Mapping[str, Any]]) -> int:
        """Record interactions ``{"user", "item", "timestamp"?}`` (durably, then in memory); returns how many.

        All or nothing: an unknown item (add it with :meth:`add_items` first) or a malformed user id rejects
        the whole batch before anything is written. A new user id creates the user.
        """
        clean = []
        for n, e in enumerate(events):
            if "user" not in e or "item" not in e:
                raise ConfigError(f"event {n}: needs a user and an item, got {dict(e)!r}")
            user = self._new_id(e["user"], self._int_users, "user", f"event {n}")
            item = self._new_id(e["item"], self._int_items, "item", f"event {n}")
            ts = e.get("timestamp")
            stamp = float(ts) if ts is not None else time.time()
            if not 0 <= stamp < MAX_TIMESTAMP:
                raise ConfigError(f"event {n}: timestamp {ts!r} is not seconds since the epoch")
            clean.append({"user": user, "item": item, "timestamp": stamp})
        with self._lock:
            self._catch_up()
            for n, e in enumerate(clean):  # UnknownIdError before anything is written
                if e["item"] not in self._item_pos and e["item"] not in self._new_item_index:
                    raise UnknownIdError(f"event {n}: unknown item {e['item']!r} (add it with POST /items first)")
            self._write({"op": "events", "events": clean})
        return len(clean)

    def add_items(self, items: Sequence[Mapping[str, Any]]) -> list[object]:
        """Add catalogue items ``{"item", "text", "title"?}`` (encoded with the run's text encoder)."""
        if self.item_text is None or self._encode is None:
            raise TextUnavailable(f"new items need the run's text encoder and item texts: {self._text_error or 'none'}")
        ids = [self._new_id(x["item"], self._int_items, "item", f"item {n}") for n, x in enumerate(items)]
        for n, x in enumerate(items):
            _utf8(str(x["text"]), f"item {n}: text")
            _utf8(str(x.get("title") or ""), f"item {n}: title")
            if len(str(x.get("title") or "")) > MAX_TITLE_CHARS:
                raise ConfigError(f"item {n}: title is over {MAX_TITLE_CHARS} characters")
        if len(set(ids)) != len(ids):
            raise ConfigError("the same item id is given twice in one request")
        with self._encode_lock:
            vectors = torch.nn.functional.normalize(self._encode([str(x["text"]) for x in items]).float().cpu(), dim=1)
        def free() -> None:  # checked again under the log's lock: another worker may have just added one
            taken = [i for i in ids if i in self._new_item_index or i in self._item_pos]
            if taken:
                raise ItemExists(f"item {taken[0]!r} already exists")

        with self._lock:
            self._catch_up()
            free()
            self._write({"op": "items", "items": [
                {"item": i, "text": str(x["text"]), "title": str(x.get("title") or x["text"])[:MAX_TITLE_CHARS],
                 "vector": base64.b64encode(v.numpy().astype(np.float32).tobytes()).decode()}
                for i, x, v in zip(ids, items, vectors, strict=True)]}, check=free)
        return ids

    def _write(self, record: dict[str, Any], check: Callable[[], None] | None = None) -> None:
        """Append ``record`` to the log (after the records other workers appended, and ``check`` on the state
        they leave, both under the log's lock) and apply it."""
        if self.log is not None:
            with self.log.locked():
                self._catch_up()
                if check is not None:
                    check()
                self.log.append(record)
        self._apply(record)

    def refresh(self) -> None:
        """Apply the records other server processes appended to the shared log (cheap when there are none)."""
        if self.log is not None and self.log.has_new():
            with self._lock:
                self._catch_up()

    def _catch_up(self) -> None:
        if self.log is not None:
            for record in self.log.read_new():
                self._apply(record)

    def _apply(self, record: Mapping[str, Any]) -> None:
        op = record.get("op")
        if op == "events":
            for e in record["events"]:
                raw = e["user"]
                u = self._user_pos.get(raw, self._new_users.get(raw))
                if u is None:
                    self._new_user_ids.append(raw)
                    u = self._new_users[raw] = self.num_users + len(self._new_user_ids) - 1
                i = self.item_index(e["item"])
                added = self._added.setdefault(u, [])
                if i not in added:
                    added.append(i)
                self._user_version[u] = self._user_version.get(u, 0) + 1
                self._live_vec.pop(u, None)
                self.events += 1
        elif op == "items":
            for x in record["items"]:
                vec = torch.from_numpy(np.frombuffer(base64.b64decode(x["vector"]), dtype=np.float32).copy())
                self._add_item(x["item"], x["title"], x["text"], vec)
        else:
            raise GraphrecError(f"unknown log record {op!r}; written by a newer graphrec?")

    def _add_item(self, raw: object, title: str, text: str, vector: Tensor) -> None:
        if self.item_text is None:
            raise TextUnavailable("the event log holds items added from their text, which need the catalogue's text "
                                  f"embeddings: serve this run with its text encoder ({self._text_error or 'none'})")
        sims = self.item_text @ vector  # [I]
        top = torch.topk(sims, min(NEW_ITEM_NEIGHBOURS, self.num_items))
        w = top.values.clamp(min=1e-6)
        item = _NewItem(raw, title, text, vector, top.indices, w / w.sum())
        # the item's entry first, its vector after: a concurrent read never meets a vector without an item
        self._new_items.append(item)
        self._new_item_index[raw] = self.num_items + len(self._new_items) - 1
        if self._item_vec is not None:
            dev = self._item_vec.device
            vec = (self._item_vec[item.neighbours.to(dev)] * item.weights.to(dev).unsqueeze(1)).sum(0, keepdim=True)
            self._item_vec = torch.cat([self._item_vec, vec])
            if self._ann is not None:
                with self._ann_lock:
                    self._ann.add(vec.cpu().numpy().astype(np.float32))

    def stats(self) -> dict[str, Any]:
        return {"model": self.deployed.name, "version": self.version, "users": self.users_count,
                "items": self.items_count, "events": self.events, "new_users": len(self._new_users),
                "new_items": len(self._new_items)}

    @property
    def version(self) -> str:
        """The bundle's weights digest (first 12 hex digits): which trained model answers."""
        return str(self.deployed.meta.get("files", {}).get("weights.safetensors", ""))[:12]


def _utf8(text: str, what: str) -> str:
    """``text`` if it is valid Unicode (no lone surrogate, which JSON allows and UTF-8 does not); ConfigError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{what} {text!r} is not valid Unicode (a lone surrogate)") from None
    return text


def _top_k(scores: Tensor, k: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """:func:`graphrec.eval.topk.topk` of one row: one ``torch.topk`` where the top ``k + 1`` hold no equal
    finite scores (then the random tie order cannot matter), else ``topk`` itself with the seeded generator."""
    n = scores.shape[0]
    values, idx = torch.topk(scores, min(k + 1, n))
    v = values.numpy()
    if not np.any((v[1:] == v[:-1]) & np.isfinite(v[1:])):
        return values[:k], idx[:k]
    top_scores, top_idx = topk(scores.unsqueeze(0), k, gen.manual_seed(0))
    return top_scores[0], top_idx[0]


def _hnsw(item_vec: Tensor | None, m: int) -> Any:
    """A faiss HNSW index (inner product) over the item vectors."""
    if item_vec is None:
        raise ConfigError("index 'faiss' needs an embedding model (scores = user · item); this model scores "
                          "items otherwise: use the exact index")
    try:
        import faiss
    except ImportError:
        raise ConfigError("index 'faiss' needs faiss: pip install 'graphrec[faiss]'") from None
    index = faiss.IndexHNSWFlat(item_vec.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 2 * m + 16
    index.add(np.ascontiguousarray(item_vec.cpu().numpy(), dtype=np.float32))
    return index


class NotExplainable(GraphrecError):
    """An explanation asked for a user or item added after training."""


class ItemExists(GraphrecError):
    """``add_items`` with an id the catalogue already has."""


def run_item_texts(deployed: DeployedModel) -> list[str]:
    """The catalogue's item texts: the bundle's where it recorded them, else title plus attribute names
    (``"Toy Story (1995). genre: Animation, Children's"``)."""
    texts = deployed.meta.get("item_texts")
    if texts:
        return list(texts)
    g = deployed.graph
    parts: list[list[str]] = [[] for _ in range(len(deployed.items))]
    for et in g.edge_types:
        src, rel, dst = et
        if src != "item" or dst == "user" or rel.startswith("rev_"):
            continue
        labels = g.node_labels[dst]
        ei = g[et].edge_index
        for i, a in zip(ei[0].tolist(), ei[1].tolist(), strict=True):
            parts[i].append(str(labels[a]))
    titles = g.node_labels["item"]
    return [f"{t}. {', '.join(p)}" if p else str(t) for t, p in zip(titles, parts, strict=True)]


def open_live(run_dir: str | Path, text: bool = True, device: str = "cpu", index: str = "exact") -> LiveModel:
    """Load a run for serving: its bundle, its item text embeddings and encoder, and its log (replayed).

    The log lives in ``<run>/serving/events.log``. ``text=False`` skips the encoder (no search, no new items).
    """
    from graphrec.run.bundle import load

    run = Path(run_dir)
    deployed = load(run, device=device)
    item_text, encode, why = None, None, "it was turned off (graphrec serve --no-text, open_live(text=False))"
    if text:
        try:
            encoder = _encoder(run)
            encode = encoder.encode
            item_text = encoder.encode(run_item_texts(deployed))  # cached on disk across restarts
            encoder.cache_dir = None  # queries: never written to the disk cache
            encoder.encode(["warm-up query"])  # the first short batch pays for one-time set-up, not a request
        except Exception as exc:  # the encoder's weights missing offline, a broken install...
            why = f"{type(exc).__name__}: {exc}"
            log.warning("serving %s without text search and new items: %s", run, why)
            encode = None
    live = LiveModel(deployed, EventLog(run / "serving" / "events.log"), item_text=item_text, encode=encode,
                     text_error=why, index=index)
    try:  # build the explainer now, not during the first request
        deployed.explain(live.user_id(0), live.item_id(int(live.scores(0).argmax())))
    except ConfigError:  # a model without a graph explanation
        pass
    return live


def _encoder(run: Path) -> Any:
    """The run's text encoder (``text:`` of its config.yaml; the default model where it has none)."""
    import yaml

    from graphrec.text import TextEncoder

    section: dict[str, Any] = {}
    cfg = run / "config.yaml"
    if cfg.is_file():
        section = (yaml.safe_load(cfg.read_text()) or {}).get("text") or {}
    kwargs: dict[str, Any] = {"progress": False, "device": "cpu"}
    if section.get("model"):
        return TextEncoder(section["model"], max_length=int(section.get("max_length", 256)), **kwargs)
    return TextEncoder(max_length=int(section.get("max_length", 256)), **kwargs)
