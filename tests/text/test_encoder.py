import warnings

import numpy as np
import pytest
import torch

from graphrec.errors import ConfigError
from graphrec.text import TextEncoder, default_model_path, item_texts
from graphrec.text.cache import CacheCorruptWarning, EmbeddingCache, text_key
from graphrec.text.templates import render

TEXTS = ["Star Wars (1977). Genres: Action, Sci-Fi", "Fargo (1996)", "A much longer text about a quiet film with many words in it."]


@pytest.fixture(scope="module")
def reference():
    """Direct transformers forward pass with mean pooling, no graphrec code involved."""
    from transformers import AutoModel, AutoTokenizer

    path = str(default_model_path())
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    batch = tok(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    mean = (hidden * mask).sum(1) / mask.sum(1)
    return mean, hidden[:, 0]


def test_mean_pooling_equals_transformers(reference, tmp_path):
    enc = TextEncoder(normalize=False, cache_dir=None, device="cpu", batch_size=2)
    out = enc.encode(TEXTS)
    assert out.shape == (3, 384) and out.dtype == torch.float32
    torch.testing.assert_close(out, reference[0], atol=1e-5, rtol=0)


def test_cls_and_normalize(reference):
    enc = TextEncoder(pooling="cls", normalize=True, cache_dir=None, device="cpu")
    out = enc.encode(TEXTS)
    torch.testing.assert_close(out, torch.nn.functional.normalize(reference[1], dim=1), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))


def test_cache_hit_miss_and_invalidation(tmp_path):
    enc = TextEncoder(cache_dir=tmp_path, device="cpu")
    first = enc.encode(TEXTS)
    assert enc.last_stats["encoded"] == 3 and enc.last_stats["hits"] == 0
    again = TextEncoder(cache_dir=tmp_path, device="cpu")
    second = again.encode(TEXTS)
    assert again.last_stats["hits"] == 3 and again.last_stats["encoded"] == 0
    assert again._model is None  # a fully cached run never loads the model
    torch.testing.assert_close(first, second, atol=0, rtol=0)
    changed = [TEXTS[0], "Fargo (1996). Genres: Crime", TEXTS[2]]
    third = again.encode(changed)
    assert again.last_stats["encoded"] == 1 and again.last_stats["hits"] == 2
    torch.testing.assert_close(third[0], first[0], atol=0, rtol=0)
    # another pooling is another cache entry
    cls = TextEncoder(cache_dir=tmp_path, device="cpu", pooling="cls")
    cls.encode(TEXTS[:1])
    assert cls.last_stats["encoded"] == 1
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_truncated_cache_is_rebuilt(tmp_path):
    enc = TextEncoder(cache_dir=tmp_path, device="cpu")
    ref = enc.encode(TEXTS)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])
    fresh = TextEncoder(cache_dir=tmp_path, device="cpu")
    with pytest.warns(CacheCorruptWarning, match="unreadable"):
        out = fresh.encode(TEXTS)
    assert fresh.last_stats["encoded"] == 3
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(EmbeddingCache(path)) == 3  # rebuilt file reads cleanly


