"""Explainer on hand-built graphs: exact sums, real edges, roles, errors."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.data import HeteroData

from graphrec.errors import ConfigError, UnknownIdError
from graphrec.explain import Explainer, Explanation
from graphrec.graph import GraphBuilder, GraphConfig, normalized_adjacency
from graphrec.nn import BSPM, EASE, GFCF, MFBPR, GraphSAGE, ItemKNN, LightGCN
from tests.graph.test_builder import tiny, tiny_split
from tests.nn.test_sage import graph as sage_graph

S2 = math.sqrt(2)


def hand_graph() -> HeteroData:
    """2 users, 2 items: u0-i0, u1-i0, u1-i1; raw ids 'a', 'b' / 10, 11."""
    g = HeteroData()
    g["user"].num_nodes, g["item"].num_nodes = 2, 2
    ei = torch.tensor([[0, 1, 1], [0, 0, 1]])
    g["user", "interacts", "item"].edge_index = ei
    g["item", "rev_interacts", "user"].edge_index = ei.flip(0)
    g.node_raw_ids = {"user": ["a", "b"], "item": [10, 11]}
    g.node_labels = {"user": ["user a", "user b"], "item": ["Alien", "Heat"]}
    return g


def hand_model() -> LightGCN:
    r = sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 1.0]]))
    m = LightGCN(2, 2, normalized_adjacency(r), dim=1, num_layers=2)  # α = (1/3, 1/3, 1/3)
    with torch.no_grad():
        m.user_emb.weight.copy_(torch.tensor([[1.0], [2.0]]))
        m.item_emb.weight.copy_(torch.tensor([[3.0], [4.0]]))
    return m.eval()


def test_lightgcn_exact_by_hand():
    # Â: u0-i0 1/√2, u1-i0 1/2, u1-i1 1/√2. Walks from u0: k=0 u0 (1); k=1 i0 (1/√2); k=2 u0 (1/2), u1 (1/(2√2)).
    # P_u0 = u0: 1/3 + 1/6 = 1/2, i0: 1/(3√2), u1: 1/(6√2).
    # e_i1 = (4 + (Â e0)_i1 + (Â² e0)_i1) / 3 with (Â e0)_i1 = 2/√2, (Â² e0)_i1 = (3/2 + 4/√2)/√2.
    e_i1 = (4 + 2 / S2 + (1.5 + 4 / S2) / S2) / 3
    ex = Explainer(hand_model(), hand_graph(), reference="none").explain("a", 11)
    want = {"user:0": 0.5 * 1 * e_i1, "item:0": 3 * e_i1 / (3 * S2), "user:1": 2 * e_i1 / (6 * S2)}
    got = {c.nodes[0]: c.value for c in ex.contributions}
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert math.isclose(got[key], value, rel_tol=1e-6)
    assert [c.group for c in ex.contributions] == ["history", "user", "neighbor"]  # 0.71e, 0.5e, 0.24e
    assert ex.remainder == ()
    e_u0 = 0.5 * 1 + 3 / (3 * S2) + 2 / (6 * S2)
    assert math.isclose(ex.score, e_u0 * e_i1, rel_tol=1e-6)
    assert abs(ex.total - ex.score) < 1e-5
    assert ex.groups == pytest.approx({"user": want["user:0"], "history": want["item:0"], "neighbor": want["user:1"]})
    roles = {n.key: n.role for n in ex.nodes}
    assert roles == {"user:0": "user", "item:1": "recommended", "item:0": "history", "user:1": "neighbor"}
    assert ex.node("item:1").raw_id == 11 and ex.node("item:0").label == "Alien"
    assert ex.rank == 1  # i1 is u0's only unseen item
    # edges u0-i0, u1-i0, u1-i1. The user's edge u0-i0 carries every walk that leaves u0 through it (its first
    # hop): Â_u0i0 (w1 c_i0 + w2 (Â c)_i0) = (1/√2)(1/3)(3e + e/√2 + 2e/2) = (4e + e/√2) / (3√2)
    edges = {(e.source, e.target): e.importance for e in ex.edges}
    assert edges.keys() == {("user:0", "item:0"), ("user:1", "item:0"), ("user:1", "item:1")}
    c = {"u0": 1 * e_i1, "u1": 2 * e_i1, "i0": 3 * e_i1}
    via_i0 = (4 * e_i1 + e_i1 / S2) / (3 * S2)
    assert math.isclose(edges[("user:0", "item:0")], via_i0, rel_tol=1e-6)
    # the first hop splits the score exactly: through Alien, plus the user's own layer 0 (w0 c_u0 = e/3)
    via = {c.label: c.value for c in ex.via}
    assert via == pytest.approx({"Alien": via_i0, "your learned taste profile (your own embedding)": e_i1 / 3})
    assert math.isclose(sum(via.values()), ex.score, rel_tol=1e-6)
    # u1-i0 is crossed by one walk of length 2 (u0→i0→u1): α2 · 1/√2 · 1/2 · c_u1
    assert math.isclose(edges[("user:1", "item:0")], c["u1"] / (6 * S2), rel_tol=1e-6)
    assert edges[("user:1", "item:1")] == 0.0  # no walk of length <= 2 from u0 reaches i1 that way


def test_contrastive_by_hand_against_the_mean_candidate():
    # the hand graph again, nothing left out of u0's candidates: r = (e_i0 + e_i1) / 2, so every part of
    # the score decomposition is multiplied by δ = (e_i1 - e_i0) / 2 instead of e_i1 (dim 1)
    e_i1 = (4 + 2 / S2 + (1.5 + 4 / S2) / S2) / 3
    e_i0 = (3 + 1 / S2 + 1 + 1.5 + 0.75 + 2 / S2) / 3  # (Â e0)_i0 = 1/√2 + 1, (Â² e0)_i0 = 3/2 + 3/4 + 2/√2
    d = (e_i1 - e_i0) / 2
    nothing = sp.csr_matrix((2, 2))
    ex = Explainer(hand_model(), hand_graph(), seen=nothing).explain("a", 11)
    e_u0 = 0.5 + 3 / (3 * S2) + 2 / (6 * S2)
    assert math.isclose(ex.reference, e_u0 * (e_i0 + e_i1) / 2, rel_tol=1e-5)
    assert math.isclose(ex.difference, e_u0 * d, rel_tol=1e-4)  # a difference of float32 scores
    want = {"user:0": 0.5 * d, "item:0": 3 * d / (3 * S2), "user:1": 2 * d / (6 * S2)}
    got = {c.nodes[0]: c.value for c in ex.contributions}
    assert got == pytest.approx(want)
    assert abs(ex.total - ex.difference) < 1e-5
    via = {c.label: c.value for c in ex.via}
    assert via == pytest.approx({"Alien": (4 * d + d / S2) / (3 * S2), "your learned taste profile (your own embedding)": d / 3})
    assert abs(sum(via.values()) - ex.difference) < 1e-5
    assert ex.reference_kind == "the mean of your candidates" and ex.rank == 1 and not ex.seen


@pytest.mark.parametrize("kind", ["lightgcn", "simgcl", "xsimgcl"])
@pytest.mark.parametrize("reference", ["mean", "next", "none"])
def test_contrastive_parts_sum_to_the_difference(kind, reference):
    from graphrec.nn import SimGCL, XSimGCL

    r = sp.random(30, 40, density=0.15, random_state=1, format="csr")
    r.data[:] = 1
    torch.manual_seed(0)
    cls = {"lightgcn": LightGCN, "simgcl": SimGCL, "xsimgcl": XSimGCL}[kind]
    m = cls(30, 40, normalized_adjacency(r), dim=16, num_layers=3).eval()
    g = HeteroData()
    g["user"].num_nodes, g["item"].num_nodes = 30, 40
    coo = r.tocoo()
    g["user", "interacts", "item"].edge_index = torch.tensor(np.stack([coo.row, coo.col]), dtype=torch.long)
    ex = Explainer(m, g, top=5, reference=reference)
    users, items = m.get_embedding()
    for user in (0, 7, 29):
        scores = (items @ users[user]).detach()
        unseen = [i for i in range(40) if not r[user, i]]
        best = max(unseen, key=lambda i: float(scores[i]))
        e = ex.explain_index(user, best)
        assert abs(e.total - e.difference) < 1e-5
        assert abs(sum(c.value for c in e.via) - e.difference) < 1e-5
        if reference == "mean":
            assert math.isclose(e.reference, float(scores[unseen].mean()), rel_tol=1e-5)
        elif reference == "next":
            assert math.isclose(e.reference, sorted((float(scores[i]) for i in unseen), reverse=True)[1], rel_tol=1e-5)
        else:
            assert e.reference is None and abs(e.difference - e.score) < 1e-12


def test_a_seen_item_is_reported_as_seen_not_ranked():
    ex = Explainer(hand_model(), hand_graph()).explain("a", 10)  # u0 rated Alien
    assert ex.seen and ex.rank is None
    assert ex.text() == "You already rated \u201cAlien\u201d: it is not ranked among your recommendations."


def test_lightgcn_sum_within_1e5_on_a_random_graph():
    r = sp.random(30, 40, density=0.15, random_state=1, format="csr")
    r.data[:] = 1
    torch.manual_seed(0)
    m = LightGCN(30, 40, normalized_adjacency(r), dim=16, num_layers=3, item_features=torch.randn(40, 5)).eval()
    g = HeteroData()
    g["user"].num_nodes, g["item"].num_nodes = 30, 40
    coo = r.tocoo()
    g["user", "interacts", "item"].edge_index = torch.tensor(np.stack([coo.row, coo.col]), dtype=torch.long)
    ex = Explainer(m, g, top=5)
    for user, item in [(0, 3), (7, 39), (29, 0)]:
        e = ex.explain_index(user, item)
        assert abs(e.total - e.difference) < 1e-5
        assert math.isclose(e.score, float(m(torch.tensor([user]), torch.tensor([item])).detach()), rel_tol=1e-6)
        assert len(e.contributions) == 5 and e.remainder
        assert abs(sum(e.groups.values()) - e.difference) < 1e-5


def built():
    ds = tiny()
    split = tiny_split(ds)
    g = GraphBuilder(GraphConfig(item_attributes=("genre",))).build(ds, split=split)
    return ds, g


def assert_edges_exist(ex: Explanation, g: HeteroData) -> None:
    pairs = {(src_t, rel, dst_t): set(map(tuple, g[(src_t, rel, dst_t)].edge_index.t().tolist()))
             for src_t, rel, dst_t in g.edge_types}
    for e in ex.edges:
        (st, s), (dt, d) = e.source.split(":"), e.target.split(":")
        assert (st, e.type, dt) in pairs, e
        assert (int(s), int(d)) in pairs[(st, e.type, dt)], e


def test_every_edge_exists_and_shared_genres_are_context():
    _, g = built()
    torch.manual_seed(0)
    from graphrec.graph import normalized_adjacency as adj_of

    m = LightGCN(3, 4, adj_of(g), dim=4, num_layers=3).eval()
    ex = Explainer(m, g)
    # user 30 (u2) rated Fargo only; user 10 (u0) rated Alien and Heat, both Sci-Fi; explain u0 -> Up (Crime)
    e = ex.explain(10, 300)
    assert_edges_exist(e, g)
    genres = {n.label for n in e.nodes if n.role == "attribute"}
    assert genres == {"Crime"}  # Up shares Crime with Heat, nothing with Alien
    assert all(x.importance == 0.0 for x in e.edges if x.type == "has_genre")
    for user in (10, 20, 30):
        for item in (100, 200, 300, 400):
            assert_edges_exist(ex.explain(user, item), g)


def test_text_names_history_and_shared_attributes():
    _, g = built()
    m = LightGCN(3, 4, normalized_adjacency(g), dim=1, num_layers=2).eval()
    with torch.no_grad():
        m.user_emb.weight.fill_(1.0)
        m.item_emb.weight.copy_(torch.tensor([[1.0], [3.0], [1.0], [1.0]]))
    # u0 rated Alien (degree 1) and Heat (degree 2); 1-hop weights 1/√2 and 1/2, times layer-0 values 1 and 3:
    # Heat carries more. Up shares Crime with Heat, nothing with Alien.
    e = Explainer(m, g, reference="none").explain(10, 300)
    assert e.named()[0][0].label == "Heat (1995)"
    assert e.text().startswith("\u201cUp (2009)\u201d is ")
    assert "of what you rated, \u201cHeat (1995)\u201d (48%) and \u201cAlien (1979)\u201d (29%) carry the most" in e.text()
    assert "24% of its score comes from your learned taste profile" in e.text() and "*" not in e.text()


def test_unknown_ids_and_unexplainable_models():
    _, g = built()
    ex = Explainer(LightGCN(3, 4, normalized_adjacency(g), dim=2), g)
    with pytest.raises(UnknownIdError, match="unknown user id 99"):
        ex.explain(99, 100)
    with pytest.raises(UnknownIdError, match="unknown item id 'x'"):
        ex.explain(10, "x")
    with pytest.raises(UnknownIdError, match="out of range"):
        ex.explain_index(0, 4)
    with pytest.raises(ConfigError, match="MFBPR has no graph explanation"):
        Explainer(MFBPR(3, 4), g)
    with pytest.raises(ValueError, match="graph has 3 users"):
        Explainer(LightGCN(2, 4, normalized_adjacency(sp.csr_matrix((2, 4))), dim=2), g)


def sage_scores_with_and_without_messages(model: GraphSAGE, user: int, item: int) -> tuple[float, float]:
    """``f(1)``: the model's score; ``f(0)``: its score on the same nodes with every edge removed."""
    users, items = model.get_embedding()
    empty = model.graph.clone()
    for et in empty.edge_types:
        empty[et].edge_index = empty[et].edge_index[:, :0]
    h = model.encoder(*model._inputs(empty))
    return float((users[user] @ items[item]).detach()), float((h["user"][user] @ h["item"][item]).detach())


