import pytest
import torch

from graphrec.graph import GraphBuilder, normalized_adjacency

from .test_builder import tiny, tiny_split

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_adjacency_on_cuda_matches_cpu():
    ds = tiny()
    data = GraphBuilder().build(ds, split=tiny_split(ds))
    cpu = normalized_adjacency(data)
    gpu = normalized_adjacency(data, device="cuda")
    assert gpu.device.type == "cuda" and gpu.layout == torch.sparse_csr
    x = torch.randn(cpu.shape[0], 8)
    torch.testing.assert_close((gpu @ x.cuda()).cpu(), cpu @ x, atol=1e-6, rtol=0)
