"""The :class:`Explanation` container: a small typed subgraph, ranked contributions, and its renderings.

An explanation is plain data (nodes, edges, numbers), so it serialises to JSON
and back without the model; :meth:`Explanation.to_networkx`,
:meth:`Explanation.draw`, :meth:`Explanation.to_html` and
:meth:`Explanation.text` only read it.
"""

from __future__ import annotations

import html
import itertools
import json
from collections import defaultdict
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

#: the smallest share of the explained difference a history item needs to be named in the sentence
LEAST_SHARE = 0.01
#: the user's own embedding's share of the difference above which the sentence says it
OWN_SHARE_SHOWN = 0.2
#: the smallest share of a GraphSAGE score a first step (the item's raters, an attribute...) needs to be named
CARRIER_SHARE = 0.05

#: What the HTML page says of its two tables, which split the same difference (``{what}``: "lead" or "score") two
#: ways.
VIA_CAPTION = ("The {what} split by your first step in the graph: each row is everything that reaches you through "
               "one of your edges (an item you rated, the people who also rated it, their other items...), and one "
               "row is your own embedding. The rows add up to the {what}; the sentence and the bars use them.")
CONTRIBUTIONS_CAPTION = ("The {what} split by node: each row is the part of one node's own embedding, whichever "
                         "walks from you reach it. The rows add up to the {what} too.")
CONTRIBUTIONS_VS_VIA = (" So an item you rated has another value here than above, where its row holds everything "
                        "that reaches you through it, not its own embedding's part.")
ITEM_WEIGHTS_CAPTION = ("The {what} split by the items you rated: this model scores an item by adding up what each "
                        "item you rated gives it (its item-item weights), so each row is one item's weight to this "
                        "item{less}. The rows add up to the {what}; the sentence and the bars use them.")
SAGE_VIA_CAPTION = ("The score split by the first step that the model's messages take into you or into the item: "
                    "each row is everything that reaches you through one of your edges (an item you rated; the "
                    "others you rated together; an attribute of yours) or the item through one of its edges (the "
                    "users who rated it, together; an attribute of its own), and one row is what is left when every "
                    "message is silenced, and one the integration error (a model of more than two layers adds one "
                    "for the messages from further away). The rows add up to the score; the sentence and the bars "
                    "use them.")
ATTRIBUTIONS_CAPTION = ("Each edge's integrated-gradient attribution (its two directions merged), then the other edges "
                        "of the computation subgraph and the no-message baseline (with the integration error): together "
                        "they add up to the score.")

#: Node roles, in drawing order.
ROLES = ("user", "recommended", "history", "neighbor", "item", "attribute")
_ROLE_NAMES = {"user": "the user", "recommended": "the item explained", "history": "items the user rated",
               "neighbor": "users who rated them and the item", "item": "other items", "attribute": "attributes"}
#: columns of the picture: attributes between the history and the co-users, so that no edge runs along a column
#: through other nodes (an attribute links the user or a history item to a co-user or the item)
_LAYERS = {"user": 0, "history": 1, "attribute": 2, "neighbor": 3, "item": 3, "recommended": 4}
_ROLE_COLOURS = {"user": "#1f77b4", "recommended": "#d62728", "history": "#ff7f0e", "neighbor": "#9ecae1",
                 "item": "#fdd0a2", "attribute": "#2ca02c"}


