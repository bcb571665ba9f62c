"""The Explanation container: invariants, JSON round trip, networkx, PNG, HTML, text."""

import json
from dataclasses import replace

import matplotlib.image
import pytest

from graphrec.errors import ConfigError
from graphrec.explain import Contribution, ExplainEdge, ExplainNode, Explanation


def example() -> Explanation:
    nodes = (
        ExplainNode("user", 0, 196, "user 196", "user", 1.0),
        ExplainNode("item", 49, 50, "Star Wars (1977)", "recommended", 0.1),
        ExplainNode("item", 180, 181, "Return of the Jedi (1983)", "history", 0.9),
        ExplainNode("item", 171, 172, "The Empire Strikes Back (1980)", "history", 0.7),
        ExplainNode("item", 7, 8, "Babe (1995)", "history", -0.2),
        ExplainNode("genre", 14, "Sci-Fi", "Sci-Fi", "attribute"),
        ExplainNode("genre", 0, "Action", "Action", "attribute"),
        ExplainNode("user", 5, 6, "user 6", "neighbor", 0.6),
    )
    edges = (
        ExplainEdge("user:0", "item:180", "interacts", 0.5),
        ExplainEdge("user:0", "item:171", "interacts", 0.4),
        ExplainEdge("user:0", "item:7", "interacts", -0.1),
        ExplainEdge("user:5", "item:180", "interacts", 0.05),
        ExplainEdge("user:5", "item:49", "interacts", 0.02),
        *(ExplainEdge(f"item:{i}", f"genre:{g}", "has_genre") for i in (49, 180, 171) for g in (14, 0)),
    )
    contributions = (
        Contribution("your own embedding", "user", 1.0, ("user:0",)),
        Contribution("history item Return of the Jedi (1983)", "history", 0.9, ("item:180",)),
        Contribution("history item The Empire Strikes Back (1980)", "history", 0.7, ("item:171",)),
    )
    remainder = (Contribution("40 other co-interacting users", "neighbor", 0.9),)
    return Explanation("LightGCN", "exact", 3.5, "user:0", "item:49", nodes, edges, contributions, remainder,
                       {"user": 1.0, "history": 1.4, "neighbor": 1.1}, rank=1)


def test_total_and_access():
    ex = example()
    assert ex.total == pytest.approx(3.5)
    assert [n.label for n in ex.by_role("history")][:2] == ["Return of the Jedi (1983)", "The Empire Strikes Back (1980)"]
    assert ex.top_edges(1)[0].target == "item:180"
    with pytest.raises(KeyError, match="no node 'item:3'"):
        ex.node("item:3")


def test_invalid_subgraph_is_refused():
    ex = example()
    with pytest.raises(ValueError, match="not among the nodes"):
        Explanation(ex.model, ex.method, ex.score, ex.user, ex.item, ex.nodes,
                    (*ex.edges, ExplainEdge("user:0", "item:999", "interacts")), ex.contributions)
    with pytest.raises(ValueError, match=r"Explanation\.item 'item:1'"):
        Explanation(ex.model, ex.method, ex.score, ex.user, "item:1", ex.nodes, ex.edges, ex.contributions)


def test_text_example_from_the_issue():
    assert example().text() == (
        "\u201cStar Wars (1977)\u201d is your top recommendation, because you rated \u201cReturn of the Jedi "
        "(1983)\u201d and \u201cThe Empire Strikes Back (1980)\u201d; all three are Sci-Fi and Action. "
        "Other users' interactions carry 31% of its score.")
    assert "because you watched" in example().text(verb="watched")


@pytest.mark.parametrize(("rank", "lead"), [(1, "is your top recommendation"), (2, "is ranked 2nd for you"),
                                            (3, "is ranked 3rd for you"), (12, "is ranked 12th for you"),
                                            (21, "is ranked 21st for you"), (112, "is ranked 112th for you"),
                                            (361, "is ranked 361st for you")])
def test_the_wording_follows_the_rank(rank, lead):
    from dataclasses import replace

    assert replace(example(), rank=rank).text().startswith(f"\u201cStar Wars (1977)\u201d {lead}, because")
    seen = replace(example(), rank=None, seen=True).text()
    assert seen == "You already rated \u201cStar Wars (1977)\u201d: it is not ranked among your recommendations."


