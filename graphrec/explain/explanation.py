"""The :class:`Explanation` container: a small typed subgraph, ranked contributions, and its renderings.

An explanation is plain data (nodes, edges, numbers), so it serialises to JSON
and back without the model; :meth:`Explanation.to_networkx`,
:meth:`Explanation.draw`, :meth:`Explanation.to_html` and
:meth:`Explanation.text` only read it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphrec.errors import ConfigError
from graphrec.fs import atomic_path, atomic_write_text

if TYPE_CHECKING:
    import networkx as nx

#: File formats :meth:`Explanation.save` writes, by extension.
FORMATS = (".png", ".json", ".html", ".htm")

#: Node roles, in drawing order.
ROLES = ("user", "recommended", "history", "neighbor", "item", "attribute")
_LAYERS = {"user": 0, "history": 1, "neighbor": 2, "item": 2, "attribute": 2, "recommended": 3}
_ROLE_COLOURS = {"user": "#1f77b4", "recommended": "#d62728", "history": "#ff7f0e", "neighbor": "#9ecae1",
                 "item": "#fdd0a2", "attribute": "#2ca02c"}


@dataclass(frozen=True)
class ExplainNode:
    """One node of an explanation subgraph.

    Attributes:
        type: Node type in the graph (``"user"``, ``"item"``, ``"genre"``...).
        index: Index among the nodes of that type.
        raw_id: The dataset's id (a string for attribute nodes).
        label: Human-readable name (a title, a genre).
        role: ``"user"`` (the one explained), ``"recommended"`` (the item),
            ``"history"`` (an item the user interacted with), ``"neighbor"``
            (another user), ``"item"`` (another item), ``"attribute"``.
        importance: The node's share of the score (exact contribution for
            LightGCN; summed edge attributions for GraphSAGE; 0 for context
            nodes that carry none).
    """

    type: str
    index: int
    raw_id: Any
    label: str
    role: str
    importance: float = 0.0

    @property
    def key(self) -> str:
        """``"type:index"``, the id edges and contributions refer to."""
        return f"{self.type}:{self.index}"


@dataclass(frozen=True)
class ExplainEdge:
    """One edge of an explanation subgraph, as it exists in the graph (``source`` → ``target``).

    Attributes:
        source, target: Node keys (``"user:3"``), in the graph's forward direction.
        type: The relation (``"interacts"``, ``"has_genre"``).
        importance: How much of the score flows through the edge (LightGCN:
            the score carried by the propagation walks from the user that
            cross it; GraphSAGE: integrated-gradients attribution of its
            message mask). 0 for context edges.
    """

    source: str
    target: str
    type: str
    importance: float = 0.0


@dataclass(frozen=True)
class Contribution:
    """A named part of the score.

    Attributes:
        label: What it is, in words (``"history item Return of the Jedi (1983)"``).
        group: ``"user"``, ``"history"``, ``"neighbor"``, ``"item"``, ``"edge"``,
            ``"attribute"`` or ``"remainder"``.
        value: Its part of the score.
        nodes: Keys of the nodes (one) or edge ends (two) it belongs to; empty
            for aggregates.
    """

    label: str
    group: str
    value: float
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Explanation:
    """Why ``item`` was recommended to ``user``: a subgraph and the contributions that carried the score.

    Invariant: ``sum(c.value for c in contributions) + sum(r.value for r in
    remainder) == score`` (up to float rounding).

    Attributes:
        model: The explained model's name (``"LightGCN"``).
        method: ``"exact"`` (LightGCN decomposition) or
            ``"integrated-gradients"`` (GraphSAGE edge masks).
        score: The model's score of the pair.
        user, item: Keys of the explained user and item nodes.
        nodes, edges: The subgraph.
        contributions: The largest parts of the score, by decreasing ``|value|``.
        remainder: Named aggregates of everything not listed individually.
        groups: Totals per group over *all* parts (not only the listed ones).
        paths: Chains of node keys that carried the score, with their importance.
        rank: The item's position in the user's list, when known (1 = top).
    """

    model: str
    method: str
    score: float
    user: str
    item: str
    nodes: tuple[ExplainNode, ...]
    edges: tuple[ExplainEdge, ...]
    contributions: tuple[Contribution, ...]
    remainder: tuple[Contribution, ...] = ()
    groups: dict[str, float] = field(default_factory=dict)
    paths: tuple[tuple[tuple[str, ...], float], ...] = ()
    rank: int | None = None

    def __post_init__(self) -> None:
        keys = {n.key for n in self.nodes}
        for name in ("user", "item"):
            if getattr(self, name) not in keys:
                raise ValueError(f"Explanation.{name} {getattr(self, name)!r} is not among its nodes")
        for e in self.edges:
            if e.source not in keys or e.target not in keys:
                raise ValueError(f"edge {e.source} -> {e.target} has an end that is not among the nodes")

    # --- access ---

    def node(self, key: str) -> ExplainNode:
        """The node with this key; KeyError naming it otherwise."""
        for n in self.nodes:
            if n.key == key:
                return n
        raise KeyError(f"no node {key!r} in this explanation")

    def by_role(self, role: str) -> list[ExplainNode]:
        """Nodes of one role, by decreasing importance."""
        return sorted((n for n in self.nodes if n.role == role), key=lambda n: -n.importance)

    def _user_edge(self, node: ExplainNode) -> float:
        """Importance of the edge between the explained user and ``node`` (-inf if none)."""
        for e in self.edges:
            if {e.source, e.target} == {self.user, node.key}:
                return e.importance
        return -float("inf")

    def _history_by_edge(self) -> list[ExplainNode]:
        """History items by the score their interaction with the user carries (their edge), then their own."""
        return sorted(self.by_role("history"), key=lambda n: (-self._user_edge(n), -n.importance))

    def top_edges(self, k: int = 5) -> list[ExplainEdge]:
        """The ``k`` edges with the largest importance."""
        return sorted(self.edges, key=lambda e: -e.importance)[:k]

    @property
    def total(self) -> float:
        """Listed contributions plus remainder (equals :attr:`score`)."""
        return sum(c.value for c in self.contributions) + sum(r.value for r in self.remainder)

    # --- serialisation ---

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; :meth:`from_dict` restores an equal Explanation."""
        d = asdict(self)
        d["paths"] = [{"nodes": list(p), "importance": w} for p, w in self.paths]
        for c in (*d["contributions"], *d["remainder"]):
            c["nodes"] = list(c["nodes"])
        d["nodes"] = [{**n, "key": f"{n['type']}:{n['index']}"} for n in d["nodes"]]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Explanation:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(
                model=d["model"], method=d["method"], score=float(d["score"]), user=d["user"], item=d["item"],
                nodes=tuple(ExplainNode(**{k: v for k, v in n.items() if k != "key"}) for n in d["nodes"]),
                edges=tuple(ExplainEdge(**e) for e in d["edges"]),
                contributions=tuple(Contribution(**{**c, "nodes": tuple(c["nodes"])}) for c in d["contributions"]),
                remainder=tuple(Contribution(**{**c, "nodes": tuple(c["nodes"])}) for c in d.get("remainder", [])),
                groups={k: float(v) for k, v in d.get("groups", {}).items()},
                paths=tuple((tuple(p["nodes"]), float(p["importance"])) for p in d.get("paths", [])),
                rank=d.get("rank"),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an explanation dict: {exc}") from exc

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=_json_default)

    @classmethod
    def from_json(cls, text: str) -> Explanation:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> Path:
        """Write ``.json``, ``.png`` or ``.html`` by the file's extension (atomically)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in FORMATS:
            raise ConfigError(f"{path}: unknown explanation format {suffix!r}; use .png, .json or .html")
        if suffix == ".json":
            atomic_write_text(path, self.to_json())
        elif suffix == ".png":
            self.draw(path)
        else:
            atomic_write_text(path, self.to_html())
        return path

    # --- views ---

    def to_networkx(self) -> nx.Graph:
        """An undirected networkx graph: nodes by key with their fields, edges with ``type`` and ``importance``."""
        import networkx as nx

        g = nx.Graph(model=self.model, method=self.method, score=self.score, user=self.user, item=self.item)
        for n in self.nodes:
            g.add_node(n.key, **asdict(n))
        for e in self.edges:
            g.add_edge(e.source, e.target, type=e.type, importance=e.importance)
        return g

    def text(self, verb: str = "rated") -> str:
        """One or two plain sentences: the history items that carried the score and the attributes they share."""
        item = self.node(self.item)
        history = [n for n in self._history_by_edge() if n.importance > 0 or self._user_edge(n) > 0][:2]
        shared = _shared_attributes(self, [item, *history])
        if history:
            titles = " and ".join(_quote(n.label) for n in history)
            head = f"Recommended {_quote(item.label)} because you {verb} {titles}"
            if shared:
                everyone = "both" if len(history) == 1 else "all three"
                head += f"; {everyone} are {_join([a.label for a in shared])}"
            head += "."
        else:
            head = f"Recommended {_quote(item.label)}"
            attrs = [a for a in self.by_role("attribute") if (a.key, item.key) in _edge_pairs(self) and a.importance >= 0]
            head += f", a {_join([a.label for a in attrs[:3]])} title." if attrs else "."
        share = self.groups.get("neighbor", 0.0) / self.score if self.score > 0 else 0.0
        if 0.2 < share <= 1.0:
            head += f" Other users' interactions carry {share:.0%} of its score."
        carriers = [a for a in self.by_role("attribute") if a.importance > 0]
        attr_share = sum(a.importance for a in carriers) / self.score if self.score > 0 else 0.0
        if carriers and 0.05 <= attr_share <= 1.0:
            head += f" {_join([a.label for a in carriers])} {'carries' if len(carriers) == 1 else 'carry'} {attr_share:.0%} of it."
        return head

    def draw(self, path: str | Path, title: str | None = None, dpi: int = 120) -> Path:
        """Render the subgraph to a PNG: colours by role, widths by importance, the recommended item highlighted."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import networkx as nx

        g = self.to_networkx()
        # left to right: the user, their history, the users and attributes that link it on, the item
        for _, data in g.nodes(data=True):
            data["layer"] = _LAYERS[data["role"]]
        pos = nx.multipartite_layout(g, subset_key="layer", scale=1.0)
        fig, ax = plt.subplots(figsize=(10, 7.5))
        strongest = max((abs(e.importance) for e in self.edges), default=0.0) or 1.0
        for e in self.edges:
            width = 0.8 + 6.0 * abs(e.importance) / strongest
            style = "dashed" if e.importance == 0 else "solid"
            colour = "#444444" if e.importance >= 0 else "#9467bd"
            nx.draw_networkx_edges(g, pos, edgelist=[(e.source, e.target)], width=width, style=style,
                                   edge_color=colour, alpha=0.75, ax=ax)
        for role in ROLES:
            keys = [n.key for n in self.nodes if n.role == role]
            if keys:
                size = 1400 if role in ("user", "recommended") else 700
                nx.draw_networkx_nodes(g, pos, nodelist=keys, node_color=_ROLE_COLOURS[role], node_size=size,
                                       edgecolors="black" if role == "recommended" else "white",
                                       linewidths=3 if role == "recommended" else 1, label=role, ax=ax)
        # each name just below its node, on a white box: not hidden by the node or crossed by edges
        below = {n.key: (pos[n.key][0], pos[n.key][1] - (0.12 if n.role in ("user", "recommended") else 0.09))
                 for n in self.nodes}
        labels = {n.key: _short(n.label) for n in self.nodes}
        nx.draw_networkx_labels(g, below, labels=labels, font_size=8, ax=ax,
                                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1.0})
        item = self.node(self.item)
        ax.set_title(title or f"{self.model}: why {_short(item.label, 40)} (score {self.score:.3f})", fontsize=11)
        ax.legend(loc="lower left", fontsize=8, markerscale=0.5, frameon=False)
        ax.text(0.5, -0.04, _wrap(self.text().replace("*", ""), 110), transform=ax.transAxes, ha="center", va="top", fontsize=9)
        ax.axis("off")
        fig.tight_layout()
        path = Path(path)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
        plt.close(fig)
        return path

    def to_html(self) -> str:
        """A self-contained HTML page: the sentence, the contributions table, and the edges."""
        e = html.escape
        item = self.node(self.item)
        rows = "".join(f"<tr><td>{e(c.group)}</td><td>{e(c.label)}</td><td>{c.value:+.4f}</td></tr>"
                       for c in (*self.contributions, *self.remainder))
        edges = "".join(f"<tr><td>{e(self.node(x.source).label)}</td><td>{e(x.type)}</td>"
                        f"<td>{e(self.node(x.target).label)}</td><td>{x.importance:+.4f}</td></tr>"
                        for x in sorted(self.edges, key=lambda x: -x.importance))
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(item.label)}</title>"
                "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto}"
                "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style></head>"
                f"<body><h1>{e(item.label)}</h1><p>{_emphasis(e(self.text()))}</p>"
                f"<p>{e(self.model)}, {e(self.method)}: score {self.score:.4f}</p>"
                f"<h2>Contributions</h2><table><tr><th>group</th><th>part</th><th>value</th></tr>{rows}</table>"
                f"<h2>Edges</h2><table><tr><th>from</th><th>relation</th><th>to</th><th>importance</th></tr>{edges}"
                "</table></body></html>\n")


def _emphasis(escaped: str) -> str:
    """The sentence's ``*title*`` marks as HTML emphasis (on text already escaped)."""
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", escaped)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _edge_pairs(ex: Explanation) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in ex.edges} | {(e.target, e.source) for e in ex.edges}


def _shared_attributes(ex: Explanation, nodes: Sequence[ExplainNode]) -> list[ExplainNode]:
    """Attribute nodes linked to every one of ``nodes`` in the subgraph."""
    pairs = _edge_pairs(ex)
    return [a for a in ex.by_role("attribute") if all((a.key, n.key) in pairs for n in nodes)][:3]


def _quote(label: str) -> str:
    return f"*{label}*"


def _join(words: Sequence[str]) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _short(label: str, n: int = 24) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