def test_graphsage_integrated_gradients():
    torch.manual_seed(0)
    data = sage_graph()
    model = GraphSAGE(data, dim=8, num_layers=2, fanouts=[-1, -1]).eval()
    ex = Explainer(model, data, steps=64)
    e = ex.explain_index(2, 5)
    assert e.method == "integrated-gradients"
    users, items = model.get_embedding()
    assert math.isclose(e.score, float((users[2] @ items[5]).detach()), rel_tol=1e-5, abs_tol=1e-6)
    # completeness against the model's own f(1) - f(0): the edges' attributions add up to what the messages add
    f1, f0 = sage_scores_with_and_without_messages(model, 2, 5)
    edges = sum(c.value for c in (*e.contributions, *e.remainder) if c.group == "edge")
    assert abs(edges - (f1 - f0)) < 0.02 * abs(f1 - f0), (edges, f1 - f0)
    assert abs(f1 - f0) > 1e-3  # the messages matter: a zero attribution would fail above
    assert_edges_exist(e, data)
    history = set(data["user", "interacts", "item"].edge_index[1][data["user", "interacts", "item"].edge_index[0] == 2].tolist())
    for n in e.nodes:
        if n.role == "history":
            assert n.index in history
    # paths from the user to the item: user - history item - co-user or shared attribute - item, each edge real
    from itertools import pairwise

    import networkx as nx

    assert e.paths and all(p[0] == e.user and p[-1] == e.item and len(p) == 4 for p, _ in e.paths)
    assert [w for _, w in e.paths] == sorted((w for _, w in e.paths), reverse=True)
    g = e.to_networkx()
    for p, _ in e.paths:
        assert int(p[1].split(":")[1]) in history and all(g.has_edge(a, b) for a, b in pairwise(p))
    assert nx.has_path(g, e.user, e.item) and e.node(e.user) in e.on_paths()
    # the first-step split: every attribution once, plus the no-message baseline, adds up to the score exactly
    assert math.isclose(sum(c.value for c in e.via), e.score, rel_tol=1e-9, abs_tol=1e-9)
    messages = [c for c in e.via if c.group not in ("baseline", "error")]
    # the baseline is f(0) exactly; the error row is the Riemann sum's completeness error
    assert [c.value for c in e.via if c.group == "baseline"] == [pytest.approx(f0, abs=1e-5)]
    error = [c.value for c in e.via if c.group == "error"]
    assert math.isclose(sum(error), e.score - f0 - sum(c.value for c in messages), abs_tol=1e-9)
    assert math.isclose(sum(c.value for c in messages),
                        sum(c.value for c in (*e.contributions, e.remainder[0])), rel_tol=1e-6, abs_tol=1e-9)
    raters = data["user", "interacts", "item"].edge_index[0][data["user", "interacts", "item"].edge_index[1] == 5]
    assert [c.label for c in e.via if c.group == "neighbor"] == [f"the {len(raters)} people who rated it"]
    listed = [c for c in e.via if c.group == "history"]
    assert listed and all(int(c.nodes[0].split(":")[1]) in history for c in listed)
    assert {c.label.split()[0] for c in e.via if c.group == "attribute"} <= {"your", "its"}
    assert e.text().startswith(f"\u201c{e.node(e.item).label}\u201d is ranked ") and "of what raises its score" in e.text()