def test_contrastive_sentence_names_shares_of_the_difference():
    from dataclasses import replace

    via = (Contribution("Return of the Jedi (1983)", "history", 0.62, ("item:180",)),
           Contribution("The Empire Strikes Back (1980)", "history", 0.36, ("item:171",)),
           Contribution("your own embedding", "user", 0.3),
           Contribution("40 other interactions", "remainder", 0.72))
    ex = replace(example(), reference=1.5, reference_kind="the mean of your candidates", via=via, rank=12)
    assert ex.difference == 2.0 and [round(x, 2) for _, x in ex.named()] == [0.31, 0.18]
    text = ex.text()
    assert text.startswith("\u201cStar Wars (1977)\u201d is ranked 12th for you, partly because you rated "
                           "\u201cReturn of the Jedi (1983)\u201d (31%) and \u201cThe Empire Strikes Back (1980)\u201d (18%)")
    assert "*" not in text
    # where the user's own embedding carries much of the lead, the sentence says so first
    profile = replace(ex, via=(*via[:2], Contribution("your own embedding", "user", 1.0),
                               Contribution("40 other interactions", "remainder", 0.02)))
    assert profile.text().startswith("\u201cStar Wars (1977)\u201d is ranked 12th for you: 50% of what lifts it above "
                                     "the mean of your candidates comes from your learned taste profile; of what "
                                     "you rated, \u201cReturn of the Jedi (1983)\u201d (31%) and")
    # mixed signs: shares are of the positive parts (the lift), so they stay within 100% however small the lead
    mixed = replace(ex, via=(Contribution("Return of the Jedi (1983)", "history", 3.0, ("item:180",)),
                             Contribution("your own embedding", "user", 1.0),
                             Contribution("40 other interactions", "remainder", -3.9)))
    assert mixed.lift == 4.0
    assert "(75%)" in mixed.text() and all(0 < x <= 1 for _, x in mixed.named())
    below = replace(ex, reference=3.6)
    assert below.text().endswith("though it scores below the mean of your candidates.")
    same = replace(ex, reference=3.5)
    assert same.text().endswith("scoring the same as the mean of your candidates.")


def test_json_round_trip(tmp_path):
    ex = example()
    path = ex.save(tmp_path / "why.json")
    data = json.loads(path.read_text())
    assert data["nodes"][1]["key"] == "item:49" and data["nodes"][1]["raw_id"] == 50
    assert (data["item"], data["item_id"]) == ("item:49", 50) and data["user_id"] == ex.node(ex.user).raw_id
    assert Explanation.from_dict(data) == ex
    assert Explanation.from_json(ex.to_json()) == ex
    with pytest.raises(ValueError, match="not an explanation dict"):
        Explanation.from_dict({"model": "x"})


def test_networkx_view():
    g = example().to_networkx()
    assert g.number_of_nodes() == 8 and g.number_of_edges() == 11
    assert g.nodes["item:49"]["role"] == "recommended"
    assert g.edges["user:0", "item:180"]["importance"] == 0.5
    assert g.graph["score"] == 3.5


def test_png_is_written_and_decodes(tmp_path):
    path = example().save(tmp_path / "why.png")
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 400 and image.shape[1] > 400
    assert len({tuple(p) for p in image[::20, ::20].reshape(-1, image.shape[2]).tolist()}) > 5  # not blank


def test_html_and_unknown_format(tmp_path):
    text = example().save(tmp_path / "why.html").read_text()
    assert "<table>" in text and "Return of the Jedi (1983)" in text and "all three are Sci-Fi and Action" in text
    (tmp_path / "why.svg").write_text("old")
    with pytest.raises(ConfigError, match=r"why.svg: unknown explanation format '.svg'; use .png, .json or .html"):
        example().save(tmp_path / "why.svg")
    assert (tmp_path / "why.svg").read_text() == "old"


def test_text_names_attributes_that_carry_score():
    from dataclasses import replace

    ex = example()
    nodes = tuple(replace(n, importance=0.4) if n.label == "Sci-Fi" else n for n in ex.nodes)
    assert replace(ex, nodes=nodes).text().endswith("of its score. Sci-Fi carries 11% of it.")  # 0.4 / 3.5


def test_html_shows_titles_as_emphasis_not_asterisks(tmp_path):
    text = example().save(tmp_path / "why.html").read_text()
    sentence = text.split("<p>", 1)[1].split("</p>", 1)[0]
    assert "<em>Return of the Jedi (1983)</em>" in sentence and "*" not in sentence