def type_name(node_type: str) -> str:
    """A node type in words (``"release_decade"`` -> ``"release decade"``), as sentences and pictures name it."""
    return node_type.replace("_", " ")


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

    @property
    def caption(self) -> str:
        """The name a picture shows: an attribute with its type (``"gender: M"``, ``"decade: 1950s"``), for a
        value alone can say little; a user or an item by its label."""
        return self.label if self.type in ("user", "item") else f"{type_name(self.type)}: {self.label}"


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
            ``"attribute"``, ``"baseline"`` (GraphSAGE: the score with every message silenced), ``"error"``
            (GraphSAGE: the integration error, no part of the model's reasons) or ``"remainder"``.
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
    """Why ``item`` scores for ``user``: a subgraph and the contributions that carried the score.

    Contrastive where the model allows it (LightGCN and its successors, EASE, ItemKNN, GF-CF, BSPM): the
    contributions decompose :attr:`difference`, the item's score less a
    reference (the mean score of the user's candidate items, or the next
    item's), so the parts every candidate shares cancel. Invariant:
    ``sum(c.value for c in contributions) + sum(r.value for r in remainder) ==
    difference`` (== ``score`` without a reference), up to float rounding;
    the same holds for :attr:`via`.

    Attributes:
        model: The explained model's name (``"LightGCN"``).
        method: ``"exact"`` (LightGCN decomposition),
            ``"integrated-gradients"`` (GraphSAGE edge masks) or
            ``"item-weights"`` (a sum over the history: EASE, ItemKNN,
            GF-CF, BSPM).
        score: The model's score of the pair.
        user, item: Keys of the explained user and item nodes.
        nodes, edges: The subgraph.
        contributions: The largest parts of the score, by decreasing ``|value|``.
        remainder: Named aggregates of everything not listed individually.
        groups: Totals per group over *all* parts (not only the listed ones).
        paths: Chains of node keys that carried the score, with their importance (GraphSAGE: paths from the
            user to the item, ``user – history item – co-user or attribute – item``).
        rank: The item's position in the user's list, when known (1 = top); None for a seen item.
        reference: The reference score the contributions are relative to (None: they split the score).
        reference_kind: What the reference is (``"mean of the candidates"``, ``"the next item"``).
        seen: The user already interacted with the item (it is not ranked, only explained).
        via: The difference split by the user's first edge: one part per history item (everything that
            reaches the user through their interaction with it), the user's own embedding, and a
            remainder; by decreasing value. What the sentence names, with their shares. For GraphSAGE, the
            score's attributions split by the first step into the user or into the item (history items,
            the item's raters together, each attribute of either, group ``"attribute"``) and the no-message
            baseline (group ``"baseline"``).
        themes: For each attribute of the item (a genre...), the sum of the :attr:`via` parts of the history
            items that have it (``nodes``: the attribute, then those items); largest first. Themes overlap
            (an item has several genres), so they do not add up.
        history_size, history_total: How many items the user interacted with (the explained one excepted),
            and the sum of their :attr:`via` parts: what a theme is weighed against (0: unknown).
        verb: How the sentence says what the user did with an item: ``"rated"`` (a log with ratings, the
            default) or ``"interacted with"`` (clicks, check-ins...): :class:`~graphrec.explain.Explainer`'s.
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
    reference: float | None = None
    reference_kind: str = ""
    seen: bool = False
    via: tuple[Contribution, ...] = ()
    themes: tuple[Contribution, ...] = ()
    history_size: int = 0
    history_total: float = 0.0
    verb: str = "rated"

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
        """Listed contributions plus remainder (equals :attr:`difference`)."""
        return sum(c.value for c in self.contributions) + sum(r.value for r in self.remainder)

    @property
    def difference(self) -> float:
        """What the contributions decompose: the score less the reference (the score without one)."""
        return self.score - (self.reference or 0.0)

    @property
    def lift(self) -> float:
        """The sum of the positive parts of :attr:`via` (else of the contributions): what the shares in the
        sentence and the picture are of. Parts of mixed signs can add up to a small difference, which would
        make shares of it run past 100%; of the lift they stay within it."""
        parts = self.via or (*self.contributions, *self.remainder)
        return sum(c.value for c in parts if c.value > 0 and c.group != "error")

    def named(self, max_items: int = 3, enough: float = 0.5, least: float | None = None) -> list[tuple[Contribution, float]]:
        """The history items the sentence names, with their shares of :attr:`difference`: the largest
        :attr:`via` parts of history items, until ``enough`` of it is named or a part is under ``least``."""
        least = LEAST_SHARE if least is None else least
        if self.difference <= 0 or self.lift <= 0:
            return []
        out: list[tuple[Contribution, float]] = []
        for c in self.via:
            if c.group != "history" or len(out) >= max_items:
                continue
            share = c.value / self.lift
            if share < least or sum(x for _, x in out) >= enough:
                break
            out.append((c, share))
        return out

    # --- serialisation ---

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; :meth:`from_dict` restores an equal Explanation.

        ``user`` and ``item`` are node keys (``"user:195"``: type and index); ``user_id`` and ``item_id``
        beside them are the dataset's own ids (196), what a client asked about.
        """
        d = asdict(self)
        d["user_id"], d["item_id"] = self.node(self.user).raw_id, self.node(self.item).raw_id
        d["paths"] = [{"nodes": list(p), "importance": w} for p, w in self.paths]
        for c in (*d["contributions"], *d["remainder"], *d["via"], *d["themes"]):
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
                rank=d.get("rank"), reference=d.get("reference"), reference_kind=d.get("reference_kind", ""),
                seen=bool(d.get("seen", False)),
                via=tuple(Contribution(**{**c, "nodes": tuple(c["nodes"])}) for c in d.get("via", [])),
                themes=tuple(Contribution(**{**c, "nodes": tuple(c["nodes"])}) for c in d.get("themes", [])),
                history_size=int(d.get("history_size", 0)), history_total=float(d.get("history_total", 0.0)),
                verb=str(d.get("verb", "rated")),
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

    def text(self, verb: str | None = None) -> str:
        """The sentence (``verb``: default :attr:`verb`), in plain text (titles in quotes): the item's rank, the
        history items that carried the most of its score (with their shares), and what they share."""
        return self._sentence(verb or self.verb, lambda label: f"\u201c{label}\u201d")

    def _sentence(self, verb: str, mark: Any) -> str:
        """The sentence with each title passed through ``mark`` (quotes for text, ``<em>`` for HTML)."""
        item = self.node(self.item)
        title = mark(item.label)
        if self.seen:
            return f"You already {verb} {title}: it is not ranked among your recommendations."
        if self.rank is None:
            lead = f"{title} scores {self.score:.3g} for you"
        elif self.rank == 1:
            lead = f"{title} is your top recommendation"
        else:
            lead = f"{title} is ranked {ordinal(self.rank)} for you"
        if self.method == "integrated-gradients" and (self.via or self._user_to_item_paths()):
            return lead + self._sage_reasons(verb, mark) + "."
        if self.via:
            return lead + self._contrastive_reasons(verb, mark) + "."
        out = lead + self._attribution_reasons(verb, mark) + "."
        share = self.groups.get("neighbor", 0.0) / self.score if self.score > 0 else 0.0
        if 0.2 < share <= 1.0:
            out += f" Other users' interactions carry {share:.0%} of its score."
        carriers = [a for a in self.by_role("attribute") if a.importance > 0]
        attr_share = sum(a.importance for a in carriers) / self.score if self.score > 0 else 0.0
        if carriers and 0.05 <= attr_share <= 1.0:
            out += f" {_join([a.label for a in carriers])} {'carries' if len(carriers) == 1 else 'carry'} {attr_share:.0%} of it."
        return out

    def _contrastive_reasons(self, verb: str, mark: Any) -> str:
        ref = self.reference_kind or "the reference"
        if self.difference < 0:
            return f", though it scores below {ref}" if self.reference is not None else ""
        if self.difference == 0 or self.lift <= 0:
            return f", scoring the same as {ref}" if self.reference is not None else ""
        what = f"what lifts it above {ref}" if self.reference is not None else "its score"
        own = sum(c.value for c in self.via if c.group == "user") / self.lift
        rated = any(c.group in ("history", "remainder") for c in self.via)
        named = self.named()
        items = _join([f"{mark(self.label_of(c))} ({x:.0%})" for c, x in named]) if named else ""
        parts = []
        if own >= OWN_SHARE_SHOWN:
            parts.append(f"{own:.0%} of {what} comes from your learned taste profile")
            if named:
                parts.append(f"of what you {verb}, {items} {'carries' if len(named) == 1 else 'carry'} the most")
            elif rated:
                parts.append(f"the rest is spread over the items you {verb}, none above {LEAST_SHARE:.0%}")
        elif named:
            share = sum(x for _, x in named)
            parts.append(f"{'mostly' if share >= 0.5 else 'partly'} because you {verb} {items}")
        else:
            parts.append(f"from many of the items you {verb}, none above {LEAST_SHARE:.0%} of {what}")
        keys = [c.nodes[0] for c, _ in named if c.nodes]
        pairs = _edge_pairs(self)
        liked_all = [n for n in self.by_role("neighbor")
                     if (n.key, self.item) in pairs and all((n.key, k) in pairs for k in keys)]
        if liked_all and keys:
            parts.append(f"people who {verb} {('it', 'both', 'all three')[len(keys) - 1]} also {verb} this one")
        theme = self.theme()
        if theme is not None:
            c, x = theme
            n = len(c.nodes) - 1
            if n == 1:
                phrase, why = (f"the one {c.label} title you {verb} carries {x:.0%}",
                               f", more than the others you {verb} on average")
            else:
                phrase, why = (f"your {n} {c.label} titles carry {x:.0%} together",
                               f", more per title than the rest of what you {verb}")
            # theme() weighed it against the history (when known): say why it is named
            parts.append(phrase + (why if self.history_size > 0 else ""))
        return (": " if own >= OWN_SHARE_SHOWN else ", ") + "; ".join(parts)

    def theme(self, least: float = 0.1) -> tuple[Contribution, float] | None:
        """The item's attribute whose history items carry the largest share of :attr:`difference` (at least
        ``least``) and more than their number's share of what the history items carry together (a theme
        that only carries its weight explains nothing: 40 dramas out of 60 items carrying 40% of the history's
        part do not lift the item more than the rest), with that share; None without one."""
        if self.difference <= 0 or self.lift <= 0:
            return None
        for c in self.themes:
            share = c.value / self.lift
            if share < least:
                return None
            if self._pulls_above_its_weight(c):
                return c, share
        return None

    def _pulls_above_its_weight(self, theme: Contribution) -> bool:
        """The theme's items carry more per item than the user's history items on average (unknown: True)."""
        if self.history_size <= 0:
            return True
        n = len(theme.nodes) - 1
        return theme.value / n > self.history_total / self.history_size

    def label_of(self, c: Contribution) -> str:
        """The label of a contribution's node where the subgraph has it, else the contribution's own (an
        attribute's own says whose it is: "your occupation (writer)")."""
        if len(c.nodes) == 1 and c.group != "attribute":
            try:
                return self.node(c.nodes[0]).label
            except KeyError:
                pass
        return c.label

    def carriers(self, most: int = 3, least: float | None = None) -> list[tuple[Contribution, float]]:
        """The largest parts of :attr:`via` (at most ``most``, each at least ``least`` of :attr:`lift`; "other
        items" and other aggregates of leftovers excepted), with their shares: what a GraphSAGE sentence names."""
        least = CARRIER_SHARE if least is None else least
        if self.lift <= 0:
            return []
        out: list[tuple[Contribution, float]] = []
        for c in sorted(self.via, key=lambda c: -c.value):
            share = c.value / self.lift
            if len(out) >= most or share < least:
                break
            if c.group not in ("remainder", "error"):
                out.append((c, share))
        return out

    def _sage_reasons(self, verb: str, mark: Any) -> str:
        """GraphSAGE: the first steps from the user or the item that carry the most of its score (:attr:`via`),
        with their shares; then how what the user rated reaches the item (the paths with the most attribution)."""
        clauses = []
        named = self.carriers()
        if named:
            words = [(self._carrier_words(c, verb, mark), share) for c, share in named]
            (lead, plural), share = words[0]
            clause = f"{lead} {'carry' if plural else 'carries'} {_share(share)} of what raises its score"
            rest = [f"{w} {_share(x)}" for (w, _), x in words[1:]]
            clauses.append(clause + (" and " + rest[0] if len(rest) == 1 else ", " + _join(rest) if rest else ""))
        clauses += self._path_links(verb, mark)
        return ": " + "; ".join(clauses) if clauses else ""

    def _carrier_words(self, c: Contribution, verb: str, mark: Any) -> tuple[str, bool]:
        """How the sentence names a part of :attr:`via`, and whether the words are plural."""
        if c.group == "neighbor" and not c.nodes:  # "the 12 people who rated it", in the sentence's verb
            return c.label.replace(" rated ", f" {verb} "), not c.label.startswith(("the one person", "1 of "))
        if c.group == "baseline":
            return "its own features and yours", True
        if c.group == "history":
            return f"{mark(self.label_of(c))} (which you {verb})", False
        return c.label, False

    def _path_links(self, verb: str, mark: Any) -> list[str]:
        """How the first two history items of :attr:`paths` that lift the item reach it: through people who rated
        both, or an attribute they share; the heavier way first. Paths through the user's own attributes, and
        paths whose edges weigh against the item, are not cited."""
        ways: dict[str, list[tuple[str, str]]] = {}  # "user" or the attribute's key -> (history item, co-user)
        picked: list[str] = []
        for p, weight in self.paths:
            h, via = p[1], p[2]
            if weight <= 0 or h in picked or not h.startswith("item:"):
                continue
            picked.append(h)
            ways.setdefault("user" if via.startswith("user:") else via, []).append((h, via))
            if len(picked) == 2:
                break
        clauses: list[tuple[int, str]] = []  # (where the way's heaviest path comes, the clause)
        shared: list[str] = []
        shared_at = len(ways)
        for at, (way, links) in enumerate(ways.items()):  # in the order of their heaviest paths
            titles = [mark(self.node(h).label) for h, _ in links]
            if way == "user":
                one = len({w for _, w in links}) == 1  # one co-user who rated both, or each their own
                who, items = ("someone", _join(titles)) if one else ("people", " or ".join(titles))
                clauses.append((at, f"{who} who {verb} {items} {verb} it too"))
            else:
                attr = self.node(way)  # "its decade (1950s)", as the parts name it
                shared.append(f"its {type_name(attr.type)} ({attr.label}) with {_join(titles)}")
                shared_at = min(shared_at, at)
        if shared:
            clauses.append((shared_at, f"it shares {_join(shared)}, which you {verb}"))
        return [clause for _, clause in sorted(clauses)]

    def _user_to_item_paths(self) -> bool:
        return bool(self.paths) and all(p[0] == self.user and p[-1] == self.item for p, _ in self.paths)

    def _attribution_reasons(self, verb: str, mark: Any) -> str:
        item = self.node(self.item)
        history = [n for n in self._history_by_edge() if n.importance > 0 or self._user_edge(n) > 0][:2]
        shared = _shared_attributes(self, [item, *history])
        if history:
            out = f", because you {verb} {' and '.join(mark(n.label) for n in history)}"
            if shared:
                out += f"; {'both' if len(history) == 1 else 'all three'} are {_join([a.label for a in shared])}"
            return out
        attrs = [a for a in self.by_role("attribute") if (a.key, item.key) in _edge_pairs(self) and a.importance >= 0]
        return f", a {_join([a.label for a in attrs[:3]])} title" if attrs else ""

    def on_paths(self) -> list[ExplainNode]:
        """The nodes on some simple path from the user to the item in the subgraph (the ones a picture needs):
        the user, the item, and no dead end hanging off a path (a co-user's own attributes).

        With an edge user–item added, a node lies on a simple user–item path exactly when it lies on a cycle
        through that edge, that is, in the edge's biconnected component."""
        import networkx as nx

        g = self.to_networkx()
        g.add_edge(self.user, self.item)
        block = next(c for c in nx.biconnected_components(g) if self.user in c and self.item in c)
        return [n for n in self.nodes if n.key in block]

    def draw(self, path: str | Path, title: str | None = None, dpi: int = 120, sentence: bool = True,
             font_scale: float = 1.0) -> Path:
        """Render the explanation to a PNG: the subgraph's paths from the user to the item (colours by role,
        widths by the part of the difference flowing along each edge, dashed context edges), each name beside
        its node, in full; the parts of the difference as a bar chart beside it; the sentence below (unless
        ``sentence`` is False: :meth:`to_html` prints it above the picture). ``font_scale`` enlarges every text
        (a page that shows the picture narrower than its pixels needs larger ones)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import networkx as nx
        from matplotlib.lines import Line2D

        shown = {n.key for n in self.on_paths()}
        g = self.to_networkx().subgraph(shown).copy()
        for _, data in g.nodes(data=True):
            data["layer"] = _LAYERS[data["role"]]
        pos = _layout(g)
        parts = self._bars()
        fig = plt.figure(figsize=(14, 8 if sentence else 7.4))  # without the sentence, no room kept for it
        bottom = (0.17 if sentence else 0.11) * font_scale**2  # room for the legend, which grows with its text
        ax = fig.add_axes((0.01, bottom, 0.64, 0.92 - bottom))
        bars = fig.add_axes((0.75, bottom, 0.23, 0.92 - bottom)) if parts else None
        edges = [e for e in self.edges if e.source in shown and e.target in shown]
        strongest = max((abs(e.importance) for e in edges), default=0.0) or 1.0
        drawn = []  # (source, target, width): what the names keep off
        for e in edges:
            width = 0.8 + 6.0 * abs(e.importance) / strongest
            drawn.append((e.source, e.target, width))
            style = "dashed" if e.importance == 0 else "solid"
            colour = "#444444" if e.importance >= 0 else "#9467bd"
            nx.draw_networkx_edges(g, pos, edgelist=[(e.source, e.target)], width=width, style=style,
                                   edge_color=colour, alpha=0.75, ax=ax)
        for role in ROLES:
            keys = [n.key for n in self.nodes if n.role == role and n.key in shown]
            if keys:
                nx.draw_networkx_nodes(g, pos, nodelist=keys, node_color=_ROLE_COLOURS[role],
                                       node_size=_node_size(role),
                                       edgecolors="black" if role == "recommended" else "white",
                                       linewidths=3 if role == "recommended" else 1, ax=ax)
        # each name beside its node (left of the user, right of the others), whole, wrapped; never over a node:
        # larger text wraps sooner, for the column to its right stays where it is. Where that side would put the
        # name over an edge (the node's own edge to a node at its height, an edge passing by), it goes above or
        # below the node instead, whichever covers the least (edge width, other nodes and names; _place_names).
        label_width = round(22 / font_scale**1.5)
        xs = [p[0] for p in pos.values()]
        span = (max(xs) - min(xs)) or 1.0
        ax.set_xlim(min(xs) - span * 0.15, max(xs) + span * 0.3)
        names = []
        for n in self.nodes:
            if n.key not in shown:
                continue
            gap = span * (0.035 if n.role in ("user", "recommended") else 0.025)
            names.append((n.key, _wrap(n.caption, label_width), n.key == self.user, gap, _node_size(n.role) ** 0.5 / 2))
        _place_names(ax, pos, drawn, names, 8 * font_scale)
        ax.axis("off")
        item = self.node(self.item)
        what = (f"lead {self.difference:+.3f} over {self.reference_kind}" if self.reference is not None
                else f"score {self.score:.3f}")
        where = "already interacted with" if self.seen else (f"rank {self.rank}" if self.rank else "")
        fig.suptitle(title or f"{self.model}: why {item.label} ({what}{', ' + where if where else ''})",
                     fontsize=12 * font_scale, x=0.01, ha="left")  # over the graph, clear of the bars' title
        handles = [Line2D([], [], marker="o", linestyle="", markersize=8, markerfacecolor=_ROLE_COLOURS[r],
                          markeredgecolor="black" if r == "recommended" else "white", label=_ROLE_NAMES[r])
                   for r in ROLES if any(n.role == r and n.key in shown for n in self.nodes)]
        # widths are relative to the widest edge drawn: say what that one carries, in the bars' shares, so that a
        # thick edge of a diffuse explanation is not read as a large part
        widest = f" (the widest carries {_share(strongest / self.lift)}, as the bars count)" if self.lift > 0 else ""
        handles.append(Line2D([], [], color="#444444", linewidth=5,
                              label=f"wider: more of it flows along the edge{widest}"))
        if any(e.importance < 0 for e in edges):
            handles.append(Line2D([], [], color="#9467bd", linewidth=2, label="purple: flows against it"))
        if any(e.importance == 0 for e in edges):
            handles.append(Line2D([], [], color="#444444", linewidth=1, linestyle="dashed",
                                  label="dashed: context (a shared attribute the model does not propagate)"))
        for h in handles:  # the legend stays under the graph, clear of the bars' axis: larger text wraps sooner
            h.set_label(_wrap(str(h.get_label()), round(88 / font_scale**2)))
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.01), ncol=3, fontsize=8 * font_scale, frameon=False)
        if bars is not None:
            labels = [_wrap(lab, round(28 / font_scale)) for lab, _ in parts]
            values = [v for _, v in parts]
            bars.barh(range(len(parts)), values, color=["#1f77b4" if v >= 0 else "#9467bd" for v in values])
            bars.set_yticks(range(len(parts)), labels, fontsize=7 * font_scale)
            bars.invert_yaxis()
            bars.axvline(0, color="black", linewidth=0.5)
            bars.tick_params(axis="x", labelsize=7 * font_scale)
            bars.set_title(_wrap("parts, as shares of the sum of the positive ones", round(50 / font_scale)), fontsize=9 * font_scale)
            for k, v in enumerate(values):
                # at the bar's end; a negative one's right of zero, clear of the names on the left
                bars.text(max(v, 0.0), k, f" {_share(v)}", va="center", ha="left", fontsize=7 * font_scale)
            low, high = min(0.0, *values), max(0.0, *values)
            span = (high - low) or 1.0
            bars.set_xlim(low - (0.02 * span if low < 0 else 0.0), high + 0.15 * span)  # room for the end labels
            bars.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        if sentence:
            fig.text(0.5, 0.015, _wrap(self.text(), 150), ha="center", va="bottom", fontsize=9 * font_scale)
        path = Path(path)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
        plt.close(fig)
        return path

    def _bars(self, k: int = 8) -> list[tuple[str, float]]:
        """The bar chart's rows: the largest parts of :attr:`via` (else of the contributions), as shares."""
        total = self.lift
        if total <= 0:
            return []
        source = self.via or (*self.contributions, *self.remainder)
        top = sorted(source, key=lambda c: -abs(c.value))[:k]
        return [(self.label_of(c), c.value / total) for c in top]

    def to_html(self, picture: bool = True) -> str:
        """A self-contained HTML page: the sentence, the picture (embedded PNG), the parts it names and the
        contributions table, and the edges."""
        import base64
        import tempfile

        e = html.escape
        item = self.node(self.item)
        img = ""
        if picture:
            with tempfile.TemporaryDirectory() as tmp:
                # drawn at 96 dpi with larger text: the page shows it at its own width, readable at 100% zoom
                drawn = self.draw(Path(tmp) / "why.png", sentence=False, dpi=96, font_scale=1.25)
                data = base64.b64encode(drawn.read_bytes()).decode()
            img = ("<p class='wide'><img alt='explanation subgraph' style='max-width:100%' "
                   f"src='data:image/png;base64,{data}'></p>")
        ref = (f"score {self.score:.4f}, {e(self.reference_kind)} {self.reference:.4f}: the parts below split the "
               f"difference {self.difference:+.4f}" if self.reference is not None else f"score {self.score:.4f}")
        rank = "already interacted with" if self.seen else (f"rank {self.rank}" if self.rank else "")
        via = "".join(f"<tr><td>{e(c.label)}</td><td>{c.value:+.4f}</td><td>{_share(c.value / self.lift)}</td></tr>"
                      for c in self.via) if self.lift > 0 else ""
        what = "lead" if self.reference is not None else "score"
        less = f", less its weight to {self.reference_kind}" if self.reference is not None else ""
        heading, via_caption = (("Through which first steps", SAGE_VIA_CAPTION)
                                if self.method == "integrated-gradients" else
                                ("Through which of your interactions",
                                 (ITEM_WEIGHTS_CAPTION if self.method == "item-weights" else VIA_CAPTION)
                                 .format(what=what, less=less)))
        via_table = (f"<h2>{heading}</h2><p>{e(via_caption)}</p><table>"
                     f"<tr><th>part</th><th>value</th><th>share</th></tr>{via}</table>" if via else "")
        caption = (CONTRIBUTIONS_CAPTION.format(what=what) + (CONTRIBUTIONS_VS_VIA if via else "")
                   if self.method == "exact" else ITEM_WEIGHTS_CAPTION.format(what=what, less=less)
                   if self.method == "item-weights" else ATTRIBUTIONS_CAPTION)  # item-weights: without a lift
        rows = "".join(f"<tr><td>{e(c.group)}</td><td>{e(c.label)}</td><td>{c.value:+.4f}</td></tr>"
                       for c in (*self.contributions, *self.remainder))
        edges = "".join(f"<tr><td>{e(self.node(x.source).caption)}</td><td>{e(x.type)}</td>"
                        f"<td>{e(self.node(x.target).caption)}</td><td>{x.importance:+.4f}</td></tr>"
                        for x in sorted(self.edges, key=lambda x: -x.importance))
        sentence = self._sentence(self.verb, lambda label: f"<em>{e(label)}</em>")
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(item.label)}</title>"
                "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
                "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
                ".wide{width:min(1344px,96vw);margin-left:calc(50% - min(672px,48vw))}</style></head>"
                f"<body><h1>{e(item.label)}</h1><p>{sentence}</p>"
                f"<p>{e(self.model)}, {e(self.method)}: {ref}{'; ' + rank if rank else ''}</p>{img}{via_table}"
                + ("" if self.method == "item-weights" and via else  # the same split as the table above
                   f"<h2>Contributions</h2><p>{e(caption)}</p>"
                   f"<table><tr><th>group</th><th>part</th><th>value</th></tr>{rows}</table>")
                + f"<h2>Edges</h2><table><tr><th>from</th><th>relation</th><th>to</th><th>importance</th></tr>{edges}"
                "</table></body></html>\n")