def test_lightgcn_with_attribute_nodes_explains_genres_exactly():
    _, g = built()  # Crime = genre 0, Sci-Fi = genre 1
    torch.manual_seed(0)
    m = LightGCN(3, 4, normalized_adjacency(g, attributes=("genre",)), dim=4, num_layers=3,
                 extra_nodes={"genre": 2}).eval()
    assert m.node_layout == [("user", 3), ("item", 4), ("genre", 2)]
    ex = Explainer(m, g)
    e = ex.explain(10, 300)  # u0 (Alien, Heat) -> Up (Crime): walks u0 -> Heat -> Crime reach the genre node
    assert abs(e.total - e.difference) < 1e-5
    assert math.isclose(e.score, float(m(torch.tensor([0]), torch.tensor([2])).detach()), rel_tol=1e-5, abs_tol=1e-8)
    crime = e.node("genre:0")
    assert crime.role == "attribute" and crime.importance != 0.0
    assert "attribute" in e.groups and math.isclose(e.groups["attribute"], sum(
        c.value for c in (*e.contributions, *e.remainder) if c.group == "attribute"), rel_tol=1e-6, abs_tol=1e-9)
    genre_edges = {(x.source, x.target): x.importance for x in e.edges if x.type == "has_genre"}
    assert genre_edges.keys() == {("item:2", "genre:0"), ("item:1", "genre:0")}  # Up and Heat are Crime
    assert all(v != 0.0 for v in genre_edges.values())
    assert_edges_exist(e, g)
    with pytest.raises(ValueError, match=r"users then items then genre"):
        LightGCN(3, 4, normalized_adjacency(g), dim=4, extra_nodes={"genre": 2})


