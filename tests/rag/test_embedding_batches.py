"""Provider batches: grouped by text length, vectors handed back in the caller's order."""

from __future__ import annotations

from array import array

from rag.embeddings import EmbeddingContext, embed_batches

from .embedders import CountingEmbedder, hash_vector


def test_texts_of_several_batches_go_longest_first_and_come_back_in_order():
    texts = ["a", "ccc", "bb", "eeeee", "dddd", "ffffff", "g"]
    embedder = CountingEmbedder(model_id="hash", dimensions=384, config={})

    by_position: dict[int, list[float]] = {}
    for positions, vectors in embed_batches(
        embedder, texts, EmbeddingContext(), provider="counting", dimensions=384
    ):
        by_position.update(zip(positions, vectors, strict=True))

    assert CountingEmbedder.calls == [["ffffff", "eeeee", "dddd"], ["ccc", "bb", "a"], ["g"]]
    for position, text in enumerate(texts):
        assert by_position[position] == _float32(hash_vector(text))


def _float32(vector: list[float]) -> list[float]:
    """As the index stores it."""
    return array("f", vector).tolist()