def _layout(g: nx.Graph, clearance: float | None = None) -> dict[str, tuple[float, float]]:
    """Node positions in columns by ``layer``, one unit between the nodes of a column, the two end columns
    centred; the middle columns move up or down together, by the least that keeps every edge ``clearance`` away
    from the nodes it skips (an edge from the user to an attribute skips the history's column) and every long name
    away from the next column's nodes at its height: no edge passes through a node, no name runs over one (where
    that can be had; else the fewest do)."""
    columns: dict[int, list[str]] = defaultdict(list)
    for key, data in g.nodes(data=True):
        columns[data["layer"]].append(key)
    x_of = {layer: float(j) for j, layer in enumerate(sorted(columns))}
    if clearance is None:  # a node's radius in units grows with the tallest column, which sets the scale
        clearance = 0.05 * max(4, *(len(keys) for keys in columns.values()))
    pos = {key: (x_of[layer], (len(keys) - 1) / 2 - j) for layer, keys in columns.items() for j, key in enumerate(keys)}

    def crossings(at: dict[str, tuple[float, float]]) -> int:
        count = 0
        for a, b in g.edges:
            (xa, ya), (xb, yb) = at[a], at[b]
            count += sum(1 for x, y in at.values()
                         if min(xa, xb) < x < max(xa, xb) and abs(ya + (yb - ya) * (x - xa) / (xb - xa) - y) < clearance)
        # a long name runs right of its node (the first column's, left) into the next column's nodes at its height
        count += sum(1 for xa, ya in (at[k] for k in long_names) for xb, yb in at.values()
                     if xa > 0 and xb == xa + 1 and abs(ya - yb) < clearance)
        return count

    long_names = [k for k, data in g.nodes(data=True) if len(str(data.get("label", ""))) >= 14]

    # every combination of moves of the middle columns, in quarter units: up to one unit, two for a column of one
    # or two nodes (moving a long column far would leave the picture lopsided); the fewest crossings, then the
    # smallest moves (at most 17³ layouts, when every middle column is short and the picture small: milliseconds)
    middle = sorted(columns)[1:-1]  # the two ends stay centred
    moves = [[k / 4 for k in range(-4 * (1 + few), 4 * (1 + few) + 1)]
             for few in (len(columns[layer]) <= 2 for layer in middle)]
    layer_of = {key: data["layer"] for key, data in g.nodes(data=True)}

    def moved(by: tuple[float, ...]) -> dict[str, tuple[float, float]]:
        shift = dict(zip(middle, by, strict=True))
        return {k: (x, y + shift.get(layer_of[k], 0.0)) for k, (x, y) in pos.items()}

    return moved(min(itertools.product(*moves), key=lambda by: (crossings(moved(by)), sum(abs(d) for d in by))))


