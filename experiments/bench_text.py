"""Text encoding speed: graphrec's TextEncoder against sentence-transformers at equal precision.

Encodes the item texts of ml-latest-small (9,742 movies) with
``graphrec.text.TextEncoder`` and with
``sentence_transformers.SentenceTransformer(<same folder>).encode``: same
model, batch size, device, thread count and weight dtype (``--dtype`` is
applied to both sides; each row prints the dtype each side's weights really
have). Without ``--dtype`` it runs every precision the device supports: fp32,
then bf16. For each row it checks that both give the same vectors, then times
a cached re-run (a fresh encoder object reading the on-disk cache, which must
hold exactly that dtype's vectors: the cache of one dtype is never served to
another).

Everything printed is also written to ``experiments/results/bench_text_<device>.txt``
(``..._limit<N>.txt`` with ``--limit``; ``--out`` to choose), atomically, at the end.

Needs: pip install sentence-transformers (the ``bench`` extra).
Usage: python experiments/bench_text.py [--device auto|cpu|cuda] [--dtype float32|bfloat16] [--threads 2]
                                        [--batch-size 64] [--data-dir DIR] [--limit N] [--out FILE]
Last line: {"device": ..., "threads": ..., "batch_size": ..., "items": ...,
            "rows": [{"graphrec_dtype": ..., "st_dtype": ..., "graphrec_items_per_s": ..., "st_items_per_s": ...,
                      "ratio": ..., "ratio_cpu_time": ..., "min_cosine": ..., "min_cosine_vs_fp32": ..., "cached_seconds": ...}, ...]}
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from report import Report  # experiments/report.py: scripts run from this folder

from graphrec.data import load_movielens
from graphrec.runtime import resolve_device
from graphrec.text import EmbeddingCache, TextEncoder, item_texts
from graphrec.text.cache import text_key

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}
RESULTS = Path(__file__).resolve().parent / "results"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def short(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` → ``"bf16"``."""
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))


def cpu_label() -> str:
    """CPU model and the bf16 instructions it has, from /proc/cpuinfo where there is one."""
    name, flags = platform.processor() or "CPU", set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                if name != "CPU" and flags:
                    break
    except OSError:
        pass
    isa = "AMX-BF16" if "amx_bf16" in flags else "AVX-512 BF16" if "avx512_bf16" in flags else \
        "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else ""
    return f"{os.cpu_count()}-core CPU ({name}{', ' + isa if isa else ''})"


def load_average() -> str:
    """The machine's 1/5/15-minute load averages (other jobs slow a timing down), or "n/a"."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def supported_dtypes(device: torch.device) -> list[str]:
    """fp32 always; bf16 on CPU (torch runs it everywhere, fast where the CPU has bf16 instructions) and on CUDA where supported."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return ["float32"]
    return ["float32", "bfloat16"]


