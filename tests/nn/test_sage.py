import pytest
import torch

from graphrec.errors import ConfigError
from graphrec.nn import GraphSAGE
from graphrec.sampling import NeighborSampler
from tests.sampling.test_neighbor import random_graph


def graph():
    data = random_graph(seed=3, users=20, items=25, edges=150)
    items = data["item"].x
    ui = data["user", "interacts", "item"].edge_index
    x = torch.zeros(20, items.shape[1]).index_add_(0, ui[0], items[ui[1]])
    data["user"].x = x / torch.bincount(ui[0], minlength=20).clamp(min=1).unsqueeze(1)
    return data


def test_sampled_equals_full_graph_when_fanouts_cover_all():
    torch.manual_seed(0)
    model = GraphSAGE(graph(), hidden=8, num_layers=2, fanouts=[-1, -1]).eval()
    users, items = model.get_embedding()
    seeds = {"user": torch.tensor([3, 0, 11]), "item": torch.tensor([7, 1])}
    h = model.embed_sampled(seeds)
    torch.testing.assert_close(h["user"], users[seeds["user"]], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h["item"], items[seeds["item"]], atol=1e-5, rtol=1e-5)
    # with a partial fan-out they differ (the test can fail)
    partial = model.embed_sampled(seeds, NeighborSampler(model.graph, [1, 1], seed=0))
    assert not torch.allclose(partial["user"], users[seeds["user"]], atol=1e-4)


def isolate(data, node_type, index):
    """A copy of the graph in which one node has no edges."""
    out = data.clone()
    for et in out.edge_types:
        ei = out[et].edge_index
        keep = torch.ones(ei.shape[1], dtype=torch.bool)
        if et[0] == node_type:
            keep &= ei[0] != index
        if et[2] == node_type:
            keep &= ei[1] != index
        out[et].edge_index = ei[:, keep]
    return out


def with_edges(base, full, edge_types, node_type, index):
    """``base`` plus the edges of ``full`` that touch the node, for the given types (and their reverses)."""
    out = base.clone()
    for et in full.edge_types:
        if (et[0], et[2]) not in edge_types and (et[2], et[0]) not in edge_types:
            continue
        ei = full[et].edge_index
        touch = ((ei[0] == index) if et[0] == node_type else torch.zeros(ei.shape[1], dtype=torch.bool)) | (
            (ei[1] == index) if et[2] == node_type else torch.zeros(ei.shape[1], dtype=torch.bool))
        out[et].edge_index = torch.cat([out[et].edge_index, ei[:, touch]], dim=1)
    return out


def test_new_item_from_features_and_links_alone():
    torch.manual_seed(0)
    full = graph()
    base = isolate(full, "item", 4)  # item 4: in the graph, but with no edge at all
    model = GraphSAGE(base, hidden=8, num_layers=2, fanouts=[-1, -1]).eval()
    g = full["item", "has_genre", "genre"].edge_index
    genre = int(g[1][g[0] == 4][0])
    new = model.embed_new_items(full["item"].x[[4]], {"genre": [[genre]]})
    # the same item inside the graph, linked to its genre only (no users): the same embedding
    twin = GraphSAGE(with_edges(base, full, {("item", "genre")}, "item", 4), hidden=8, num_layers=2, fanouts=[-1, -1]).eval()
    twin.load_state_dict(model.state_dict())
    torch.testing.assert_close(new[0], twin.get_embedding()[1][4], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(new[0], model.get_embedding()[1][4], atol=1e-4)  # the link matters


def test_new_user_from_items():
    torch.manual_seed(0)
    full = graph()
    base = isolate(full, "user", 5)
    model = GraphSAGE(base, hidden=8, num_layers=2, fanouts=[-1, -1]).eval()
    ui = full["user", "interacts", "item"].edge_index
    items = ui[1][ui[0] == 5].tolist()
    new = model.embed_new_user(items)
    twin = GraphSAGE(full, hidden=8, num_layers=2, fanouts=[-1, -1]).eval()
    twin.load_state_dict(model.state_dict())
    torch.testing.assert_close(new, twin.get_embedding()[0][5], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="at least one item"):
        model.embed_new_user([])


def test_config_errors():
    with pytest.raises(ConfigError, match="one entry per layer"):
        GraphSAGE(graph(), num_layers=2, fanouts=[5])


def test_bce_objective_recovers_checkerboard():
    from graphrec.train import TrainConfig, Trainer
    from tests.nn.test_conformance import TRAIN, WITHHELD, N, checkerboard_graph

    torch.manual_seed(0)
    model = GraphSAGE(checkerboard_graph(), hidden=8, num_layers=2, fanouts=[-1, -1], objective="bce")
    history = Trainer(model, TRAIN, None, TrainConfig(epochs=60, batch_size=8, lr=0.05, progress=False, device="cpu")).fit()
    assert history[0]["loss"] == pytest.approx(0.69, abs=0.15)  # BCE near chance is log 2
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    scores = model.eval().score_all(torch.arange(N))
    scores[torch.from_numpy(TRAIN.toarray() > 0)] = -torch.inf
    assert scores.argmax(1).tolist() == [WITHHELD[u] for u in range(N)]
    with pytest.raises(ConfigError, match="objective"):
        GraphSAGE(graph(), objective="hinge")
