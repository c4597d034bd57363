"""Contract tests for RAG plugins. Subclass, fill in the class attributes (and, where a plugin
needs state, override the fixtures), and pytest runs them (pytest-django is required).

.. code-block:: python

    class TestMyEmbedder(EmbedderContractTest):
        embedder_class = MyEmbedder
        model_id, dimensions = "my-model", 384
        normalized = True


    class TestMySource(SourceContractTest):
        adapter_class = MySource
        invalid_configs = [{}]

        @pytest.fixture
        def source(self, tenant):
            return KnowledgeSource.objects.create(
                tenant=tenant, name="Mine", type="mine", config={"folder": "a"}
            )

        @pytest.fixture
        def expected_ids(self):
            return {"a/one.md", "a/two.md"}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from automate_core import plugins
from rag.embeddings import Embedder, EmbeddingContext, embedder_class
from rag.errors import InvalidSourceConfig
from rag.models import KnowledgeSource
from rag.sources import SourceAdapter, adapter_class

TEXTS = (
    "Refunds take five business days.",
    "Paid leave is twenty-five days a year.",
    "The Lyon office is closed on Sundays.",
)
#: How far apart two computations of one vector may be (batched inference is not bit-exact).
TOLERANCE = 1e-4


def _close(a: list[float], b: list[float]) -> bool:
    if len(a) != len(b):
        return False
    return all(math.isclose(x, y, abs_tol=TOLERANCE) for x, y in zip(a, b, strict=True))


class EmbedderContractTest:
    """What :class:`~rag.embeddings.Embedder` promises the index: one vector per text, in
    order, of the model's dimensions, finite, the same for the same text; unit length when
    ``normalized``. Override ``context`` when the provider needs a tenant (a metered one)."""

    embedder_class: ClassVar[type[Embedder]]
    model_id: ClassVar[str]
    dimensions: ClassVar[int]
    config: ClassVar[Mapping[str, Any]] = {}
    #: ``(model_id, config)`` pairs the provider must refuse.
    invalid: ClassVar[list[tuple[str, Mapping[str, Any]]]] = []
    #: Whether vectors are L2-normalised (then cosine distance and inner product agree).
    normalized: ClassVar[bool] = False

    @pytest.fixture
    def embedder(self) -> Embedder:
        return self.embedder_class(
            model_id=self.model_id, dimensions=self.dimensions, config=self.config
        )

    @pytest.fixture
    def context(self) -> EmbeddingContext:
        return EmbeddingContext(trace_id="trace-contract")

    def test_is_installed_under_its_name(self) -> None:
        plugins.refresh()
        assert embedder_class(self.embedder_class.name) is self.embedder_class

    def test_the_model_and_config_have_no_problems(self) -> None:
        assert self.embedder_class.validate_config(self.model_id, self.config) == []

    def test_invalid_models_and_configs_are_reported(self) -> None:
        for model_id, config in self.invalid:
            problems = self.embedder_class.validate_config(model_id, config)
            assert problems and all(isinstance(p, str) and p for p in problems), config

    def test_one_finite_vector_per_text_of_the_model_dimensions(
        self, embedder: Embedder, context: EmbeddingContext
    ) -> None:
        vectors = embedder.embed_documents(list(TEXTS), context)

        assert len(vectors) == len(TEXTS)
        for vector in vectors:
            assert len(vector) == self.dimensions
            assert all(isinstance(x, float) and math.isfinite(x) for x in vector)

    def test_a_batch_keeps_the_order_of_its_texts(
        self, embedder: Embedder, context: EmbeddingContext
    ) -> None:
        batch = embedder.embed_documents(list(TEXTS), context)
        alone = [embedder.embed_documents([text], context)[0] for text in reversed(TEXTS)]

        assert all(_close(b, a) for b, a in zip(batch, reversed(alone), strict=True))

    def test_the_same_text_gets_the_same_vector(
        self, embedder: Embedder, context: EmbeddingContext
    ) -> None:
        first, again = embedder.embed_documents([TEXTS[0], TEXTS[0]], context)

        assert _close(first, again)
        assert _close(embedder.embed_query(TEXTS[0], context), first)

    def test_different_texts_get_different_vectors(
        self, embedder: Embedder, context: EmbeddingContext
    ) -> None:
        first, second = embedder.embed_documents(list(TEXTS[:2]), context)

        assert not _close(first, second)

    def test_vectors_are_unit_length_when_normalized(
        self, embedder: Embedder, context: EmbeddingContext
    ) -> None:
        if not self.normalized:
            pytest.skip("the provider does not promise normalized vectors")
        for vector in embedder.embed_documents(list(TEXTS), context):
            assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-3)


class SourceContractTest:
    """What :class:`~rag.sources.SourceAdapter` promises a sync: it is refused when its config
    is, it lists exactly what its config selects with stable, unique external ids, and a
    second sync with nothing changed stores nothing. Override ``source`` (a saved
    KnowledgeSource of the adapter's type, its items in place) and ``expected_ids``."""

    adapter_class: ClassVar[type[SourceAdapter]]
    invalid_configs: ClassVar[list[Mapping[str, Any]]] = []

    @pytest.fixture
    def source(self) -> KnowledgeSource:
        raise NotImplementedError("override the source fixture")

    @pytest.fixture
    def expected_ids(self) -> set[str]:
        """The external ids ``source``'s config selects."""
        raise NotImplementedError("override the expected_ids fixture")

    def listed_ids(self, source: KnowledgeSource) -> list[str]:
        return [entry.external_id for entry in self.adapter_class(source).list_items().items]

    def test_is_registered_under_its_type(self) -> None:
        plugins.refresh()
        assert adapter_class(self.adapter_class.type) is self.adapter_class

    def test_the_source_config_has_no_problems(self, source: KnowledgeSource) -> None:
        assert self.adapter_class.validate_config(source.config or {}) == []

    def test_invalid_configs_are_reported_and_refused(self, source: KnowledgeSource) -> None:
        for config in self.invalid_configs:
            problems = self.adapter_class.validate_config(config)
            assert problems and all(isinstance(p, str) and p for p in problems), config
            source.config = dict(config)
            with pytest.raises(InvalidSourceConfig):
                self.adapter_class(source)

    def test_lists_exactly_what_its_config_selects(
        self, source: KnowledgeSource, expected_ids: set[str]
    ) -> None:
        listed = self.listed_ids(source)

        assert all(isinstance(external_id, str) and external_id for external_id in listed)
        assert len(listed) == len(set(listed))
        assert set(listed) == expected_ids

    def test_external_ids_are_stable_across_listings(self, source: KnowledgeSource) -> None:
        assert self.listed_ids(source) == self.listed_ids(source)

    def test_a_second_sync_with_nothing_changed_stores_nothing(
        self, source: KnowledgeSource
    ) -> None:
        first = source.sync()

        again = source.sync()

        assert again.listed == first.listed
        assert (again.created, again.updated, again.failed) == (0, 0, 0)
