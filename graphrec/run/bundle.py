"""A finished run as a deployable model: everything to recommend and explain, nothing pickled.

``run_experiment`` writes three files into the run directory:

* ``bundle.json``: the format version, the model's registry name and config,
  its hyperparameters, the vocabularies (raw ids), every node's raw id and
  label (titles, genre names), each item's text (``item_texts``, what
  ``graphrec serve`` encodes for search; older bundles lack it and are served
  with titles and attribute names), the edge types, the attribute node types
  of the adjacency, where the data came from, and the SHA-256 of the two
  files below;
* ``weights.safetensors``: the model's state dict;
* ``arrays.safetensors``: the seen-items matrix (every interaction of the
  log: train, valid and test; CSR; bundles written before 2026-12-07 hold
  train and valid only, and :func:`load` warns) and the
  train graph (every edge type's ``edge_index`` and edge attributes, every
  node type's features), and the item text features where the model reads
  them.

:func:`load` rebuilds the model from these alone (through the model
registry), so ``recommend`` and ``explain`` work with the dataset moved or
deleted, without re-splitting or re-encoding text.
"""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphrec.data.vocab import Vocabulary
from graphrec.errors import GraphrecError
from graphrec.fs import atomic_path, atomic_write_text, file_digest
from graphrec.graph.export import interaction_matrix, normalized_adjacency
from graphrec.nn.base import ScoringModel
from graphrec.nn.registry import MODELS, model_config
from graphrec.nn.spec import ModelInputs
from graphrec.rank.recommender import Recommender
from graphrec.text.templates import item_labels

#: the bundle layout this graphrec writes; a bundle with a larger version is refused
BUNDLE_VERSION = 1
BUNDLE_FILES = ("bundle.json", "weights.safetensors", "arrays.safetensors")
_SEP = "|"  # tensor names: "edge|user|interacts|item|edge_index", "node|item|x"


def _ids(vocab_ids: np.ndarray | list[object]) -> dict[str, Any]:
    ids = np.asarray(vocab_ids)
    if ids.dtype.kind in "iu":
        return {"dtype": "int", "ids": ids.astype(np.int64).tolist()}
    return {"dtype": "str", "ids": [str(x) for x in ids.tolist()]}


def _save_tensors(tensors: dict[str, Tensor], path: Path) -> None:
    """Write ``tensors`` as one safetensors file, atomically, streamed from the tensors' own memory.

    safetensors refuses two entries on one storage (a graph shares one tensor
    between an edge type and its reverse): those are cloned, nothing else is.
    safetensors' ``save_file`` writes from the tensors' memory (0.8; older
    releases copy each tensor into bytes first); building the whole file in
    memory first, as before, tripled the arrays' footprint.
    """
    from safetensors.torch import save_file

    owned: set[int] = set()
    out: dict[str, Tensor] = {}
    for key, value in tensors.items():
        v = value.detach().cpu().contiguous()
        ptr = v.untyped_storage().data_ptr()
        out[key] = v.clone() if ptr in owned else v
        owned.add(out[key].untyped_storage().data_ptr())
    with atomic_path(path) as tmp:
        save_file(out, str(tmp))