def run_one(texts: list[str], dtype_name: str, a: argparse.Namespace, device: torch.device, cache_dir: Path,
            say: Report) -> tuple[dict[str, Any], torch.Tensor]:
    """Time both encoders in ``dtype_name``; returns the row and graphrec's vectors."""
    from sentence_transformers import SentenceTransformer

    dtype = DTYPES[dtype_name]
    ours = TextEncoder(a.model, batch_size=a.batch_size, device=device, cache_dir=None, progress=False,
                       dtype=dtype_name)  # type: ignore[arg-type]
    ours._load()
    st = SentenceTransformer(str(ours.model_path), device=str(device), model_kwargs={"torch_dtype": dtype})
    st.to(dtype)
    ours_dtype = next(ours._model.parameters()).dtype
    st_dtype = next(st.parameters()).dtype
    if ours_dtype != dtype or st_dtype != dtype:
        raise SystemExit(f"bench_text: asked for {dtype}, got graphrec {ours_dtype} and sentence-transformers {st_dtype}")
    say(f"--- {device.type}, graphrec {short(ours_dtype)}, sentence-transformers {short(st_dtype)} ---")

    # Warm-up both (kernels, allocator). On CUDA over every text, so that neither
    # pays one-off per-shape set-up inside its timed run; on CPU a few batches do.
    warm = texts if device.type == "cuda" else texts[:256]
    ours.encode(warm)
    st.encode(warm, batch_size=a.batch_size)

    # Wall time counts; process CPU time (all threads) is printed beside it, as
    # other jobs on a shared machine stretch wall time more than CPU time.
    ours_s, st_s, ours_cpu, st_cpu = (float("inf"),) * 4
    for _ in range(a.repeats):
        ours_threads = torch.get_num_threads()
        sync(device)
        t, c = time.perf_counter(), time.process_time()
        mine = ours.encode(texts)
        sync(device)
        ours_s, ours_cpu = min(ours_s, time.perf_counter() - t), min(ours_cpu, time.process_time() - c)

        st_threads = torch.get_num_threads()
        t, c = time.perf_counter(), time.process_time()
        theirs = st.encode(texts, batch_size=a.batch_size, convert_to_tensor=True, normalize_embeddings=True)
        sync(device)
        st_s, st_cpu = min(st_s, time.perf_counter() - t), min(st_cpu, time.process_time() - c)
    cos = torch.nn.functional.cosine_similarity(mine.float(), theirs.float().cpu(), dim=1)

    # Cached re-run: store this dtype's vectors under its cache key (the same
    # file encode() would write), then time a fresh encoder reading them.
    cache = EmbeddingCache(cache_dir / f"{ours.config_key()}.npz")
    cache.add([text_key(t) for t in texts], mine.numpy())
    cache.save()
    fresh = TextEncoder(a.model, batch_size=a.batch_size, device=device, cache_dir=cache_dir, progress=False,
                        dtype=dtype_name)  # type: ignore[arg-type]
    t = time.perf_counter()
    cached = fresh.encode(texts)
    cached_s = time.perf_counter() - t
    if fresh.last_stats["encoded"] != 0 or fresh._model is not None or not torch.equal(cached, mine):
        raise SystemExit(f"bench_text: the cached re-run in {dtype_name} did not return exactly its own cached vectors")

    row: dict[str, Any] = {
        "device": device.type,
        "graphrec_dtype": short(ours_dtype),
        "st_dtype": short(st_dtype),
        "graphrec_threads": ours_threads,
        "st_threads": st_threads,
        "graphrec_items_per_s": round(len(texts) / ours_s, 1),
        "st_items_per_s": round(len(texts) / st_s, 1),
        "ratio": round(st_s / ours_s, 3),
        "graphrec_cpu_seconds": round(ours_cpu, 2),
        "st_cpu_seconds": round(st_cpu, 2),
        "ratio_cpu_time": round(st_cpu / ours_cpu, 3),
        "min_cosine": round(float(cos.min()), 6),
        "cached_seconds": round(cached_s, 3),
    }
    say(f"graphrec TextEncoder  ({short(ours_dtype)}, {ours_threads} threads): {ours_s:7.2f} s"
        f"  {row['graphrec_items_per_s']:>9,.1f} items/s  (CPU {ours_cpu:.1f} s; tokenizing "
        f"{ours.last_stats.get('tokenize_seconds', 0):.2f} s)")
    say(f"sentence-transformers ({short(st_dtype)}, {st_threads} threads): {st_s:7.2f} s  {row['st_items_per_s']:>9,.1f} items/s"
        f"  (CPU {st_cpu:.1f} s)")
    say(f"ratio graphrec/ST (throughput): {row['ratio']:.2f}x   (goal on CPU: >= 1.2); by CPU time {row['ratio_cpu_time']:.2f}x")
    say(f"min cosine graphrec vs ST over all items: {row['min_cosine']:.6f}   (goal: > 0.999)")
    say(f"cached re-run (fresh encoder, model never loaded): {cached_s:.3f} s   (goal: < 2 s)")
    del ours, st, fresh
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row, mine


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", choices=sorted(DTYPES), default=None,
                   help="weight dtype of BOTH encoders (default: every one the device supports: float32, bfloat16)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (and tokenizer threads) of both sides")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=1, help="timed runs per side; the fastest counts")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--model", default="default", help="'default' or a model folder")
    p.add_argument("--limit", type=int, default=None, help="only the first N texts (quick runs)")
    p.add_argument("--out", type=Path, default=None,
                   help="where to write the printed output (default experiments/results/bench_text_<device>.txt)")
    a = p.parse_args()
    if a.threads < 1 or a.repeats < 1 or a.batch_size < 1:
        p.error(f"--threads, --repeats and --batch-size must be >= 1, got {a.threads}, {a.repeats}, {a.batch_size}")
    torch.set_num_threads(a.threads)
    os.environ["RAYON_NUM_THREADS"] = str(a.threads)  # the fast tokenizers' pool, read at its first use
    import sentence_transformers
    import transformers

    device = resolve_device(a.device)
    dtypes = [a.dtype] if a.dtype else supported_dtypes(device)
    if a.dtype == "bfloat16" and "bfloat16" not in supported_dtypes(device):
        raise SystemExit(f"bench_text: --dtype bfloat16 is not supported on {device}")
    out = a.out or RESULTS / (f"bench_text_{device.type}" + (f"_limit{a.limit}" if a.limit else "") + ".txt")
    texts = item_texts(load_movielens("ml-latest-small", a.data_dir, download=False))[: a.limit]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_label()

    say = Report()
    say(f"bench_text.py {' '.join(sys.argv[1:])}".rstrip())
    say(f"{datetime.date.today().isoformat()}, {where}; torch {torch.__version__}, transformers {transformers.__version__}, "
        f"sentence-transformers {sentence_transformers.__version__}")
    say(f"{len(texts):,} texts, batch size {a.batch_size}, device {device}, {torch.get_num_threads()} torch threads "
        f"per side, dtypes {', '.join(dtypes)} (the same on both sides)")
    say(f"load average at start (1/5/15 min): {load_average()}")

    rows: list[dict[str, Any]] = []
    vectors: dict[str, torch.Tensor] = {}
    with tempfile.TemporaryDirectory() as cache:
        for name in dtypes:
            row, vectors[name] = run_one(texts, name, a, device, Path(cache), say)
            rows.append(row)
        if len(list(Path(cache).glob("*.npz"))) != len(dtypes):
            raise SystemExit("bench_text: expected one cache file per dtype")
    for name, row in zip(dtypes, rows, strict=True):
        if "float32" in vectors and name != "float32":
            cos = torch.nn.functional.cosine_similarity(vectors[name], vectors["float32"], dim=1)
            row["min_cosine_vs_fp32"] = round(float(cos.min()), 6)
        else:
            row["min_cosine_vs_fp32"] = None

    say(f"load average at end (1/5/15 min): {load_average()}")
    say()
    say("| device | threads (graphrec / ST) | batch | graphrec dtype | ST dtype | graphrec items/s | ST items/s | ratio "
        "| ratio by CPU time | min cosine vs ST | min cosine vs own fp32 | cached re-run |")
    say("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        vs32 = "" if row["min_cosine_vs_fp32"] is None else f"{row['min_cosine_vs_fp32']:.6f}"
        say(f"| {where}, {datetime.date.today().isoformat()} | {row['graphrec_threads']} / {row['st_threads']} "
            f"| {a.batch_size} | {row['graphrec_dtype']} | {row['st_dtype']} | {row['graphrec_items_per_s']:,.1f} "
            f"| {row['st_items_per_s']:,.1f} | {row['ratio']:.2f} | {row['ratio_cpu_time']:.2f} | {row['min_cosine']:.6f} | {vs32} "
            f"| {row['cached_seconds']:.3f} s |")
    say(json.dumps({"device": str(device), "threads": a.threads, "batch_size": a.batch_size, "items": len(texts),
                    "rows": rows}))
    say.save(out)
    out.chmod(0o644)  # the atomic write leaves a private temporary file's mode
    print(f"(written to {out})", file=sys.stderr)


if __name__ == "__main__":
    main()
