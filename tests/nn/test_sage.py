import io

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


def test_dim_is_the_width_and_hidden_its_deprecated_name():
    model = GraphSAGE(graph(), dim=8, num_layers=2, fanouts=[-1, -1])
    assert model.get_embedding()[0].shape == (20, 8) and model.hparams()["dim"] == 8
    with pytest.warns(FutureWarning, match=r"GraphSAGE\(dim=\.\.\.\)"):
        old = GraphSAGE(graph(), hidden=6, num_layers=2, fanouts=[-1, -1])
    assert old.dim == 6 and old.get_embedding()[1].shape == (25, 6)
    with pytest.warns(FutureWarning, match="GraphSAGE.hidden is now GraphSAGE.dim"):
        assert old.hidden == 6


def test_sampled_equals_full_graph_when_fanouts_cover_all():
    torch.manual_seed(0)
    model = GraphSAGE(graph(), dim=8, num_layers=2, fanouts=[-1, -1]).eval()
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
    model = GraphSAGE(base, dim=8, num_layers=2, fanouts=[-1, -1]).eval()
    g = full["item", "has_genre", "genre"].edge_index
    genre = int(g[1][g[0] == 4][0])
    new = model.embed_new_items(full["item"].x[[4]], {"genre": [[genre]]})
    # the same item inside the graph, linked to its genre only (no users): the same embedding
    twin = GraphSAGE(with_edges(base, full, {("item", "genre")}, "item", 4), dim=8, num_layers=2, fanouts=[-1, -1]).eval()
    twin.load_state_dict(model.state_dict())
    torch.testing.assert_close(new[0], twin.get_embedding()[1][4], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(new[0], model.get_embedding()[1][4], atol=1e-4)  # the link matters


def test_new_user_from_items():
    torch.manual_seed(0)
    full = graph()
    base = isolate(full, "user", 5)
    model = GraphSAGE(base, dim=8, num_layers=2, fanouts=[-1, -1]).eval()
    ui = full["user", "interacts", "item"].edge_index
    items = ui[1][ui[0] == 5].tolist()
    new = model.embed_new_user(items)
    twin = GraphSAGE(full, dim=8, num_layers=2, fanouts=[-1, -1]).eval()
    twin.load_state_dict(model.state_dict())
    torch.testing.assert_close(new, twin.get_embedding()[0][5], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="at least one item"):
        model.embed_new_user([])


def with_occupations(data):
    """``data`` with a user attribute: user u has occupation u % 2."""
    users = data["user"].num_nodes
    data["occupation"].num_nodes = 2
    uo = torch.stack([torch.arange(users), torch.arange(users) % 2])
    data["user", "has_occupation", "occupation"].edge_index = uo
    data["occupation", "rev_has_occupation", "user"].edge_index = uo.flip(0)
    return data


def test_a_trained_user_folds_in_with_their_node_and_attributes():
    torch.manual_seed(0)
    full = with_occupations(graph())
    ui = full["user", "interacts", "item"].edge_index
    user, items = 5, ui[1][ui[0] == 5].tolist()
    extra = next(i for i in range(25) if i not in items)
    model = GraphSAGE(full, dim=8, num_layers=2, fanouts=[-1, -1]).eval()
    # the unchanged history gives the trained embedding back
    torch.testing.assert_close(model.fold_in(torch.tensor(items), user=user), model.get_embedding()[0][user],
                               atol=1e-5, rtol=1e-5)
    # a grown history: the user's embedding in the graph with that edge added (same weights)
    grown = full.clone()
    for et, pair in ((("user", "interacts", "item"), [user, extra]), (("item", "rev_interacts", "user"), [extra, user])):
        grown[et].edge_index = torch.cat([grown[et].edge_index, torch.tensor([pair]).T], dim=1)
    twin = GraphSAGE(grown, dim=8, num_layers=2, fanouts=[-1, -1]).eval()
    twin.load_state_dict(model.state_dict())
    want = twin.get_embedding()[0][user]
    torch.testing.assert_close(model.fold_in(torch.tensor([*items, extra]), user=user), want, atol=1e-5, rtol=1e-5)
    # a stranger with the same history has no occupation: another embedding (the attribute matters)
    assert not torch.allclose(model.fold_in(torch.tensor([*items, extra])), want, atol=1e-4)


def test_config_errors():
    with pytest.raises(ConfigError, match="one entry per layer"):
        GraphSAGE(graph(), num_layers=2, fanouts=[5])


def test_bce_objective_recovers_checkerboard():
    from graphrec.train import TrainConfig, Trainer
    from tests.nn.test_conformance import TRAIN, WITHHELD, N, checkerboard_graph

    torch.manual_seed(0)
    model = GraphSAGE(checkerboard_graph(), dim=8, num_layers=2, fanouts=[-1, -1], objective="bce")
    history = Trainer(model, TRAIN, None, TrainConfig(epochs=60, batch_size=8, lr=0.05, progress=False, device="cpu")).fit()
    assert history[0]["loss"] == pytest.approx(0.69, abs=0.15)  # BCE near chance is log 2
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    scores = model.eval().score_all(torch.arange(N))
    scores[torch.from_numpy(TRAIN.toarray() > 0)] = -torch.inf
    assert scores.argmax(1).tolist() == [WITHHELD[u] for u in range(N)]
    with pytest.raises(ConfigError, match="objective"):
        GraphSAGE(graph(), objective="hinge")


# --- exact resume, inference mode, determinism ---


def batches(num_users, num_items, steps, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randint(num_users, (size,), generator=g), torch.randint(num_items, (size,), generator=g),
             torch.randint(num_items, (size,), generator=g)) for _ in range(steps)]


