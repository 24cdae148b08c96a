"""Embedding models behind one protocol."""

from ragline.embed.base import BatchEmbedder, Embedder
from ragline.embed.factory import DEFAULT_MODEL, create_embedder

__all__ = ["BatchEmbedder", "Embedder", "DEFAULT_MODEL", "create_embedder"]
