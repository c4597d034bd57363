"""The int8 variant of the local model: its own embedding model, close to the float one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.embedders.local import INT8_MODEL_ID
from rag.models import EmbeddingModel

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).parent / "beir_fixture"
#: The figures docs/rag.md states; measured 0.989 mean, 0.980 worst on these texts.
MEAN_COSINE, WORST_COSINE = 0.98, 0.95


def _fixture_texts() -> list[str]:
    lines = [
        *(FIXTURE / "corpus.jsonl").read_text().splitlines(),
        *(FIXTURE / "queries.jsonl").read_text().splitlines(),
    ]
    return [json.loads(line)["text"] for line in lines if line.strip()]


def test_int8_vectors_are_within_the_stated_cosine_of_the_float_models(local_model, tenant):
    int8 = EmbeddingModel.objects.create(tenant=tenant, name="MiniLM int8", model_id=INT8_MODEL_ID)
    texts = _fixture_texts()

    floats = np.asarray(local_model.batch_embed(texts))
    quantized = np.asarray(int8.batch_embed(texts))

    cosines = (floats * quantized).sum(axis=1)
    assert len(texts) == 42
    assert np.allclose(np.linalg.norm(quantized, axis=1), 1.0, atol=1e-3)
    assert cosines.mean() >= MEAN_COSINE
    assert cosines.min() >= WORST_COSINE
    assert not np.allclose(floats, quantized, atol=1e-4)  # it is another model, not the same