def train_steps(model, optimizer, steps):
    losses = []
    for users, pos, neg in steps:
        loss = model.loss(users, pos, neg)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def fresh_sage(data, weights_seed=0, **kw):
    torch.manual_seed(weights_seed)
    return GraphSAGE(data, **{"dim": 8, "num_layers": 2, "fanouts": [2, 2], "seed": 7, **kw})


@pytest.mark.parametrize("sampler_built_before_restore", [False, True])
def test_resume_from_state_dict_and_rng_state_repeats_the_uninterrupted_run(sampler_built_before_restore):
    data = graph()
    steps = batches(20, 25, 6, 16)
    straight = fresh_sage(data)
    opt = torch.optim.Adam(straight.parameters(), lr=0.01)
    expected = train_steps(straight, opt, steps)

    first = fresh_sage(data)
    opt = torch.optim.Adam(first.parameters(), lr=0.01)
    assert train_steps(first, opt, steps[:3]) == expected[:3]
    buf = io.BytesIO()
    torch.save({"model": first.state_dict(), "optimizer": opt.state_dict(), "model_rng": first.rng_state()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    assert list(saved["model_rng"]) == ["sampler.cpu"]
    assert saved["model_rng"]["sampler.cpu"].dtype == torch.uint8

    def resumed(with_rng):
        model = fresh_sage(data, weights_seed=123)
        if sampler_built_before_restore:
            model.get_embedding()
        model.load_state_dict(saved["model"])
        if with_rng:
            model.set_rng_state(saved["model_rng"])
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        optimizer.load_state_dict(saved["optimizer"])
        return model, train_steps(model, optimizer, steps[3:])

    model, losses = resumed(with_rng=True)
    assert losses == expected[3:]  # bit-identical
    for name, value in straight.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    # without the sampler's state the continuation draws other neighbours (so the test can fail)
    _, other = resumed(with_rng=False)
    assert other != expected[3:]


def test_rng_state_for_another_device_is_kept_and_round_trips():
    model = fresh_sage(graph())
    cuda_state = torch.arange(16, dtype=torch.uint8)  # a CUDA (Philox) generator state is a CPU ByteTensor too
    model.set_rng_state({"sampler.cuda:0": cuda_state})
    with pytest.warns(UserWarning, match=r"sampler state is for cuda:0.*starts from its seed"):
        model.get_embedding()  # builds the CPU sampler, which cannot take a CUDA state
    state = model.rng_state()
    assert sorted(state) == ["sampler.cpu", "sampler.cuda:0"]
    assert torch.equal(state["sampler.cuda:0"], cuda_state)
    assert all(v.device.type == "cpu" for v in state.values())


def test_each_rank_samples_from_its_own_stream():
    """Rank 0 keeps the one-process stream; other ranks draw other neighbours, the same on every run; a sampler
    built before set_rank is reseeded; a checkpoint's state restored afterwards still wins."""
    data = graph()
    steps = batches(20, 25, 3, 16)

    def losses(rank=None, build_first=False):
        model = fresh_sage(data)
        if build_first:
            model.get_embedding()
        if rank is not None:
            model.set_rank(rank)
        return train_steps(model, torch.optim.Adam(model.parameters(), lr=0.01), steps), model

    alone, _ = losses()
    assert losses(0)[0] == alone
    one, _ = losses(1)
    assert one != alone and losses(1)[0] == one and losses(1, build_first=True)[0] == one
    assert losses(2)[0] not in (alone, one)
    _, first = losses()
    restored = fresh_sage(data)
    restored.set_rank(1)
    restored.set_rng_state(first.rng_state())
    restored.get_embedding()  # builds the sampler, which takes the restored state
    assert restored.rng_state()["sampler.cpu"].equal(first.rng_state()["sampler.cpu"])
    with pytest.raises(ValueError, match=r"rank must be >= 0, got -1"):
        restored.set_rank(-1)


def test_set_rank_carries_a_stream_on_unless_restarted():
    """A sampler already on the rank's stream is not rewound (a second trainer on the same model); with restart
    (after rank 0's state was restored on another rank) it starts the rank's stream afresh."""
    data = graph()
    steps = batches(20, 25, 4, 16)

    def model_on_rank(rank):
        model = fresh_sage(data)
        model.set_rank(rank)
        return model, torch.optim.Adam(model.parameters(), lr=0.01)

    for rank in (0, 1):
        model, opt = model_on_rank(rank)
        straight = train_steps(model, opt, steps)
        model, opt = model_on_rank(rank)
        first = train_steps(model, opt, steps[:2])
        model.set_rank(rank)  # unchanged: carries on
        assert first + train_steps(model, opt, steps[2:]) == straight
    model, opt = model_on_rank(1)
    train_steps(model, opt, steps[:2])
    drawn = model.rng_state()["sampler.cpu"]
    model.set_rank(1, restart=True)
    assert not model.rng_state()["sampler.cpu"].equal(drawn)
    fresh, _ = model_on_rank(1)
    fresh.get_embedding()  # builds its sampler: rank 1's stream at its start
    assert model.rng_state()["sampler.cpu"].equal(fresh.rng_state()["sampler.cpu"])


def test_set_rng_state_rejects_what_is_not_a_sampler_state():
    model = fresh_sage(graph())
    with pytest.raises(ValueError, match=r"GraphSAGE\.set_rng_state: unknown key 'generator'"):
        model.set_rng_state({"generator": torch.zeros(4, dtype=torch.uint8)})
    with pytest.raises(ValueError, match=r"'sampler\.cpu' must be a 1-d uint8 tensor.*got torch\.float32"):
        model.set_rng_state({"sampler.cpu": torch.zeros(4)})
    with pytest.raises(ValueError, match=r"'sampler\.tpu' does not name a device"):
        model.set_rng_state({"sampler.tpu": torch.zeros(4, dtype=torch.uint8)})


def test_training_after_a_first_evaluation_under_inference_mode():
    model = fresh_sage(graph())
    with torch.inference_mode():  # as the Evaluator ranks: builds and caches the graph and the sampler
        model.score_all(torch.arange(3))
    g, sampler = model._graph()
    cached = [t for store in g.stores for t in store.values() if isinstance(t, torch.Tensor)]
    cached += [t for csc in sampler.csc.values() for t in csc if t is not None] + list(sampler._local.values())
    assert not any(t.is_inference() for t in cached)
    model.loss(torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])).backward()
    assert model.encoder.convs[0].convs[("user", "interacts", "item")].lin_l.weight.grad is not None
    model.embed_sampled({"user": torch.tensor([0, 1])})["user"].sum().backward()
    model.get_embedding()[0].sum().backward()  # the full-graph path saves the cached features for backward


