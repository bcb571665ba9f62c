"""Text features: BERT embeddings of item (and user, attribute) texts, cached on disk."""

from graphrec.text.cache import EmbeddingCache
from graphrec.text.encoder import TextEncoder, default_model_path, mean_pool
from graphrec.text.templates import DEFAULT_ITEM_TEMPLATE, display_title, item_labels, item_texts

__all__ = ["DEFAULT_ITEM_TEMPLATE", "EmbeddingCache", "TextEncoder", "default_model_path", "display_title", "item_labels", "item_texts", "mean_pool"]
