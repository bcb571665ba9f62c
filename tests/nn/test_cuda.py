"""The CUDA path of models, training and evaluation; skipped without a GPU."""

import numpy as np
import pytest
import torch

from graphrec.eval import Evaluator, to_csr
from graphrec.graph import normalized_adjacency
from graphrec.nn import MFBPR, ItemKNN, LightGCN, MostPopular

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def data():
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, 50, 600), rng.integers(0, 70, 600)
    keys = np.unique(u * 70 + i)
    return to_csr(keys // 70, keys % 70, 50, 70)


def test_lightgcn_cuda_matches_cpu_forward_and_gradient():
    train = data()
    torch.manual_seed(0)
    cpu = LightGCN(50, 70, normalized_adjacency(train), dim=8, num_layers=3)
    gpu = LightGCN(50, 70, normalized_adjacency(train), dim=8, num_layers=3)
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.cuda()
    assert gpu.adj.device.type == "cuda"
    users, pos, neg = torch.tensor([0, 3, 7]), torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6])
    cpu.loss(users, pos, neg).backward()
    gpu.loss(users.cuda(), pos.cuda(), neg.cuda()).backward()
    torch.testing.assert_close(gpu.user_emb.weight.grad.cpu(), cpu.user_emb.weight.grad, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(gpu.score_all(torch.arange(50).cuda()).cpu(), cpu.score_all(torch.arange(50)), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("factory", [lambda a: MFBPR(50, 70, dim=8), lambda a: LightGCN(50, 70, a, dim=8)])
def test_evaluator_cuda_matches_cpu(factory):
    train = data()
    truth = to_csr(np.arange(50), np.arange(50) % 70, 50, 70)
    torch.manual_seed(0)
    model = factory(normalized_adjacency(train))
    ev = Evaluator(truth, train, ks=(5, 10))
    cpu = ev.evaluate(model)
    gpu = ev.evaluate(model.cuda())
    assert gpu == pytest.approx(cpu, abs=1e-6)


@pytest.mark.parametrize("factory", [lambda: MostPopular(50, 70), lambda: ItemKNN(50, 70, k=10)])
def test_baselines_cuda_give_the_same_top_scores(factory):
    # their scores have ties, which torch.topk may order differently per device: compare the score values
    train = data()
    model = factory().fit(train)
    users = torch.arange(50)
    cpu = torch.topk(model.score_all(users), 10).values
    gpu = torch.topk(model.cuda().score_all(users.cuda()), 10).values.cpu()
    torch.testing.assert_close(gpu, cpu)