def write_bundle(run_dir: str | Path, model: ScoringModel, graph: HeteroData, seen: sp.csr_matrix,
                 model_section: dict[str, Any], item_text: Tensor | None = None,
                 attributes: tuple[str, ...] = (), provenance: dict[str, Any] | None = None,
                 item_texts: list[str] | None = None) -> Path:
    """Write the bundle of a trained model into ``run_dir`` (each file atomically; ``bundle.json`` last).

    Args:
        model: The trained model (its registry entry rebuilds it).
        graph: The train graph it was built from (``GraphBuilder``).
        seen: ``num_users × num_items`` items left out of recommendations: every interaction the users
            have (train, valid and test: :attr:`graphrec.run.pipeline.Prepared.interacted`).
        model_section: The ``model:`` section (``name`` and the model's keys).
        item_text: Item text features, where the model reads them.
        attributes: The item attribute node types of its adjacency, in order.
        provenance: Anything worth recording (dataset name and source, split, experiment).
        item_texts: Each item's text as the run's text template renders it (what a server encodes for search).
    """
    out = Path(run_dir)
    seen = sp.csr_matrix(seen)
    arrays: dict[str, Tensor] = {
        "seen|indptr": torch.from_numpy(seen.indptr.astype(np.int64)),
        "seen|indices": torch.from_numpy(seen.indices.astype(np.int64)),
    }
    for t in graph.node_types:
        if "x" in graph[t]:
            arrays[f"node{_SEP}{t}{_SEP}x"] = graph[t].x.float()
    for et in graph.edge_types:
        store = graph[et]
        for attr in ("edge_index", "weight", "rating", "time"):
            if attr in store:
                arrays[_SEP.join(("edge", *et, attr))] = store[attr]
    if item_text is not None:
        arrays["item_text"] = item_text.float()
    _save_tensors(model.state_dict(), out / "weights.safetensors")
    _save_tensors(arrays, out / "arrays.safetensors")
    nodes = {t: {"num_nodes": int(graph[t].num_nodes), "raw_ids": _ids(graph.node_raw_ids[t]),
                 "labels": None if t == "user" else list(graph.node_labels[t])} for t in graph.node_types}
    meta = {
        "format_version": BUNDLE_VERSION,
        "seen": "every interaction",  # older bundles: train + valid (no key)
        "model": model_section,
        "model_class": type(model).__name__,
        "hparams": {k: v for k, v in model.hparams().items() if not isinstance(v, Tensor)},
        "num_users": model.num_users,
        "num_items": model.num_items,
        "nodes": nodes,
        "edge_types": [list(et) for et in graph.edge_types],
        "attributes": list(attributes),
        "provenance": provenance or {},
        "item_texts": item_texts,
        "files": {f: file_digest(out / f, "sha256") for f in BUNDLE_FILES[1:]},
    }
    return atomic_write_text(out / "bundle.json", json.dumps(meta, indent=1))


