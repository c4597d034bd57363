"""Embedding providers for tests, registered through AUTOMATE_RAG["EMBEDDING_PROVIDERS"]."""

from __future__ import annotations

import hashlib
import math
import random
from typing import ClassVar

from rag.embeddings import Embedder

DIMENSIONS = 384


def hash_vector(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """A deterministic unit vector per text (unrelated texts are nearly orthogonal)."""
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    raw = [rng.gauss(0, 1) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw))
    return [x / norm for x in raw]


class CountingEmbedder(Embedder):
    """Hash vectors; records every batch it is asked for."""

    name = "counting"
    max_batch_size = 3
    calls: ClassVar[list[list[str]]] = []

    def embed_documents(self, texts, context):
        CountingEmbedder.calls.append(list(texts))
        return [hash_vector(t) for t in texts]


class WrongDimensionsEmbedder(Embedder):
    name = "wrong-dimensions"

    def embed_documents(self, texts, context):
        return [[1.0, 0.0, 0.0] for _ in texts]


class BrokenEmbedder(Embedder):
    name = "broken"

    def embed_documents(self, texts, context):
        raise ConnectionError("provider unreachable")


TEST_PROVIDERS = {
    "counting": "tests.rag.embedders.CountingEmbedder",
    "wrong-dimensions": "tests.rag.embedders.WrongDimensionsEmbedder",
    "broken": "tests.rag.embedders.BrokenEmbedder",
}
