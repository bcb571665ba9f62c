"""Item texts filled from a template over the dataset's item fields."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pandas as pd

from graphrec.data.dataset import Dataset
from graphrec.errors import ConfigError

DEFAULT_ITEM_TEMPLATE = "{title}. Genres: {genres}. Tags: {tags}"
SEGMENT_SEP = ". "


#: Leading articles that library-sorted titles move to the end ("Shining, The (1980)"): English, French,
#: Italian, Spanish, German, Scandinavian; matched case-sensitively.
_ARTICLES = ("The", "A", "An", "La", "Le", "Les", "L'", "Il", "Lo", "Gli", "I", "El", "Los", "Las", "Der", "Die",
             "Das", "Den", "Det", "Un", "Une")
_SORTED_TITLE = re.compile(r"^(?P<name>.+?), (?P<article>" + "|".join(re.escape(a) for a in _ARTICLES)
                           + r")(?P<rest>(?: \([^()]*\))*)$")


def display_title(title: str) -> str:
    """A library-sorted title as people read it: its trailing article moved back to the front.

    MovieLens (and many catalogues) sort titles by moving the article after
    a comma: ``display_title("Shining, The (1980)") == "The Shining (1980)"``;
    the parenthesised parts after it (a year, an alternative title) stay at
    the end. Other titles are returned unchanged. For what is shown (graph
    node labels, explanations); the text encoder reads the title as the data
    has it.
    """
    m = _SORTED_TITLE.match(title)
    if m is None:
        return title
    article = m["article"]
    space = "" if article.endswith("'") else " "  # "L'Avventura"
    return f"{article}{space}{m['name']}{m['rest']}"


def item_labels(titles: Sequence[object], ids: Sequence[object]) -> list[str]:
    """Item node labels: each title as read (:func:`display_title`), and where several items share a title
    (ML-100K lists 18 films twice under two ids), the item's id after it, so no two items read the same:
    ``"Money Talks (1997) [item 1053]"``; an item without a title is ``"item 1053"``. Labels that are already
    unique come back unchanged."""
    shown = [display_title(str(t)) for t in titles]
    counts = Counter(shown)
    return [f"item {i}" if not s.strip() else f"{s} [item {i}]" if counts[s] > 1 else s
            for s, i in zip(shown, ids, strict=True)]


def _fields(segment: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(segment) if name]


def _value(x: Any) -> str:
    if isinstance(x, (list, tuple)):
        return ", ".join(str(v) for v in x)
    if x is None or x is pd.NA or (isinstance(x, float) and x != x):
        return ""
    return str(x)


def render(template: str, row: dict[str, Any]) -> str:
    """Fill ``template``, dropping each ``". "``-separated segment with an empty field.

    ``render("{title}. Tags: {tags}", {"title": "Heat", "tags": []}) == "Heat"``.
    """
    kept = []
    for segment in template.split(SEGMENT_SEP):
        values = {name: _value(row.get(name)) for name in _fields(segment)}
        if all(values.values()):
            kept.append(segment.format(**values))
    return SEGMENT_SEP.join(kept)


def dataset_template(dataset: Dataset) -> str:
    """The item text template a dataset gets by default: its text fields joined (an item table's), else
    :data:`DEFAULT_ITEM_TEMPLATE` (MovieLens: title, genres, tags)."""
    if dataset.text_fields:
        return SEGMENT_SEP.join(f"{{{f}}}" for f in dataset.text_fields)
    return DEFAULT_ITEM_TEMPLATE


def item_texts(dataset: Dataset, template: str | None = DEFAULT_ITEM_TEMPLATE, max_tags: int = 10) -> list[str]:
    """One text per item index, from ``template`` over ``dataset.item_info``.

    Args:
        template: Placeholders name ``item_info`` columns (``title``,
            ``genres``, ``tags``, ``year``...); list fields are joined with
            ", ". A segment whose field is missing or empty is skipped.
            None: the dataset's own (:func:`dataset_template`).
        max_tags: Keep at most this many tags (the most applied) per item.

    Raises:
        ConfigError: a placeholder names no item field.
    """
    if template is None:
        template = dataset_template(dataset)
    info = dataset.item_info
    names = {n for seg in template.split(SEGMENT_SEP) for n in _fields(seg)}
    optional = {"tags", "genres", "year"}
    unknown = names - set(info.columns) - optional
    if unknown:
        raise ConfigError(f"item text template {template!r}: unknown field(s) {sorted(unknown)}; "
                          f"{dataset.name} items have {sorted(info.columns)}")
    columns = [n for n in names if n in info.columns]
    records: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in info[columns].to_dict("records")]
    if "tags" in columns:
        for r in records:
            if isinstance(r["tags"], list):
                r["tags"] = r["tags"][:max_tags]
    return [render(template, r) for r in records]