def test_explainer_takes_the_prepared_vocabularies():
    from graphrec.data import Vocabulary

    model, graph = hand_model(), hand_graph()
    users, items = Vocabulary(["a", "b"], "user"), Vocabulary([10, 11], "item")
    train = sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 1.0]]))
    ex = Explainer(model, graph, train=train, users=users, items=items).explain("b", 11)
    assert ex == Explainer(model, graph).explain_index(1, 1)
    with pytest.raises(UnknownIdError, match="unknown user id"):
        Explainer(model, graph, users=users, items=items).explain("nobody", 11)
    with pytest.raises(ValueError, match="user vocabulary has 1 ids, the graph 2 user nodes"):
        Explainer(model, graph, users=Vocabulary(["a"], "user"))


def test_themes_sum_the_parts_of_the_history_items_sharing_an_attribute():
    _, g = built()
    torch.manual_seed(0)
    m = LightGCN(3, 4, normalized_adjacency(g), dim=4, num_layers=2).eval()
    e = Explainer(m, g, seen=sp.csr_matrix((3, 4))).explain(10, 300)  # u0 (Alien, Heat) -> Up (Crime)
    via = {c.nodes[0]: c.value for c in e.via if c.nodes}
    (crime,) = e.themes  # Up's only genre; of u0's items, Heat is Crime
    assert crime.label == "Crime" and crime.nodes[1:] == ("item:1",)
    assert math.isclose(crime.value, via["item:1"], rel_tol=1e-9)
    assert e.history_size == 2 and math.isclose(e.history_total, via["item:0"] + via["item:1"], rel_tol=1e-9)
    assert e.node("item:1").label == "Heat (1995)"


