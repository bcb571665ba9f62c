"""The CUDA path; skipped on machines without a GPU."""

import pytest
import torch

from graphrec.text import TextEncoder

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

TEXTS = ["Star Wars (1977). Genres: Action, Sci-Fi", "Fargo (1996)", "A much longer text about a quiet film."]


def test_cuda_matches_cpu():
    cpu = TextEncoder(cache_dir=None, device="cpu").encode(TEXTS)
    gpu = TextEncoder(cache_dir=None, device="cuda").encode(TEXTS)  # bf16 autocast
    full = TextEncoder(cache_dir=None, device="cuda", half=False).encode(TEXTS)
    assert gpu.device.type == "cpu" and gpu.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(cpu, gpu).min() > 0.999
    torch.testing.assert_close(full, cpu, atol=1e-4, rtol=0)


def test_auto_device_is_cuda():
    assert TextEncoder(cache_dir=None).device.type == "cuda"
