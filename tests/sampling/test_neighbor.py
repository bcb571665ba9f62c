import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import HeteroData
from torch_geometric.loader import LinkLoader, NodeLoader
from torch_geometric.sampler import NegativeSampling

from graphrec.errors import ConfigError
from graphrec.sampling import NeighborSampler

UI = ("user", "interacts", "item")
IU = ("item", "rev_interacts", "user")
IG = ("item", "has_genre", "genre")
GI = ("genre", "rev_has_genre", "item")
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]


def random_graph(seed=0, users=30, items=40, edges=200, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(users, (edges,), generator=g)
    i = torch.randint(items, (edges,), generator=g)
    keys = torch.unique(u * items + i)
    u, i = keys // items, keys % items
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes, data["genre"].num_nodes = users, items, 3
    data[UI].edge_index = torch.stack([u, i])
    data[IU].edge_index = torch.stack([i, u])
    data[UI].weight = torch.rand(len(u), generator=g)
    data[IU].weight = data[UI].weight.clone()
    gi = torch.stack([torch.arange(items), torch.arange(items) % 3])
    data[IG].edge_index, data[GI].edge_index = gi, gi.flip(0)
    data["item"].x = torch.randn(items, 4, generator=g)
    return data.to(device)


def check_output(data, out, seeds):
    """Every sampled edge exists; seeds come first; counts add up."""
    for t, s in seeds.items():
        torch.testing.assert_close(out.node[t][: len(s)], s.to(out.node[t].device))
    for et in data.edge_types:
        src, dst = out.node[et[0]][out.row[et]], out.node[et[2]][out.col[et]]
        ei = data[et].edge_index[:, out.edge[et]]
        torch.testing.assert_close(torch.stack([src, dst]), ei)
        assert sum(out.num_sampled_edges[et]) == len(out.row[et])
    for t in data.node_types:
        assert sum(out.num_sampled_nodes[t]) == len(out.node[t])
        assert len(torch.unique(out.node[t])) == len(out.node[t])


def degrees_into(data, et, nodes):
    dst = data[et].edge_index[1]
    return torch.stack([(dst == n).sum() for n in nodes]) if len(nodes) else torch.zeros(0, dtype=torch.long)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("replace", [False, True])
def test_edges_exist_seeds_first_fanouts(device, replace):
    data = random_graph(device=device)
    sampler = NeighborSampler(data, [3, 2], replace=replace, seed=0)
    seeds = {"user": torch.tensor([5, 0, 17], device=device)}
    out = sampler.sample(seeds)
    check_output(data, out, seeds)
    # hop 0: each seed user got min(deg, 3) item neighbours (exactly 3 draws with replacement)
    first_hop = out.num_sampled_edges[IU][0]
    col = out.col[IU][:first_hop]
    deg = degrees_into(data, IU, seeds["user"])
    for j, d in enumerate(deg.tolist()):
        got = int((col == j).sum())
        assert got == ((3 if d else 0) if replace else min(d, 3))
    if not replace:
        for et in data.edge_types:
            pairs = torch.stack([out.col[et], out.edge[et]]).t().tolist()
            assert len(set(map(tuple, pairs))) == len(pairs)  # no edge twice


def test_same_seed_same_sample_different_seed_different():
    data = random_graph(edges=600)
    seeds = {"user": torch.arange(10)}
    a = NeighborSampler(data, [4, 4], seed=1).sample(seeds)
    b = NeighborSampler(data, [4, 4], seed=1).sample(seeds)
    c = NeighborSampler(data, [4, 4], seed=2).sample(seeds)
    for et in data.edge_types:
        torch.testing.assert_close(a.edge[et], b.edge[et])
    assert any(not torch.equal(a.edge[et], c.edge[et]) for et in data.edge_types)


def khop(data, seeds, hops):
    """Reference: the full k-hop in-neighbourhood by Python sets over the edge lists."""
    nodes = {t: set(v.tolist()) for t, v in seeds.items()}
    frontier = {t: set(v.tolist()) for t, v in seeds.items()}
    edges = set()
    for _ in range(hops):
        new = {}
        for et in data.edge_types:
            for e, (s, d) in enumerate(data[et].edge_index.t().tolist()):
                if d in frontier.get(et[2], ()):
                    edges.add((et, e))
                    if s not in nodes.setdefault(et[0], set()):
                        new.setdefault(et[0], set()).add(s)
        for t, v in new.items():
            nodes[t] |= v
        frontier = new
    return nodes, edges


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3), st.lists(st.integers(0, 29), min_size=1, max_size=6, unique=True))
def test_full_fanout_equals_khop_neighbourhood(graph_seed, hops, seed_users):
    data = random_graph(graph_seed, edges=120)
    seeds = {"user": torch.tensor(seed_users)}
    for fanout in (-1, 10_000):
        out = NeighborSampler(data, [fanout] * hops, seed=0).sample(seeds)
        nodes, edges = khop(data, seeds, hops)
        got_nodes = {t: set(v.tolist()) for t, v in out.node.items() if len(v)}
        assert got_nodes == {t: v for t, v in nodes.items() if v}
        got_edges = {(et, e) for et in data.edge_types for e in out.edge[et].tolist()}
        assert got_edges == edges