def test_the_legend_says_what_the_widest_edge_carries(tmp_path, monkeypatch):
    """Widths are relative to the widest edge drawn: the legend gives that edge's share in the bars' terms (of the
    sum of the positive parts, 3.5 here: the widest edge, 0.5, is 14%), so a thick edge is not read as a big part."""
    import matplotlib.axes

    from graphrec.explain.explanation import _share

    labels = []
    original = matplotlib.axes.Axes.legend

    def legend(self, *args, handles=(), **kwargs):
        labels.extend(h.get_label() for h in handles)
        return original(self, *args, handles=handles, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "legend", legend)
    example().draw(tmp_path / "why.png")
    assert "wider: more of it flows along the edge (the widest carries 14%, as the bars count)" in labels
    assert [_share(x) for x in (0.14, 0.004, -0.004, -0.42)] == ["14%", "<1%", "<1%", "-42%"]


def test_an_attribute_is_named_with_its_type_in_the_picture_and_the_html(tmp_path, monkeypatch):
    """A value alone can say little ("M", "35-44"): the picture and the HTML's edge table name an attribute node
    with its type; users and items keep their labels."""
    import matplotlib.axes

    names = []
    original = matplotlib.axes.Axes.text

    def text(self, x, y, s, *args, **kwargs):
        names.append(s)
        return original(self, x, y, s, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "text", text)
    example().draw(tmp_path / "why.png")
    assert {"genre: Sci-Fi", "genre: Action", "user 196", "Star Wars (1977)"} <= set(names)
    assert "Sci-Fi" not in names
    html = example().to_html(picture=False)
    assert "<td>Star Wars (1977)</td><td>has_genre</td><td>genre: Sci-Fi</td>" in html


def _themed(theme_items: int, theme_value: float, history_size: int, history_total: float) -> Explanation:
    from dataclasses import replace

    via = (Contribution("Return of the Jedi (1983)", "history", 0.3, ("item:180",)),
           Contribution("your own embedding", "user", 0.1),
           Contribution("58 other interactions", "remainder", 1.6))
    theme = Contribution("Sci-Fi", "theme", theme_value, ("genre:14", *(f"item:{j}" for j in range(theme_items))))
    return replace(example(), reference=1.5, reference_kind="the mean of your candidates", via=via, rank=3,
                   themes=(theme,), history_size=history_size, history_total=history_total)


def test_a_theme_is_named_only_when_its_items_pull_above_their_weight():
    """Lift 2.0, history parts 1.9 over 60 items (0.032 each). 6 Sci-Fi titles carrying 0.5 (0.083 each) pull
    above their weight; 40 carrying 1.0 (0.025 each: 53% of the history's part from 67% of its items) do not."""
    from dataclasses import replace

    strong = _themed(6, 0.5, 60, 1.9)
    assert strong.theme() == (strong.themes[0], 0.25)
    assert strong.text().endswith(
        "; your 6 Sci-Fi titles carry 25% together, more per title than the rest of what you rated.")
    weak = _themed(40, 1.0, 60, 1.9)
    assert weak.theme() is None and "Sci-Fi" not in weak.text()
    # the largest theme does not pull above its weight, the next does: the sentence names the next
    noir = Contribution("Film-Noir", "theme", 0.3, ("genre:9", "item:180"))
    two = replace(weak, themes=(weak.themes[0], noir))
    assert two.theme() == (noir, 0.15) and two.text().endswith(
        "; the one Film-Noir title you rated carries 15%, more than the others you rated on average.")
    # an explanation saved before the history was recorded: the theme is weighed by its share alone
    assert _themed(40, 1.0, 0, 0.0).theme() is not None
    assert Explanation.from_json(strong.to_json()) == strong


def test_html_prints_the_sentence_once_and_says_what_each_table_splits(tmp_path, monkeypatch):
    from dataclasses import replace

    from graphrec.explain.explanation import CONTRIBUTIONS_CAPTION, VIA_CAPTION

    drawn = []
    original = Explanation.draw

    def draw(self, path, *args, sentence=True, **kwargs):
        drawn.append(sentence)
        return original(self, path, *args, sentence=sentence, **kwargs)

    monkeypatch.setattr(Explanation, "draw", draw)
    ex = _themed(6, 0.5, 60, 1.9)
    page = ex.to_html()
    assert drawn == [False]  # the picture leaves its sentence out: the page prints it above
    assert page.count("Return of the Jedi") >= 2 and page.count("is ranked 3rd for you") == 1
    assert VIA_CAPTION.format(what="lead").split(":")[0] in page  # "The lead split by your first step..."
    assert CONTRIBUTIONS_CAPTION.format(what="lead").split(":")[0] in page and "another value here" in page
    no_via = replace(ex, via=(), reference=None).to_html(picture=False)  # the score itself, one table
    assert "The score split by node" in no_via and "above" not in no_via and "first step" not in no_via
    assert "integrated-gradient" in replace(ex, method="integrated-gradients", via=()).to_html(picture=False)