class DeployedModel(Recommender):
    """A trained model loaded from its bundle: the :class:`~graphrec.rank.Recommender` contract
    (``recommend``, ``recommend_for_history``, raw ids in and out) plus :meth:`explain` and
    :meth:`similar_items`.

    Attributes:
        graph: The train graph (raw ids, labels, attribute nodes), for explanations.
        name: The model's registry name.
        meta: The bundle's ``bundle.json``.
    """

    def __init__(self, model: ScoringModel, users: Vocabulary, items: Vocabulary, seen: sp.csr_matrix,
                 graph: HeteroData, meta: dict[str, Any], train: sp.csr_matrix | None = None) -> None:
        super().__init__(model, users, items, seen=seen)
        self.graph, self.meta, self.name = graph, meta, meta["model"]["name"]
        self.train = train if train is not None else interaction_matrix(graph)
        self._explainer: Any = None
        self._explainer_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DeployedModel({self.name}, {len(self.users)} users, {len(self.items)} items)"

    def item_label(self, item: object) -> str:
        """An item's human-readable name (its title where the dataset has one)."""
        return str(self.graph.node_labels["item"][int(self.items.encode([item])[0])])

    @property
    def verb(self) -> str:
        """How explanations say what a user did with an item: ``"rated"`` where the run's data had ratings
        (:attr:`~graphrec.data.sources.SourceConfig.rated` of the dataset it recorded; a run that recorded none,
        or one this version cannot read, is taken as rated), else ``"interacted with"``."""
        from graphrec.data.sources import source_config

        dataset = ((self.meta.get("provenance") or {}).get("config") or {}).get("dataset")
        try:
            rated = source_config(dataset).rated if dataset else True
        except GraphrecError:
            rated = True
        return "rated" if rated else "interacted with"

    def explain(self, user: object, item: object) -> Any:
        """Why ``item`` scores for ``user`` (raw ids): an :class:`~graphrec.explain.Explanation`."""
        with self._explainer_lock:  # a server's threads share one explainer, built once
            if self._explainer is None:
                from graphrec.explain import Explainer

                self._explainer = Explainer(self.model, self.graph, seen=self.seen, train=self.train,
                                            users=self.users, items=self.items, verb=self.verb)
        return self._explainer.explain(user, item)

    @torch.inference_mode()
    def similar_items(self, item: object, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items the model recommends to someone whose history is ``item`` alone (raw ids, scores)."""
        return self.recommend_for_history([item], k=k)


def _read_tensors(path: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own SafetensorError for truncated or foreign files
        raise GraphrecError(f"{path}: not a readable safetensors file ({exc}); the bundle is damaged: "
                            "re-export it from the run (graphrec.run.pipeline.export_bundle)") from None


def _vocab(spec: dict[str, Any], name: str) -> Vocabulary:
    return Vocabulary(np.asarray(spec["ids"], dtype=np.int64) if spec["dtype"] == "int" else spec["ids"], name=name)


def load(run_dir: str | Path, device: str | torch.device = "cpu") -> DeployedModel:
    """Load a finished run's bundle: the trained model, ready to recommend and explain.

    Needs only the run directory (not the dataset, no re-split, no text
    encoding). Raises GraphrecError naming the file for a missing, damaged
    (truncated, wrong checksum) or newer-format bundle.
    """
    run = Path(run_dir)
    meta_path = run / "bundle.json"
    if not run.is_dir():
        raise GraphrecError(f"{run}: no such run directory")
    if not meta_path.is_file() and (run / "config.yaml").is_file() and not (run / "best.pt").is_file():
        raise GraphrecError(f"{run}: no best.pt there; not a finished graphrec run (the run has not finished an "
                            "epoch: resume it with graphrec run --resume)")
    if not meta_path.is_file():
        hint = (" (written before bundles existed: graphrec.run.pipeline.export_bundle(run_dir) writes one from the "
                "data)" if (run / "best.pt").is_file() else " (not a finished graphrec run directory)")
        raise GraphrecError(f"{meta_path}: no bundle there{hint}")
    try:
        meta = json.loads(meta_path.read_text())
        version = int(meta["format_version"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise GraphrecError(f"{meta_path}: not a valid bundle description ({exc}); the bundle is damaged") from None
    if version > BUNDLE_VERSION:
        raise GraphrecError(f"{meta_path}: bundle format {version} is newer than this graphrec reads "
                            f"({BUNDLE_VERSION}); upgrade graphrec")
    for f in BUNDLE_FILES[1:]:
        path = run / f
        if not path.is_file():
            raise GraphrecError(f"{path}: missing; the bundle is incomplete")
        if file_digest(path, "sha256") != meta["files"][f]:
            raise GraphrecError(f"{path}: checksum differs from bundle.json's; the file is damaged or was replaced")
    weights, arrays = _read_tensors(run / "weights.safetensors"), _read_tensors(run / "arrays.safetensors")

    graph = HeteroData()
    graph.node_raw_ids, graph.node_labels = {}, {}
    vocabs = {t: _vocab(node["raw_ids"], t) for t, node in meta["nodes"].items()}
    for t, node in meta["nodes"].items():
        n = int(node["num_nodes"])
        graph[t].num_nodes = n
        graph[t].node_id = torch.arange(n)
        ids = vocabs[t].ids.tolist()
        graph.node_raw_ids[t] = ids
        graph.node_labels[t] = node["labels"] if node["labels"] is not None else [f"{t} {x}" for x in ids]
        if t == "item":  # bundles written before titles were shown as read ("Shining, The" -> "The Shining")
            graph.node_labels[t] = item_labels(graph.node_labels[t], ids)
        if f"node{_SEP}{t}{_SEP}x" in arrays:
            graph[t].x = arrays[f"node{_SEP}{t}{_SEP}x"]
    for et in map(tuple, meta["edge_types"]):
        for attr in ("edge_index", "weight", "rating", "time"):
            key = _SEP.join(("edge", *et, attr))
            if key in arrays:
                graph[et][attr] = arrays[key]
    num_users, num_items = int(meta["num_users"]), int(meta["num_items"])
    if "seen" not in meta:
        warnings.warn(f"{meta_path}: written before bundles left out every item a user has: its seen items are "
                      "the train and valid parts, so a user's test items can be recommended; "
                      "graphrec.run.pipeline.export_bundle(run_dir) rewrites it from the run's data", stacklevel=2)
    seen = sp.csr_matrix((np.ones(len(arrays["seen|indices"]), dtype=np.float32), arrays["seen|indices"].numpy(),
                          arrays["seen|indptr"].numpy()), shape=(num_users, num_items))

    config = model_config(meta["model"])
    spec = MODELS[config.name]
    needs = config.needs()
    attributes = tuple(meta["attributes"])
    train = interaction_matrix(graph)
    inputs = ModelInputs(
        num_users, num_items, train=train,
        adjacency=normalized_adjacency(graph, attributes=attributes) if needs.adjacency else None,
        extra_nodes={t: int(graph[t].num_nodes) for t in attributes},
        item_text=arrays.get("item_text"), graph=graph if needs.graph else None)
    model = spec.create(config, inputs)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise GraphrecError(f"{run / 'weights.safetensors'}: does not fit the model of bundle.json: "
                            f"{str(exc).splitlines()[0]}") from None
    return DeployedModel(model.to(device).eval(), vocabs["user"], vocabs["item"], seen, graph, meta, train=train)