def test_a_seen_item_is_never_its_own_reason():
    _, g = built()
    torch.manual_seed(0)
    m = LightGCN(3, 4, normalized_adjacency(g), dim=4, num_layers=2).eval()
    e = Explainer(m, g).explain(10, 100)  # u0 rated Alien (item 100)
    assert e.seen and [n.role for n in e.nodes if n.key == "item:0"] == ["recommended"]
    assert len({n.key for n in e.nodes}) == len(e.nodes)


@pytest.mark.parametrize("kind", ["lightgcn", "item-weights"])
def test_the_named_genre_is_in_the_picture(kind):
    """Where the sentence names a genre (Explanation.theme), the picture holds a path through it, even when none
    of the history items shown for their own parts has it (one of the genre's titles joins them)."""
    from tests.sampling.test_neighbor import random_graph

    data = random_graph(seed=1, users=12, items=15, edges=80)
    torch.manual_seed(0)
    if kind == "lightgcn":
        m = LightGCN(12, 15, normalized_adjacency(data), dim=4, num_layers=2).eval()
    else:
        ei = data["user", "interacts", "item"].edge_index
        m = EASE(12, 15, reg=1.0).fit(sp.csr_matrix((np.ones(ei.shape[1]), ei.numpy()), shape=(12, 15)))
    ex = Explainer(m, data, max_history=1)
    named = added = 0
    for u in range(12):
        for i in range(15):
            e = ex.explain_index(u, i)
            theme = e.theme()
            if theme is None:
                continue
            named += 1
            added += len(e.by_role("history")) > 1
            assert theme[0].nodes[0] in {n.key for n in e.on_paths()}, (u, i)
    assert named and added  # the case occurs on this graph: 7 named genres, 4 through an added title


