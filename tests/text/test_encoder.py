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