def _node_size(role: str) -> int:
    """A node's disk in the picture, in points² (matplotlib's marker area): the two ends drawn larger."""
    return 900 if role in ("user", "recommended") else 450


def _place_names(ax: Any, pos: dict[str, tuple[float, float]], edges: list[tuple[str, str, float]],
                 names: list[tuple[str, str, bool, float, float]], fontsize: float) -> dict[str, str]:
    """Write each name (``key, text, left, gap, radius``: ``gap`` in data units, the node's ``radius`` in points)
    beside its node: on its side (left or right) unless the name's box there covers something; then above or
    below the node, whichever covers the least. What a box covers: the widths of the edges (``source, target,
    width``) it crosses, summed (a thick edge cut by a name is worse than a thin one), and, each as ten of the
    widest edge, another node's disk, an earlier name, or a way out of the axes (into the legend or the title).
    The side wins ties. Boxes, disks and edges are compared in display coordinates, the edges sampled at every
    few pixels. Returns where each name went: ``"side"``, ``"above"`` or ``"below"``."""
    import numpy as np
    from matplotlib.transforms import offset_copy

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    ax.get_ylim()  # settles the autoscaled limits, so that data maps to display coordinates for good
    to_display = ax.transData.transform
    frame = ax.get_window_extent(renderer)
    samples, owner = [], []  # points along every edge, and the edge each belongs to
    weight = np.array([w for _, _, w in edges] or [1.0])
    heavy = 10 * float(weight.max())
    for k, (a, b, _) in enumerate(edges):
        (xa, ya), (xb, yb) = to_display([pos[a], pos[b]])
        t = np.linspace(0, 1, max(2, int(np.hypot(xb - xa, yb - ya) / 3)))
        samples.append(np.column_stack([xa + (xb - xa) * t, ya + (yb - ya) * t]))
        owner.append(np.full(len(t), k))
    points = np.concatenate(samples) if samples else np.zeros((0, 2))
    edge_of = np.concatenate(owner) if owner else np.zeros(0, dtype=int)
    keys = list(pos)
    index = {k: j for j, k in enumerate(keys)}
    centres = to_display([pos[k] for k in keys])
    radius_of = {key: radius for key, _, _, _, radius in names}
    radii = np.array([renderer.points_to_pixels(radius_of.get(k, 0.0)) for k in keys])
    taken: list[Any] = []
    box = {"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 0.8}

    def cost(text: Any, own: str) -> float:
        bb = text.get_window_extent(renderer)
        on_box = ((points[:, 0] > bb.x0) & (points[:, 0] < bb.x1) & (points[:, 1] > bb.y0) & (points[:, 1] < bb.y1))
        # a disk is covered where the box comes nearer its centre than its radius (its own node's excepted)
        dx = np.maximum(np.maximum(bb.x0 - centres[:, 0], centres[:, 0] - bb.x1), 0)
        dy = np.maximum(np.maximum(bb.y0 - centres[:, 1], centres[:, 1] - bb.y1), 0)
        near = np.hypot(dx, dy) < radii
        near[index[own]] = False
        outside = bb.x0 < frame.x0 or bb.x1 > frame.x1 or bb.y0 < frame.y0 or bb.y1 > frame.y1
        return (float(weight[np.unique(edge_of[on_box])].sum())
                + heavy * (int(near.sum()) + sum(bb.overlaps(other) for other in taken) + outside))

    where: dict[str, str] = {}
    for key, label, left, gap, radius in names:
        x, y = pos[key]
        best = ax.text(x - gap if left else x + gap, y, label, ha="right" if left else "left", va="center",
                       fontsize=fontsize, bbox=box)
        best_cost, where[key] = cost(best, key), "side"
        for dy_pt, va, name in ((radius + 2, "bottom", "above"), (-radius - 2, "top", "below")):
            if not best_cost:
                break
            other = ax.text(x, y, label, ha="center", va=va, fontsize=fontsize, bbox=box,
                            transform=offset_copy(ax.transData, fig=fig, y=dy_pt, units="points"))
            c = cost(other, key)
            if c < best_cost:
                best.remove()
                best, best_cost, where[key] = other, c, name
            else:
                other.remove()
        taken.append(best.get_window_extent(renderer))
    return where


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


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``, ``12th``, ``13th``, ``21st``, ``112th``..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _join(words: Sequence[str]) -> str:
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _short(label: str, n: int = 24) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def _share(x: float) -> str:
    """A share as a percentage, ``"<1%"`` below one half of a per cent (rather than a misleading ``"0%"``)."""
    return f"{x:.0%}" if abs(x) >= 0.005 else "<1%"


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))