def test_graphsage_first_step_split_by_hand():
    """Each message belongs to the first step into the user (u2) or the item (i5): its sender where it enters them,
    its receiver where it enters one of their neighbours; further ones are one part; the baseline closes the sum."""
    torch.manual_seed(0)
    data = sage_graph()
    ex = Explainer(GraphSAGE(data, dim=8, num_layers=2, fanouts=[-1, -1]).eval(), data)
    raters = int((data["user", "interacts", "item"].edge_index[1] == 5).sum())
    messages = [
        ("item:1", "user:2", 1.0),     # history item 1 -> the user
        ("user:9", "item:1", 0.5),     # a co-user -> history item 1: still item 1's part
        ("genre:0", "item:5", 2.0),    # the item's genre -> the item
        ("user:7", "item:5", 0.25),    # a rater -> the item
        ("item:3", "user:7", 0.125),   # the rater's other item -> the rater: the raters' part
        ("genre:1", "user:2", -0.5),   # an attribute -> the user
        ("item:8", "user:11", 4.0),    # into a node two steps away: further
    ]
    from graphrec.explain.explainer import _Messages

    arrays = _Messages(np.array([ex._gid(a) for a, _, _ in messages]), np.array([ex._gid(b) for _, b, _ in messages]),
                       np.array([v for _, _, v in messages]), np.zeros(len(messages), dtype=np.int64),
                       np.ones(len(messages), dtype=bool), ("interacts",))
    via = {c.label: c for c in ex._sage_via(arrays, user=2, item=5, history={1}, score=10.0, baseline=2.5)}
    assert via["item 1"].value == 1.5 and via["item 1"].group == "history"
    assert via[f"1 of the {raters} people who rated it"].value == 0.375  # one rater's messages: the rest not sampled
    assert via["its genre (genre 0)"].value == 2.0 and via["your genre (genre 1)"].value == -0.5
    assert via["messages from further away"].value == 4.0
    assert via["its own features and yours, before any message"].value == 2.5
    assert via["the integration error (the Riemann sum's)"].value == 10.0 - 2.5 - 7.375  # what closes the sum
    assert sum(c.value for c in via.values()) == 10.0


def test_graphsage_seen_item_gets_one_row_for_the_users_own_rating():
    torch.manual_seed(0)
    data = sage_graph()
    ex = Explainer(GraphSAGE(data, dim=8, num_layers=2, fanouts=[-1, -1]).eval(), data)
    ui = data["user", "interacts", "item"].edge_index
    user, item = int(ui[0, 0]), int(ui[1, 0])
    e = ex.explain_index(user, item)
    assert e.seen and e.rank is None and e.text().startswith("You already rated")
    own = [c for c in e.via if c.label == "your own rating of it"]
    assert len(own) == 1 and own[0].nodes == (f"user:{user}", f"item:{item}")
    assert all(f"item:{item}" not in c.nodes for c in e.via if c.group == "history")
    raters = int((ui[1] == item).sum()) - 1  # the others
    assert any(c.label.startswith(f"the {raters} people") or c.label.startswith("the one person") for c in e.via
               if c.group == "neighbor") or raters == 0
    assert math.isclose(sum(c.value for c in e.via), e.score, rel_tol=1e-9, abs_tol=1e-9)


def test_graphsage_picture_holds_the_users_attributes_the_sentence_names():
    """A user attribute that carries a part gets a path user - attribute - co-rater who has it - item."""
    from tests.sampling.test_neighbor import random_graph

    torch.manual_seed(0)
    data = random_graph(seed=3, users=20, items=25, edges=150)
    occupation = torch.arange(20) % 3  # every user has one of three occupations
    data["occupation"].num_nodes = 3
    data["user", "has_occupation", "occupation"].edge_index = torch.stack([torch.arange(20), occupation])
    data["occupation", "rev_has_occupation", "user"].edge_index = torch.stack([occupation, torch.arange(20)])
    ui = data["user", "interacts", "item"].edge_index
    data["user"].x = torch.zeros(20, data["item"].x.shape[1]).index_add_(0, ui[0], data["item"].x[ui[1]])
    model = GraphSAGE(data, dim=8, num_layers=2, fanouts=[-1, -1]).eval()
    ex = Explainer(model, data, steps=32)
    checked = 0
    for user in range(6):
        for item in range(8):
            e = ex.explain_index(user, item)
            named = [c for c, _ in e.carriers() if c.group == "attribute" and c.label.startswith("your ")]
            shown = {n.key for n in e.on_paths()}
            for c in named:
                raters_with_it = [int(w) for w in ui[0][ui[1] == item].tolist() if int(w) != user
                                  and int(occupation[w]) == int(c.nodes[0].split(":")[1])]
                if raters_with_it:  # a co-rater shares it: the picture has the path through it
                    assert c.nodes[0] in shown, (user, item, c.label)
                    checked += 1
    assert checked