def sage_example(raters: int = 2) -> Explanation:
    """A GraphSAGE explanation by hand: two paths to the item, one through a co-rater, one through a genre."""
    nodes = (
        ExplainNode("user", 0, 196, "user 196", "user"),
        ExplainNode("item", 9, 10, "Open Season (1996)", "recommended"),
        ExplainNode("item", 1, 2, "Kolya (1996)", "history"),
        ExplainNode("item", 2, 3, "Brain Candy (1996)", "history"),
        ExplainNode("user", 7, 8, "user 8", "neighbor"),
        ExplainNode("genre", 4, "Comedy", "Comedy", "attribute"),
        ExplainNode("occupation", 3, "writer", "writer", "attribute"),
    )
    edges = (ExplainEdge("user:0", "item:1", "interacts", 0.01), ExplainEdge("user:0", "item:2", "interacts", 0.02),
             ExplainEdge("user:7", "item:1", "interacts", 0.1), ExplainEdge("user:7", "item:9", "interacts", 1.5),
             ExplainEdge("item:2", "genre:4", "has_genre", 0.1), ExplainEdge("item:9", "genre:4", "has_genre", 0.9),
             ExplainEdge("user:7", "occupation:3", "has_occupation", 0.3))  # a dead end off the co-rater
    who = "the one person" if raters == 1 else f"the {raters} people"
    via = (Contribution(f"{who} who rated it", "neighbor", 2.0), Contribution("its genre (Comedy)", "attribute", 1.0,
           ("genre:4",)), Contribution("your occupation (writer)", "attribute", 0.5, ("occupation:3",)),
           Contribution("Kolya (1996)", "history", 0.05, ("item:1",)),
           Contribution("its own features and yours, before any message", "baseline", -0.6))
    paths = ((("user:0", "item:1", "user:7", "item:9"), 1.61), (("user:0", "item:2", "genre:4", "item:9"), 1.02))
    return Explanation("GraphSAGE", "integrated-gradients", 2.95, "user:0", "item:9", nodes, edges,
                       contributions=(), paths=paths, rank=3, via=via)


def test_graphsage_sentence_names_what_carries_the_score_then_the_paths():
    # lift: 2 + 1 + 0.5 + 0.05 = 3.55; shares 56%, 28%, 14% (Kolya's 1% is under the 5% a part needs)
    assert sage_example().text() == (
        "\u201cOpen Season (1996)\u201d is ranked 3rd for you: the 2 people who rated it carry 56% of what raises its "
        "score, its genre (Comedy) 28% and your occupation (writer) 14%; someone who rated \u201cKolya (1996)\u201d "
        "rated it too; it shares its genre (Comedy) with \u201cBrain Candy (1996)\u201d, which you rated.")
    assert "the one person who watched it carries 56%" in sage_example(raters=1).text(verb="watched")
    one_of = replace(sage_example(), via=(Contribution("1 of the 8 people who rated it", "neighbor", 2.0),
                                          *sage_example().via[1:]))
    assert "1 of the 8 people who rated it carries 56%" in one_of.text()


def test_graphsage_sentence_cites_paths_that_lift_the_item_heaviest_first():
    ex = sage_example()
    (p1, _), (p2, _) = ex.paths
    # the genre's path now weighs more: its clause comes first; a path against the item is not cited
    heavier = replace(ex, paths=((p2, 2.0), (p1, 1.0)))
    assert heavier.text().endswith("it shares its genre (Comedy) with \u201cBrain Candy (1996)\u201d, which you "
                                   "rated; someone who "
                                   "rated \u201cKolya (1996)\u201d rated it too.")
    against = replace(ex, paths=((p1, 1.61), (p2, -0.2)))
    assert "(Comedy) with" not in against.text() and "someone who rated \u201cKolya (1996)\u201d" in against.text()
    # two co-raters, one per history item: "people who rated A or B"; a path through the user's own attribute
    # (user - occupation - co-rater - item) starts from no history item and is not cited
    nodes = (*ex.nodes, ExplainNode("user", 8, 9, "user 9", "neighbor"))
    edges = (*ex.edges, ExplainEdge("user:8", "item:2", "interacts", 0.1), ExplainEdge("user:8", "item:9", "interacts", 0.2))
    two = replace(ex, nodes=nodes, edges=edges,
                  paths=((("user:0", "occupation:3", "user:7", "item:9"), 3.0), (p1, 1.61),
                         (("user:0", "item:2", "user:8", "item:9"), 1.5)))
    assert two.text().endswith("people who rated \u201cKolya (1996)\u201d or \u201cBrain Candy (1996)\u201d rated it too.")
    assert [label for label, _ in sage_example()._bars()][:4] == [  # by size, in the parts' own words
        "the 2 people who rated it", "its genre (Comedy)", "its own features and yours, before any message",
        "your occupation (writer)"]
    assert "<h2>Through which first steps</h2>" in sage_example().to_html(picture=False)


