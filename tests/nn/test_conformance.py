"""One conformance suite that every model passes (after implicit's recommender_base_test)."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graphrec.data import Vocabulary
from graphrec.errors import UnknownIdError
from graphrec.eval import to_csr
from graphrec.graph import normalized_adjacency
from graphrec.nn import LightGCN
from graphrec.nn.registry import MODELS as REGISTRY
from graphrec.nn.registry import model_config
from graphrec.nn.spec import ModelInputs
from graphrec.rank import Recommender
from graphrec.train import TrainConfig, Trainer, load_checkpoint, save_checkpoint

# Checkerboard: users 0-3 like items 0-3, users 4-7 like items 4-7. Each user's
# train history leaves out one in-group item, which the model must rank first.
N = 8
WITHHELD = {u: (u // 4) * 4 + (u + 1) % 4 for u in range(N)}
PAIRS = [(u, i) for u in range(N) for i in range(N) if (u < 4) == (i < 4) and i != WITHHELD[u]]
TRAIN = to_csr(np.array([p[0] for p in PAIRS]), np.array([p[1] for p in PAIRS]), N, N)
# item text features: one-hot group, so the text projection has something to learn from
ITEM_X = torch.tensor([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 4)


def checkerboard_graph():
    from torch_geometric.data import HeteroData

    coo = TRAIN.tocoo()
    ei = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes = N, N
    data["item"].x = ITEM_X
    counts = torch.from_numpy(np.asarray(TRAIN.sum(1)).ravel()).float().unsqueeze(1)
    data["user"].x = torch.from_numpy(TRAIN.toarray()).float() @ ITEM_X / counts  # text_mean users
    data["user", "interacts", "item"].edge_index = ei
    data["item", "rev_interacts", "user"].edge_index = ei.flip(0)
    return data


#: small sizes for the checkerboard, applied to the models that have the key
SMALL = {"dim": 8, "num_layers": 2, "k": 4, "fanouts": (-1, -1), "rank": 4}
#: configurations tested besides each registered model's defaults: (case, model name, options)
VARIANTS = [("lightgcn[text]", "lightgcn", {"item_features": "text"})]
#: every registered model is in the suite with no edit here: one case per registry entry, plus VARIANTS
CASES = {name: (name, {}) for name in REGISTRY} | {case: (name, opts) for case, name, opts in VARIANTS}


def inputs(seed: int = 0) -> ModelInputs:
    return ModelInputs(N, N, train=TRAIN, adjacency=normalized_adjacency(TRAIN), item_text=ITEM_X,
                       graph=checkerboard_graph(), seed=seed)


def build(case: str, seed: int = 0):
    name, options = CASES[case]
    spec = REGISTRY[name]
    config = model_config({"name": name, **{k: v for k, v in SMALL.items() if k in spec.keys()}, **options})
    torch.manual_seed(seed)
    return spec.create(config, inputs(seed))


def fitted(case: str):
    model = build(case)
    if model.trainable:
        Trainer(model, TRAIN, None, TrainConfig(epochs=60, batch_size=8, lr=0.05, progress=False, device="cpu")).fit()
    else:
        model.fit(TRAIN)
    return model.eval()


MODELS = list(CASES)
#: models that score every user alike
UNPERSONALISED = {"mostpop"}
PERSONALISED = [m for m in MODELS if m not in UNPERSONALISED]


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    return request.param, fitted(request.param)


def recommender(m):
    return Recommender(m, Vocabulary([f"u{i}" for i in range(N)], "user"), Vocabulary(list(range(100, 100 + N)), "item"), TRAIN)


@pytest.mark.parametrize("name", PERSONALISED)
def test_checkerboard_recovery(name):
    rec = recommender(fitted(name))
    ids, _scores = rec.recommend([f"u{u}" for u in range(N)], k=1)
    assert ids[:, 0].tolist() == [100 + WITHHELD[u] for u in range(N)]


def test_most_popular_is_popularity_order():
    m = fitted("mostpop")
    np.testing.assert_array_equal(m.popularity.numpy(), np.asarray(TRAIN.sum(0)).ravel())


def test_batch_equals_single_user(model):
    _, m = model
    users = torch.arange(N)
    batch = m.score_all(users)
    for u in range(N):
        torch.testing.assert_close(m.score_all(users[u : u + 1])[0], batch[u])
    pairs = m(users, torch.arange(N))
    torch.testing.assert_close(pairs, batch.diagonal())


def test_save_load_gives_equal_scores(model, tmp_path):
    name, m = model
    save_checkpoint(tmp_path / "m.pt", {"model": m.state_dict(), "hparams": m.hparams()})
    state = load_checkpoint(tmp_path / "m.pt")
    fresh = build(name, seed=123)
    fresh.load_state_dict(state["model"])
    torch.testing.assert_close(fresh.eval().score_all(torch.arange(N)), m.score_all(torch.arange(N)))
    assert state["hparams"] == m.hparams()


def test_unknown_user_policy(model):
    _, m = model
    rec = recommender(m)
    with pytest.raises(UnknownIdError, match="unknown user id"):
        rec.recommend("nobody", k=2)
    with pytest.raises(UnknownIdError):
        rec.recommend(["u0", "nobody"], k=2)


def test_recommend_contract(model):
    _, m = model
    rec = recommender(m)
    ids, scores = rec.recommend("u0", k=3)
    assert ids.shape == (3,) and scores.shape == (3,)
    assert all(scores[:-1] >= scores[1:])
    seen = {100 + i for i in TRAIN[0].indices}
    assert not seen & set(ids.tolist())
    ids_all, _ = rec.recommend("u0", k=N, exclude_seen=True)
    assert sum(x is None for x in ids_all) == len(seen)  # only unseen items are real entries
    ids_incl, _ = rec.recommend("u0", k=N, exclude_seen=False)
    assert set(ids_incl.tolist()) == set(range(100, 100 + N))


def test_repr_shows_hyperparameters():
    assert "dim=8" in repr(build("mf-bpr")) and "num_layers=2" in repr(build("lightgcn"))
    assert "k=4" in repr(build("itemknn"))
    assert "fanouts=[-1, -1]" in repr(build("graphsage"))


def test_lightgcn_propagation_exact():
    # 1 user, 2 items, edges u0-i0, u0-i1: Â has entries 1/sqrt(2) between u0 and each item
    r = sp.csr_matrix(np.array([[1.0, 1.0]]))
    m = LightGCN(1, 2, normalized_adjacency(r), dim=1, num_layers=1)
    with torch.no_grad():
        m.user_emb.weight.fill_(2.0)
        m.item_emb.weight.copy_(torch.tensor([[1.0], [3.0]]))
    u, i = m.get_embedding()
    s = float(1 / np.sqrt(2))
    # e = (e0 + Â e0) / 2
    torch.testing.assert_close(u, torch.tensor([[(2.0 + s * (1 + 3)) / 2]]))
    torch.testing.assert_close(i, torch.tensor([[(1 + s * 2) / 2], [(3 + s * 2) / 2]]))


def test_lightgcn_gradient_matches_autograd_reference():
    r = sp.random(5, 7, density=0.5, random_state=0, format="csr")
    adj = normalized_adjacency(r)
    m = LightGCN(5, 7, adj, dim=4, num_layers=3, reg=0.1)
    users, pos, neg = torch.tensor([0, 1, 4]), torch.tensor([2, 3, 6]), torch.tensor([1, 0, 5])
    m.loss(users, pos, neg).backward()
    # reference: plain dense autograd through three products and explicit gathers
    dense = adj.to_dense()
    e0 = torch.cat([m.user_emb.weight, m.item_emb.weight]).detach().requires_grad_(True)
    layers, h = [e0], e0
    for _ in range(3):
        h = dense @ h
        layers.append(h)
    final = torch.stack(layers).mean(0)
    fu, fi = final[:5], final[5:]
    ref = torch.nn.functional.softplus((fu[users] * fi[neg]).sum(1) - (fu[users] * fi[pos]).sum(1)).mean()
    ref = ref + 0.1 * (e0[:5][users].pow(2).sum() + e0[5:][pos].pow(2).sum() + e0[5:][neg].pow(2).sum()) / (2 * 3)
    ref.backward()
    torch.testing.assert_close(torch.cat([m.user_emb.weight.grad, m.item_emb.weight.grad]), e0.grad, atol=1e-6, rtol=1e-5)


def test_text_lightgcn_embeds_item_without_interactions():
    # item 2 has no train interaction; its layer-0 embedding comes from its features
    r = sp.csr_matrix(np.array([[1.0, 1.0, 0.0]]))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    m = LightGCN(1, 3, normalized_adjacency(r), dim=2, num_layers=1, item_features=x)
    with torch.no_grad():
        m.item_emb.weight.zero_()
        m.item_proj.weight.copy_(torch.eye(2))
    _, items0 = m.layer0()
    torch.testing.assert_close(items0[2], torch.tensor([1.0, 1.0]))
    _, items = m.get_embedding()
    torch.testing.assert_close(items[2], torch.tensor([0.5, 0.5]))  # (e0 + Â e0) / 2 with no neighbours


@pytest.mark.parametrize("name", PERSONALISED)
def test_new_user_from_history_recovers_checkerboard(name):
    # a new user who liked three of items 0-3 gets the fourth first
    rec = recommender(fitted(name))
    ids, _ = rec.recommend_for_history([100, 101, 102], k=1)
    assert ids.tolist() == [103]