def test_global_node_ids_round_trip_and_no_message_explanations():
    torch.manual_seed(0)
    data = sage_graph()
    data["empty"].num_nodes = 0  # a node type without nodes shifts no id
    model = GraphSAGE(sage_graph(), dim=8, num_layers=2, fanouts=[-1, -1]).eval()
    ex = Explainer(model, data)
    for t in data.node_types:
        for j in range(data[t].num_nodes):
            assert ex._key_of(ex._gid(f"{t}:{j}")) == f"{t}:{j}"
    # fan-outs of 0: no message passes, nothing to attribute; the score is the baseline
    e = Explainer(model, sage_graph(), fanouts=[0, 0]).explain_index(2, 5)
    assert [c.group for c in e.via] == ["baseline"] and math.isclose(e.via[0].value, e.score, rel_tol=1e-6)


def item_weight_model() -> tuple[EASE, HeteroData]:
    """3 users, 3 items (raw ids 10, 11, 12), EASE with hand-set weights B (its score: the sum of the rows of
    the user's items); user a has items 10 and 11, b has 10, c has 12."""
    g = HeteroData()
    g["user"].num_nodes, g["item"].num_nodes = 3, 3
    ei = torch.tensor([[0, 0, 1, 2], [0, 1, 0, 2]])
    g["user", "interacts", "item"].edge_index = ei
    g["item", "rev_interacts", "user"].edge_index = ei.flip(0)
    g.node_raw_ids = {"user": ["a", "b", "c"], "item": [10, 11, 12]}
    g.node_labels = {"user": ["user a", "user b", "user c"], "item": ["Alien", "Heat", "Ran"]}
    m = EASE(3, 3, reg=1.0).fit(sp.csr_matrix(np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])))
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[0.0, 0.5, 2.0], [0.25, 0.0, 1.0], [1.0, 3.0, 0.0]]))
    return m.eval(), g


def test_item_weights_exact_by_hand():
    m, g = item_weight_model()
    # user b (history: item 10) and item 12: the score is B[10, 12] = 2; the mean candidate (11 and 12, not the
    # seen 10) gets (0.5 + 2) / 2 = 1.25 from item 10, so the lead is 0.75, all of it item 10's
    ex = Explainer(m, g).explain("b", 12)
    assert ex.method == "item-weights" and ex.score == pytest.approx(2.0) and ex.reference == pytest.approx(1.25)
    assert [(c.label, c.value) for c in ex.contributions] == [("history item Alien", pytest.approx(0.75))]
    assert ex.rank == 1 and not ex.seen
    # user a (10 and 11) and item 12: parts 2 - 2 = 0 (item 10) and 1 - 1 = 0 (item 11): only one candidate,
    # the lead is 0; with no reference the parts are the score's, 2 and 1
    plain = Explainer(m, g, reference="none").explain("a", 12)
    assert plain.score == pytest.approx(3.0) and plain.reference is None
    assert sorted(c.value for c in plain.contributions) == [pytest.approx(1.0), pytest.approx(2.0)]
    assert sum(c.value for c in plain.via) == pytest.approx(3.0)
    assert not any(c.group == "user" for c in plain.via)  # no taste profile: the history is all there is
    assert plain.text() == "“Ran” is your top recommendation, mostly because you rated “Alien” (67%)."
    clicks = Explainer(m, g, reference="none", verb="interacted with").explain("a", 12)  # a log without ratings
    assert clicks.text() == "“Ran” is your top recommendation, mostly because you interacted with “Alien” (67%)."
    assert Explanation.from_dict(clicks.to_dict()) == clicks and "you interacted with" in clicks.to_html()
    # an item the user has is reported as such, and never its own reason
    seen = Explainer(m, g).explain("a", 10)
    assert seen.seen and seen.rank is None and seen.text() == "You already rated “Alien”: it is not ranked among " \
                                                              "your recommendations."
    assert [n.label for n in seen.by_role("history")] == ["Heat"]
    # the picture's paths: user -> history item -> item, each edge carrying its item's part
    assert {(e.source, e.target, e.type) for e in plain.edges} == {
        ("user:0", "item:0", "interacts"), ("user:0", "item:1", "interacts"),
        ("item:0", "item:2", "item weight"), ("item:1", "item:2", "item weight")}