def test_on_paths_leaves_out_dead_ends():
    # user 8's occupation hangs off the path user -> Kolya -> user 8 -> item: on no simple path to the item
    keys = {n.key for n in sage_example().on_paths()}
    assert keys == {"user:0", "item:9", "item:1", "item:2", "user:7", "genre:4"}


def test_layout_keeps_edges_off_other_nodes():
    import networkx as nx

    from graphrec.explain.explanation import _LAYERS, _layout

    # centred columns put history item h1 at y=0, on the straight line from the user (y=0) to the genre (y=0)
    g = nx.Graph([("u", "h0"), ("u", "h1"), ("u", "h2"), ("u", "g"), ("g", "i"), ("h0", "w"), ("w", "i")])
    roles = {"u": "user", "h0": "history", "h1": "history", "h2": "history", "g": "attribute", "w": "neighbor",
             "i": "recommended"}
    nx.set_node_attributes(g, {k: _LAYERS[r] for k, r in roles.items()}, "layer")
    pos = _layout(g)
    assert pos["u"][1] == pos["i"][1] == 0.0  # the two ends stay centred
    for a, b in g.edges:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        for k, (x, y) in pos.items():
            if min(xa, xb) < x < max(xa, xb):
                assert abs(ya + (yb - ya) * (x - xa) / (xb - xa) - y) >= 0.2, (a, b, k)


def test_a_name_that_would_sit_on_an_edge_goes_above_or_below_its_node():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from graphrec.explain.explanation import _place_names

    # "a" has an edge to "b" at its height: a long name on its right would cover it; "c"'s edge leaves to the left
    pos = {"a": (0.0, 0.0), "b": (1.0, 0.0), "c": (0.0, 1.0), "d": (-0.4, 2.0)}
    fig = plt.figure(figsize=(6, 4))
    ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    ax.scatter(*zip(*pos.values(), strict=True))
    ax.set_xlim(-0.5, 1.8)
    ax.set_ylim(-1, 3)
    names = [(k, f"a long name for {k}", False, 0.03, 10.0) for k in pos]
    where = _place_names(ax, pos, [("a", "b", 1.0), ("c", "d", 1.0)], names, 8)
    plt.close(fig)
    assert where["a"] == "above"  # its own edge ran under the name; above, nothing is in the way
    assert where["c"] == "side"  # its edge leaves to the left: the name on its right is clear of it
    assert where["b"] == "side"  # nothing to its right


def test_a_name_cuts_a_thin_edge_rather_than_a_thick_one():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from graphrec.explain.explanation import _place_names

    # "a"'s name on its right covers the thin edge a-b; above covers the edge x-y, below the edge x2-y2, all passing
    # just over and under "a": it stays on its side unless the edge there is the thickest
    pos = {"a": (0.0, 0.0), "b": (1.0, 0.0), "x": (-1.0, 0.12), "y": (1.0, 0.12), "x2": (-1.0, -0.12),
           "y2": (1.0, -0.12)}
    where = {}
    for side_width in (0.8, 20.0):
        fig = plt.figure(figsize=(6, 4))
        ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
        ax.set_xlim(-1.2, 1.8)
        ax.set_ylim(-1, 1)
        edges = [("a", "b", side_width), ("x", "y", 6.8), ("x2", "y2", 6.8)]
        where[side_width] = _place_names(ax, pos, edges, [("a", "a long name for a", False, 0.03, 10.0)], 8)["a"]
        plt.close(fig)
    assert where[0.8] == "side" and where[20.0] in ("above", "below")


def test_a_name_keeps_off_other_nodes_and_inside_the_picture():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from graphrec.explain.explanation import _place_names

    # "a"'s name on its right cuts the edge a-b; above it would cover the disk of "n" (whose centre it misses), and
    # below it would leave the axes (into the legend): the edge is the least of the three
    pos = {"a": (0.0, 0.0), "b": (1.0, 0.0), "n": (0.2, 0.24)}
    fig = plt.figure(figsize=(6, 4))
    ax = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    ax.set_xlim(-0.5, 1.8)
    ax.set_ylim(-0.15, 2)
    names = [("a", "a long name for a", False, 0.03, 10.0), ("n", "n", False, 0.03, 10.0)]
    where = _place_names(ax, pos, [("a", "b", 1.0)], names, 8)
    plt.close(fig)
    assert where["a"] == "side"