def test_cache_checksum_detects_flipped_bytes(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.npz")
    cache.add([text_key("a"), text_key("b")], np.eye(2, 4, dtype=np.float32))
    cache.save()
    with np.load(tmp_path / "c.npz") as f:
        keys, vectors, checksum = f["keys"], f["vectors"].copy(), f["checksum"]
    vectors[0, 0] = 7.0
    with open(tmp_path / "c.npz", "wb") as fh:
        np.savez(fh, keys=keys, vectors=vectors, checksum=checksum)
    with pytest.warns(CacheCorruptWarning, match="checksum"):
        assert len(EmbeddingCache(tmp_path / "c.npz")) == 0


def test_bad_options():
    with pytest.raises(ConfigError, match="pooling"):
        TextEncoder(pooling="max")  # type: ignore[arg-type]


def test_template_skips_missing_fields(ml100k):
    assert render("{title}. Genres: {genres}. Tags: {tags}", {"title": "Heat", "genres": ["Crime"], "tags": []}) == "Heat. Genres: Crime"
    assert render("{title} ({year})", {"title": "Heat", "year": None}) == ""
    texts = item_texts(ml100k)
    assert texts[49] == "Star Wars (1977). Genres: Action, Adventure, Romance, Sci-Fi, War"
    with pytest.raises(ConfigError, match="unknown field"):
        item_texts(ml100k, "{title}. {plot}")


def test_max_length_truncates():
    long = "word " * 400
    short = TextEncoder(cache_dir=None, device="cpu", max_length=8, normalize=False)
    from transformers import AutoModel, AutoTokenizer

    path = str(default_model_path())
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    batch = tok([long], truncation=True, max_length=8, return_tensors="pt")
    assert batch["input_ids"].shape[1] == 8
    with torch.no_grad():
        ref = model(**batch).last_hidden_state.mean(1)
    torch.testing.assert_close(short.encode([long]), ref, atol=1e-5, rtol=0)


def test_model_given_as_folder_path(tmp_path):
    by_path = TextEncoder(str(default_model_path()), cache_dir=tmp_path, device="cpu")
    default = TextEncoder(cache_dir=None, device="cpu")
    torch.testing.assert_close(by_path.encode(TEXTS), default.encode(TEXTS), atol=0, rtol=0)
    assert by_path.identity.startswith("model@")


def test_compute_dtype_resolves_without_loading_the_model(monkeypatch):
    cpu = TextEncoder(cache_dir=None, device="cpu")
    assert cpu.compute_dtype == torch.float32  # "auto" on CPU: fp32, even with half=True
    assert TextEncoder(cache_dir=None, device="cpu", dtype="bfloat16").compute_dtype == torch.bfloat16
    # CUDA is never touched: only the capability query decides between bf16 and fp16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert TextEncoder(cache_dir=None, device="cuda").compute_dtype == torch.bfloat16
    assert TextEncoder(cache_dir=None, device="cuda", half=False).compute_dtype == torch.float32
    assert TextEncoder(cache_dir=None, device="cuda", dtype="float32").compute_dtype == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert TextEncoder(cache_dir=None, device="cuda").compute_dtype == torch.float16
    assert cpu._model is None


def test_config_key_includes_compute_dtype(monkeypatch):
    fp32 = TextEncoder(cache_dir=None, device="cpu")
    assert fp32.config_key() == TextEncoder(cache_dir=None, device="cpu", dtype="float32").config_key()
    bf16 = TextEncoder(cache_dir=None, device="cpu", dtype="bfloat16")
    fp16 = TextEncoder(cache_dir=None, device="cpu", dtype="float16")
    assert len({fp32.config_key(), bf16.config_key(), fp16.config_key()}) == 3
    # a default (half=True) CUDA encoder computes in bf16: its key is the bf16 key, never the fp32 CPU one
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    cuda = TextEncoder(cache_dir=None, device="cuda")
    assert cuda.config_key() == bf16.config_key() != fp32.config_key()
    assert TextEncoder(cache_dir=None, device="cuda", half=False).config_key() == fp32.config_key()
    assert fp32._model is None and bf16._model is None and cuda._model is None  # keys need no model


def test_vectors_cached_in_one_dtype_are_not_served_to_another(tmp_path):
    fp32 = TextEncoder(cache_dir=tmp_path, device="cpu", dtype="float32")
    ref = fp32.encode(TEXTS)
    bf16 = TextEncoder(cache_dir=tmp_path, device="cpu", dtype="bfloat16")
    half = bf16.encode(TEXTS)
    assert bf16.last_stats["encoded"] == 3 and bf16.last_stats["hits"] == 0
    assert next(bf16._model.parameters()).dtype == torch.bfloat16
    assert half.dtype == torch.float32 and not torch.equal(half, ref)  # really computed in bf16
    assert torch.nn.functional.cosine_similarity(half, ref).min() > 0.99
    assert len(list(tmp_path.glob("*.npz"))) == 2
    # each dtype reads back exactly its own vectors, without loading the model
    for dtype, expected in (("float32", ref), ("bfloat16", half)):
        again = TextEncoder(cache_dir=tmp_path, device="cpu", dtype=dtype)  # type: ignore[arg-type]
        torch.testing.assert_close(again.encode(TEXTS), expected, atol=0, rtol=0)
        assert again.last_stats["hits"] == 3 and again._model is None


def test_bad_dtype_options():
    with pytest.raises(ConfigError, match="dtype must be"):
        TextEncoder(dtype="fp32")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="half=False contradicts dtype='bfloat16'"):
        TextEncoder(half=False, dtype="bfloat16")