def test_training_is_bit_deterministic_on_cpu_with_parallel_threads():
    # big enough for parallel kernels: 4096 gathered item rows x 32 columns, over 40 items
    data = random_graph(seed=1, users=60, items=40, edges=600)
    steps = batches(60, 40, 4, 2048, seed=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = []
        for _ in range(2):
            model = fresh_sage(data, dim=32, fanouts=[5, 5])
            losses = train_steps(model, torch.optim.Adam(model.parameters(), lr=0.01), steps)
            runs.append((losses, model.state_dict()))
    finally:
        torch.set_num_threads(threads)
    (losses_a, state_a), (losses_b, state_b) = runs
    assert losses_a == losses_b
    for name, value in state_a.items():
        assert torch.equal(state_b[name], value), name


def test_new_nodes_take_raw_ids():
    from graphrec.errors import UnknownIdError

    torch.manual_seed(0)
    full = graph()
    full.node_raw_ids = {t: [f"{t[0]}{i}" for i in range(full[t].num_nodes)] for t in full.node_types}
    model = GraphSAGE(full, dim=8, num_layers=2, fanouts=[-1, -1]).eval()
    ui = full["user", "interacts", "item"].edge_index
    items = ui[1][ui[0] == 5].tolist()
    by_raw = model.embed_new_user([f"i{i}" for i in items])
    torch.testing.assert_close(by_raw, model._embed_user(items))
    g = full["item", "has_genre", "genre"].edge_index
    genre = int(g[1][g[0] == 4][0])
    assert model.embed_new_items(full["item"].x[[4]], {"genre": [[f"g{genre}"]]}).shape == (1, 8)
    with pytest.raises(UnknownIdError, match=r"unknown item id\(s\): \['nope'\]"):
        model.embed_new_user(["nope"])
    with pytest.raises(UnknownIdError, match="unknown genre id"):
        model.embed_new_items(full["item"].x[[4]], {"genre": [["nope"]]})


def test_target_edges_carry_no_message():
    """With exclude_target_edges, a pair's own edge is out of its sampled graph, both directions."""
    torch.manual_seed(0)
    full = graph()
    ui = full["user", "interacts", "item"].edge_index
    u, p = int(ui[0, 0]), int(ui[1, 0])
    model = GraphSAGE(full, dim=8, num_layers=2, fanouts=[-1, -1], exclude_target_edges=True).eval()
    ids = model.pair_edge_ids(torch.tensor([u, u]), torch.tensor([p, (p + 1) % 25]))
    assert 0 in ids.tolist()  # the first pair's edge; the second pair may have none
    # the same model on the graph without that edge (every neighbour taken: no sampling noise)
    keep = torch.ones(ui.shape[1], dtype=torch.bool)
    keep[0] = False
    cut = full.clone()
    cut["user", "interacts", "item"].edge_index = ui[:, keep]
    cut["item", "rev_interacts", "user"].edge_index = ui[:, keep].flip(0)
    twin = GraphSAGE(cut, dim=8, num_layers=2, fanouts=[-1, -1]).eval()
    twin.load_state_dict(model.state_dict())
    seeds = {"user": torch.tensor([u]), "item": torch.tensor([p])}
    drop = {("user", "interacts", "item"): torch.tensor([0]), ("item", "rev_interacts", "user"): torch.tensor([0])}
    with torch.no_grad():
        dropped = model.embed_sampled(seeds, drop=drop)
        kept = model.embed_sampled(seeds)
        reference = twin.embed_sampled(seeds)
    torch.testing.assert_close(dropped["user"], reference["user"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dropped["item"], reference["item"], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(kept["user"], reference["user"], atol=1e-4)  # the edge mattered
    model.train()
    assert torch.isfinite(model.loss(torch.tensor([u]), torch.tensor([p]), torch.tensor([(p + 3) % 25])))


def test_candidate_scores_are_the_sampled_pair_scores():
    """Every neighbour taken, the sampled candidate scores equal the full-graph dot products."""
    torch.manual_seed(0)
    model = GraphSAGE(graph(), dim=8, num_layers=2, fanouts=[-1, -1]).eval()
    users, cands = torch.tensor([3, 0, 3]), torch.tensor([[7, 1], [1, 24], [0, 7]])
    with torch.no_grad():
        got = model.candidate_scores(users, cands)
        u, i = model.get_embedding()
    assert got.shape == (3, 2)
    torch.testing.assert_close(got, (u[users].unsqueeze(1) * i[cands]).sum(-1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("drop_target", [False, True])
def test_trimmed_layers_give_the_seeds_the_untrimmed_embeddings(drop_target):
    """Layer l leaves out the sample's last l hops (no later layer reads them): the seeds' embeddings and their
    gradients are those of the whole sampled subgraph."""
    from graphrec.nn.sage import SampledHops

    torch.manual_seed(0)
    model = GraphSAGE(graph(), dim=8, num_layers=3, fanouts=[3, 2, 2], exclude_target_edges=drop_target)
    seeds = {"user": torch.tensor([3, 0, 11]), "item": torch.tensor([7, 1])}
    out = NeighborSampler(model.graph, [3, 2, 2], seed=1).sample(seeds)
    assert sum(out.num_sampled_nodes["user"][1:]) > 0  # the sample reaches past the seeds
    g = model.graph
    x = {t: (g[t].x[out.node[t]] if "x" in g[t] else None) for t in g.node_types}
    edges = {et: torch.stack([out.row[et], out.col[et]]) for et in g.edge_types}
    hops = SampledHops({t: list(v) for t, v in out.num_sampled_nodes.items()},
                       {et: list(v) for et, v in out.num_sampled_edges.items()})
    whole = model.encoder(x, out.node, edges)
    trimmed = model.encoder(x, out.node, edges, hops)
    loss_whole = sum(whole[t][: len(s)].square().sum() for t, s in seeds.items())
    grads_whole = torch.autograd.grad(loss_whole, list(model.encoder.parameters()), allow_unused=True)
    loss_trim = sum(trimmed[t][: len(s)].square().sum() for t, s in seeds.items())
    grads_trim = torch.autograd.grad(loss_trim, list(model.encoder.parameters()), allow_unused=True)
    for t, s in seeds.items():
        torch.testing.assert_close(trimmed[t][: len(s)], whole[t][: len(s)], atol=1e-6, rtol=1e-5)
        assert len(trimmed[t]) < len(whole[t])  # the last layer ran on fewer nodes
    for a, b in zip(grads_whole, grads_trim, strict=True):
        if a is not None or b is not None:
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    # through embed_sampled (and its edge drop), the training path
    model.train()
    assert torch.isfinite(model.loss(torch.tensor([3, 0]), torch.tensor([7, 1]), torch.tensor([2, 4])))
