"""Text encoding speed: graphrec's TextEncoder against sentence-transformers, same model, same batch size.

Encodes the item texts of ml-latest-small (9,742 movies) with
``graphrec.text.TextEncoder`` and with
``sentence_transformers.SentenceTransformer(<same folder>).encode`` on the same
device, checks that both give the same vectors, then times a cached re-run
(a fresh encoder object reading the on-disk cache).

Needs: pip install sentence-transformers (the ``bench`` extra).
Usage: python experiments/bench_text.py [--device auto|cpu|cuda] [--batch-size 64] [--data-dir DIR] [--limit N]
Last line: {"items": ..., "graphrec_items_per_s": ..., "st_items_per_s": ..., "ratio": ...,
            "min_cosine": ..., "cached_seconds": ...}
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from graphrec.data import load_movielens
from graphrec.text import TextEncoder, item_texts
from graphrec.text.encoder import resolve_device


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--model", default="default", help="'default' or a model folder")
    p.add_argument("--limit", type=int, default=None, help="only the first N texts (quick runs)")
    a = p.parse_args()
    from sentence_transformers import SentenceTransformer

    device = resolve_device(a.device)
    texts = item_texts(load_movielens("ml-latest-small", a.data_dir, download=False))[: a.limit]
    ours = TextEncoder(a.model, batch_size=a.batch_size, device=device, cache_dir=None, progress=False)
    ours._load()
    st = SentenceTransformer(str(ours.model_path), device=str(device))
    print(f"{len(texts):,} texts, batch size {a.batch_size}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f" ({torch.get_num_threads()} threads)"))
    # Warm-up both (kernels, allocator). On CUDA over every text, so that neither
    # pays one-off per-shape set-up inside its timed run; on CPU a few batches do.
    warm = texts if device.type == "cuda" else texts[:256]
    ours.encode(warm)
    st.encode(warm, batch_size=a.batch_size)

    sync(device)
    t = time.perf_counter()
    mine = ours.encode(texts)
    sync(device)
    ours_s = time.perf_counter() - t

    t = time.perf_counter()
    theirs = st.encode(texts, batch_size=a.batch_size, convert_to_tensor=True, normalize_embeddings=True)
    sync(device)
    st_s = time.perf_counter() - t

    cos = torch.nn.functional.cosine_similarity(mine.float(), theirs.float().cpu(), dim=1)
    with tempfile.TemporaryDirectory() as cache:
        TextEncoder(a.model, batch_size=a.batch_size, device=device, cache_dir=cache, progress=False).encode(texts)
        fresh = TextEncoder(a.model, batch_size=a.batch_size, device=device, cache_dir=cache, progress=False)
        t = time.perf_counter()
        cached = fresh.encode(texts)
        cached_s = time.perf_counter() - t
        if fresh.last_stats["encoded"] != 0 or not torch.allclose(cached, mine, atol=1e-6):
            raise SystemExit("cached re-run did not return the cached vectors")
    result = {
        "items": len(texts),
        "graphrec_items_per_s": round(len(texts) / ours_s, 1),
        "st_items_per_s": round(len(texts) / st_s, 1),
        "ratio": round(st_s / ours_s, 3),
        "min_cosine": round(float(cos.min()), 6),
        "cached_seconds": round(cached_s, 3),
    }
    amp = " (bf16 weights)" if device.type == "cuda" else ""
    print(f"graphrec TextEncoder{amp}: {ours_s:7.2f} s  {result['graphrec_items_per_s']:>9,.1f} items/s"
          f"  (tokenizing {ours.last_stats.get('tokenize_seconds', 0):.2f} s)")
    print(f"sentence-transformers:      {st_s:7.2f} s  {result['st_items_per_s']:>9,.1f} items/s")
    print(f"ratio graphrec/ST (throughput): {result['ratio']:.2f}x   (goal on CPU: >= 1.2)")
    print(f"min cosine over all items: {result['min_cosine']:.6f}   (goal: > 0.999)")
    print(f"cached re-run (fresh encoder, model never loaded): {cached_s:.3f} s   (goal: < 2 s)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
