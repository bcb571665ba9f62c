"""A hand-built dataset: 3 users, 4 items, 2 genres, checked by hand."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from graphrec.data import Dataset, Interactions, Split, Vocabulary, random_split
from graphrec.errors import ConfigError
from graphrec.graph import (
    GraphBuilder,
    GraphConfig,
    interaction_matrix,
    node_labels,
    node_raw_ids,
    normalized_adjacency,
    to_networkx,
)

# train: u0-i0, u0-i1, u1-i1, u1-i2, u2-i3; held out: u2-i0 (valid), u0-i2 (test)
USERS = [0, 0, 1, 1, 2, 2, 0]
ITEMS = [0, 1, 1, 2, 3, 0, 2]


def tiny() -> Dataset:
    inter = Interactions(USERS, ITEMS, [5, 4, 3, 5, 2, 4, 1], [10, 11, 12, 13, 14, 15, 16])
    items = pd.DataFrame({
        "title": ["Alien (1979)", "Heat (1995)", "Up (2009)", "Fargo (1996)"],
        "genres": [["Sci-Fi"], ["Sci-Fi", "Crime"], ["Crime"], []],
        "year": pd.array([1979, 1995, 2009, 1996], dtype="Int64"),
    })
    users = pd.DataFrame({"age": [17, 30, 60], "gender": ["F", "M", "F"], "occupation": ["student", "writer", "writer"]})
    tags = pd.DataFrame({"user": [0, 1, 0], "item": [1, 1, 2], "tag": ["tense", "Tense", "leaky"], "timestamp": [1, 2, 3]})
    return Dataset("tiny", inter, Vocabulary([10, 20, 30], "user"), Vocabulary([100, 200, 300, 400], "item"),
                   items, users, tag_assignments=tags)


def tiny_split(ds: Dataset) -> Split:
    return Split(ds, np.arange(5), np.array([5]), np.array([6]), "hand")


def edges(data, edge_type):
    return sorted(map(tuple, data[edge_type].edge_index.t().tolist()))


def test_item_labels_as_people_read_them_texts_as_the_data_has_them():
    from graphrec.text import item_texts

    ds = tiny()
    ds.item_info.loc[1, "title"] = "Heat, The (1995)"
    data = GraphBuilder(GraphConfig(item_attributes=())).build(ds, split=tiny_split(ds))
    assert node_labels(data, "item")[:2] == ["Alien (1979)", "The Heat (1995)"]
    assert item_texts(ds)[1].startswith("Heat, The (1995)")


def test_node_counts_and_edges():
    ds = tiny()
    cfg = GraphConfig(item_attributes=("genre", "tag", "decade"), user_attributes=("occupation", "age", "gender"))
    data = GraphBuilder(cfg).build(ds, split=tiny_split(ds))
    counts = {t: data[t].num_nodes for t in data.node_types}
    assert counts == {"user": 3, "item": 4, "genre": 2, "tag": 1, "decade": 3, "occupation": 2, "age": 3, "gender": 2}
    assert edges(data, ("user", "interacts", "item")) == [(0, 0), (0, 1), (1, 1), (1, 2), (2, 3)]
    assert edges(data, ("item", "rev_interacts", "user")) == [(0, 0), (1, 0), (1, 1), (2, 1), (3, 2)]
    assert node_labels(data, "genre") == ["Crime", "Sci-Fi"]
    assert edges(data, ("item", "has_genre", "genre")) == [(0, 1), (1, 0), (1, 1), (2, 0)]
    assert edges(data, ("genre", "rev_has_genre", "item")) == [(0, 1), (0, 2), (1, 0), (1, 1)]
    # "leaky" was applied to the test pair (u0, i2): left out; "tense" twice -> weight 2
    assert node_labels(data, "tag") == ["tense"]
    assert edges(data, ("item", "has_tag", "tag")) == [(1, 0)]
    assert data["item", "has_tag", "tag"].weight.tolist() == [2.0]
    assert node_labels(data, "decade") == ["1970s", "1990s", "2000s"]
    assert node_labels(data, "age") == ["0-17", "25-34", "56+"]
    assert node_labels(data, "occupation") == ["student", "writer"]
    assert node_labels(data, "item") == ["Alien (1979)", "Heat (1995)", "Up (2009)", "Fargo (1996)"]
    assert node_raw_ids(data, "item") == [100, 200, 300, 400]
    assert node_raw_ids(data, "user") == [10, 20, 30]
    assert data["user", "interacts", "item"].rating.tolist() == [5, 4, 3, 5, 2]
    assert data["user", "interacts", "item"].time.tolist() == [10, 11, 12, 13, 14]
    data.validate()


def test_decades():
    ds = tiny()
    data = GraphBuilder(GraphConfig(item_attributes=("decade",))).build(ds, split=tiny_split(ds))
    assert node_labels(data, "decade") == ["1970s", "1990s", "2000s"]
    assert edges(data, ("item", "released_in_decade", "decade")) == [(0, 0), (1, 1), (2, 2), (3, 1)]


def test_normalized_adjacency_exact():
    ds = tiny()
    data = GraphBuilder().build(ds, split=tiny_split(ds))
    adj = normalized_adjacency(data).to_dense()
    assert adj.shape == (7, 7)
    expected = torch.zeros(7, 7, dtype=torch.float64)
    # users 0..2, items 3..6; degrees u=(2,2,1), i=(1,2,1,1)
    for u, i, v in [(0, 0, 1 / math.sqrt(2)), (0, 1, 0.5), (1, 1, 0.5), (1, 2, 1 / math.sqrt(2)), (2, 3, 1.0)]:
        expected[u, 3 + i] = expected[3 + i, u] = v
    torch.testing.assert_close(adj.double(), expected, rtol=0, atol=1e-7)
    assert adj.layout == torch.strided  # to_dense() of the CSR tensor
    assert normalized_adjacency(data).layout == torch.sparse_csr


def test_normalized_adjacency_with_attribute_nodes():
    ds = tiny()
    data = GraphBuilder(GraphConfig(item_attributes=("genre",))).build(ds, split=tiny_split(ds))
    adj = normalized_adjacency(data, attributes=("genre",)).to_dense().double()
    assert adj.shape == (9, 9)  # users 0..2, items 3..6, Crime 7, Sci-Fi 8
    # degrees: users (2, 2, 1); items Alien 2 (u0, Sci-Fi), Heat 4 (u0, u1, Sci-Fi, Crime), Up 2 (u1, Crime),
    # Fargo 1 (u2); Crime 2, Sci-Fi 2
    expected = torch.zeros(9, 9, dtype=torch.float64)
    for a, b, v in [(0, 3, 1 / 2), (0, 4, 1 / math.sqrt(8)), (1, 4, 1 / math.sqrt(8)), (1, 5, 1 / 2), (2, 6, 1.0),
                    (3, 8, 1 / 2), (4, 8, 1 / math.sqrt(8)), (4, 7, 1 / math.sqrt(8)), (5, 7, 1 / 2)]:
        expected[a, b] = expected[b, a] = v
    torch.testing.assert_close(adj, expected, rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="no user or item edges into 'tag' nodes"):
        normalized_adjacency(data, attributes=("tag",))


def test_isolated_node_row_is_zero():
    ds = tiny()
    # train without user 2: their row and item 3's row are all zero, never inf/nan
    data = GraphBuilder().build(ds, split=Split(ds, np.arange(4), np.array([4, 5]), np.array([6]), "hand"))
    adj = normalized_adjacency(data).to_dense()
    assert torch.isfinite(adj).all()
    assert adj[2].abs().sum() == 0 and adj[6].abs().sum() == 0


def test_interaction_matrix():
    ds = tiny()
    data = GraphBuilder().build(ds, split=tiny_split(ds))
    r = interaction_matrix(data, values="rating").toarray()
    np.testing.assert_array_equal(r, [[5, 4, 0, 0], [0, 3, 5, 0], [0, 0, 0, 2]])


def test_feature_options():
    ds = tiny()
    text = torch.arange(12, dtype=torch.float32).reshape(4, 3)
    split = tiny_split(ds)
    data = GraphBuilder(GraphConfig(user_features="text_mean", genre_multihot=True)).build(ds, split, item_features=text)
    assert data["item"].x.shape == (4, 3 + 2)
    torch.testing.assert_close(data["item"].x[1, 3:], torch.tensor([1.0, 1.0]))  # Crime, Sci-Fi
    assert data["user"].x.shape == (3, 3)
    torch.testing.assert_close(data["user"].x[0], (text[0] + text[1]) / 2)  # train items of u0
    torch.testing.assert_close(data["user"].x[2], text[3])
    data = GraphBuilder(GraphConfig(user_features="attributes")).build(ds, split)
    # occupation (2) + age bucket (3) + gender (2)
    assert data["user"].x.shape == (3, 7)
    torch.testing.assert_close(data["user"].x.sum(1), torch.full((3,), 3.0))
    data = GraphBuilder(GraphConfig(user_features="none")).build(ds, split)
    assert "x" not in data["user"] and "x" not in data["item"]
    torch.testing.assert_close(data["user"].node_id, torch.arange(3))


def test_config_errors():
    with pytest.raises(ConfigError, match=r"unknown \['shoe size'\]"):
        GraphConfig(user_attributes=("shoe size",))
    with pytest.raises(ConfigError, match=r"attribute 'colour': tiny items have no 'colour' field"):
        GraphBuilder(GraphConfig(item_attributes=("colour",))).build(tiny())  # any item-table column may be one
    with pytest.raises(ConfigError, match="unknown key"):
        GraphConfig.from_dict({"item_attrs": ["genre"]})
    ds = tiny()
    with pytest.raises(ConfigError, match="needs item text features"):
        GraphBuilder(GraphConfig(user_features="text_mean")).build(ds, tiny_split(ds))
    ds2 = Dataset("bare", ds.interactions, ds.users, ds.items)
    with pytest.raises(ConfigError, match="bare items have no 'genres' field"):
        GraphBuilder(GraphConfig(item_attributes=("genre",))).build(ds2)


def test_to_networkx():
    ds = tiny()
    g = to_networkx(GraphBuilder().build(ds, split=tiny_split(ds)))
    assert g.nodes["item", 0] == {"type": "item", "index": 0, "raw_id": 100, "label": "Alien (1979)"}
    assert g.edges[("user", 1), ("item", 2)]["type"] == "interacts"
    assert g.edges[("item", 1), ("genre", 0)]["type"] == "has_genre"
    assert g.number_of_edges() == 5 + 4


def test_no_leakage_ml100k(ml100k):
    split = random_split(ml100k, seed=7)
    data = GraphBuilder(GraphConfig(item_attributes=("genre",))).build(ml100k, split=split)
    n = ml100k.num_items
    u, i = data["user", "interacts", "item"].edge_index.numpy()
    graph_keys = set((u * n + i).tolist())
    inter = ml100k.interactions
    for part in (split.valid, split.test):
        held = (inter.user[part] * n + inter.item[part]).tolist()
        assert graph_keys.isdisjoint(held)
    assert len(graph_keys) == len(split.train)
    assert data["user", "interacts", "item"].num_edges == len(split.train)


def test_attribute_text_features(tmp_path):
    from graphrec.text import TextEncoder

    ds = tiny()
    enc = TextEncoder(cache_dir=tmp_path, device="cpu")
    cfg = GraphConfig(item_attributes=("genre",), attribute_features="text")
    data = GraphBuilder(cfg, enc).build(ds, split=tiny_split(ds))
    assert data["genre"].x.shape == (2, 384) and data["item"].x.shape == (4, 384)
    torch.testing.assert_close(data["genre"].x, enc.encode(["Crime", "Sci-Fi"]))
    with pytest.raises(ConfigError, match="needs a text_encoder"):
        GraphBuilder(cfg).build(ds, split=tiny_split(ds))


class RecordingEncoder:
    """Stands in for TextEncoder: records every text it is asked to encode."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def encode(self, texts):  # type: ignore[no-untyped-def]
        self.texts += list(texts)
        return torch.zeros(len(texts), 3)


def test_tag_of_a_test_pair_never_reaches_an_encoded_text():
    ds = tiny()
    ds = ds.with_tags(ds.tag_assignments)  # item_info gains a "tags" column, as MovieLens' has
    assert ds.item_info["tags"].tolist() == [[], ["tense"], ["leaky"], []]
    enc = RecordingEncoder()
    GraphBuilder(GraphConfig(item_attributes=("tag",)), enc, "{title}. Tags: {tags}").build(ds, split=tiny_split(ds))
    # "leaky" was applied only on the test pair (u0, i2)
    assert enc.texts == ["Alien (1979)", "Heat (1995). Tags: tense", "Up (2009)", "Fargo (1996)"]