def test_weighted_sampling():
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes = 1, 3
    data[IU].edge_index = torch.tensor([[0, 1, 2], [0, 0, 0]])
    data[IU].weight = torch.tensor([0.0, 1.0, 3.0])
    out = NeighborSampler(data, [2], weight_attr="weight", seed=0).sample({"user": torch.tensor([0])})
    assert sorted(out.edge[IU].tolist()) == [1, 2]  # weight 0 is never drawn without replacement
    s = NeighborSampler(data, [20_000], replace=True, weight_attr="weight", seed=0)
    counts = torch.bincount(s.sample({"user": torch.tensor([0])}).edge[IU], minlength=3)
    assert counts[0] == 0
    assert abs(counts[2] / counts[1] - 3.0) < 0.2


def test_node_loader_gives_heterodata_batches():
    data = random_graph()
    loader = NodeLoader(data, NeighborSampler(data, [3, 3], seed=0), input_nodes=("user", torch.arange(30)), batch_size=8)
    batches = list(loader)
    assert len(batches) == 4
    b = batches[0]
    torch.testing.assert_close(b["user"].n_id[:8], torch.arange(8))
    assert b["user"].batch_size == 8
    torch.testing.assert_close(b["item"].x, data["item"].x[b["item"].n_id])
    torch.testing.assert_close(b[UI].weight, data[UI].weight[b[UI].e_id])
    assert b["user"].num_sampled_nodes[0] == 8


def test_link_loader_with_negatives():
    data = random_graph()
    ei = data[UI].edge_index
    loader = LinkLoader(data, NeighborSampler(data, [3], seed=0), edge_label_index=(UI, ei),
                        neg_sampling=NegativeSampling("triplet"), batch_size=16)
    b = next(iter(loader))
    assert b["user"].src_index.shape == (16,)
    assert b["item"].dst_pos_index.shape == (16,) and b["item"].dst_neg_index.shape == (16,)
    users = b["user"].n_id[b["user"].src_index]
    pos = b["item"].n_id[b["item"].dst_pos_index]
    assert set(zip(users.tolist(), pos.tolist(), strict=True)) <= set(map(tuple, ei.t().tolist()))


def test_bad_arguments():
    data = random_graph()
    with pytest.raises(ConfigError, match="does not have"):
        NeighborSampler(data, {("user", "likes", "item"): [2]})
    with pytest.raises(ConfigError, match="no attribute 'stars'"):
        NeighborSampler(data, [2], weight_attr="stars")
    with pytest.raises(ValueError, match="must be unique"):
        NeighborSampler(data, [2]).sample({"user": torch.tensor([1, 1])})


def test_sampler_state_is_clean_between_calls():
    data = random_graph()
    s = NeighborSampler(data, [3, 3], seed=0)
    for seeds in itertools.islice(itertools.cycle([torch.arange(5), torch.arange(3, 12)]), 6):
        check_output(data, s.sample({"user": seeds}), {"user": seeds})
    assert all((v == -1).all() for v in s._local.values())


def test_sampler_built_under_inference_mode_samples_outside_it():
    data = random_graph()
    with torch.inference_mode():  # as when a model first builds its sampler while being evaluated
        s = NeighborSampler(data, [3, 3], seed=0)
    assert not any(t.is_inference() for t in s._local.values())
    seeds = {"user": torch.arange(5)}
    check_output(data, s.sample(seeds), seeds)