@pytest.mark.parametrize("reference", ["mean", "next", "none"])
def test_item_weights_parts_sum_to_the_difference_and_match_the_model(reference):
    _, g = built()
    train = sp.csr_matrix((np.ones(g["user", "interacts", "item"].edge_index.shape[1]),
                           g["user", "interacts", "item"].edge_index.numpy()), shape=(3, 4))
    for model in (EASE(3, 4, reg=0.5).fit(train), ItemKNN(3, 4, k=2).fit(train), GFCF(3, 4, rank=1).fit(train),
                  BSPM(3, 4, rank=1).fit(train)):
        ex = Explainer(model, g, reference=reference)
        for user in range(3):
            for item in range(4):
                e = ex.explain_index(user, item)
                assert e.score == pytest.approx(float(model.score_all(torch.tensor([user]))[0, item]), abs=1e-6)
                for parts in ((*e.contributions, *e.remainder), e.via):
                    assert sum(c.value for c in parts) == pytest.approx(e.difference, abs=1e-9)


def test_item_weights_html_has_one_table_of_parts():
    m, g = item_weight_model()
    page = Explainer(m, g, reference="none").explain("a", 12).to_html()
    assert "Through which of your interactions" in page and "item-item weights" in page
    assert "<h2>Contributions</h2>" not in page  # the same split twice would say nothing more
    assert "item weight" in page and "*" not in page.split("<body>")[1]


def test_item_weights_in_chunks_equal_the_whole(monkeypatch):
    """A long history on a large catalogue is read a few rows at a time: the same parts."""
    _, g = built()
    ei = g["user", "interacts", "item"].edge_index
    train = sp.csr_matrix((np.ones(ei.shape[1]), ei.numpy()), shape=(3, 4))
    model = EASE(3, 4, reg=0.5).fit(train)
    for reference in ("mean", "next"):
        whole = Explainer(model, g, reference=reference).explain_index(1, 3)
        calls = []
        parts = model.history_parts
        monkeypatch.setattr(model, "history_parts",
                            lambda items, calls=calls, parts=parts: calls.append(len(items)) or parts(items))
        monkeypatch.setattr(model, "PARTS_CHUNK", 4)  # one row (4 items) at a time
        got = Explainer(model, g, reference=reference).explain_index(1, 3)
        monkeypatch.undo()
        assert calls and max(calls) == 1 and len(calls) == len(train[1].indices)
        assert [c.value for c in got.via] == pytest.approx([c.value for c in whole.via])


def test_gfcf_reads_its_parts_with_two_filter_passes():
    """GF-CF applies its operator to the few columns an explanation needs, not to every history row; BSPM,
    whose filter is another, reads them row by row: both equal history_parts times the columns."""
    _, g = built()
    ei = g["user", "interacts", "item"].edge_index
    train = sp.csr_matrix((np.ones(ei.shape[1]), ei.numpy()), shape=(3, 4))
    items = torch.tensor([0, 2, 3])
    columns = torch.rand(4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for model in (GFCF(3, 4, rank=1, alpha=0.3).fit(train), BSPM(3, 4, rank=1).fit(train)):
        want = model.history_parts(items).double() @ columns
        torch.testing.assert_close(model.history_parts_at(items, columns), want, atol=1e-5, rtol=1e-5)
    gfcf = GFCF(3, 4, rank=1, alpha=0.3).fit(train)
    rows = []
    gfcf.history_parts = lambda items: rows.append(len(items))  # the fast path never reads rows
    gfcf.history_parts_at(items, columns)
    assert rows == []


def test_item_weights_read_the_history_the_model_scores_from():
    """An Explainer given another train matrix (train + valid) still splits the model's own score exactly."""
    m, g = item_weight_model()
    more = sp.csr_matrix(np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))  # not what EASE was fitted on
    e = Explainer(m, g, train=more, seen=more, reference="none").explain("b", 12)
    assert e.score == pytest.approx(float(m.score_all(torch.tensor([1]))[0, 2]))  # B[10, 12] = 2: b's own history
    assert [n.label for n in e.by_role("history")] == ["Alien"]
