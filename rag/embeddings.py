"""Embedding providers and the cache in front of them.

A provider is a subclass of :class:`Embedder` registered in the entry-point group
``django_automate.embeddings`` (built in: ``local``, all-MiniLM-L6-v2 on the CPU), or named in
``AUTOMATE_RAG["EMBEDDING_PROVIDERS"]`` (``{"name": "dotted.path.Class"}``). An
:class:`~rag.models.EmbeddingModel` row picks one by name; tenant-editable rows can only name
installed or configured providers, never import arbitrary code.

:func:`embed_documents` is what indexing calls. It guarantees:

- unchanged text is never embedded twice: vectors are cached per embedding model by the
  SHA-256 of the text (:class:`~rag.models.EmbeddingCacheEntry`), and duplicates within one
  call are embedded once;
- providers receive batches of at most ``min(EMBEDDING_BATCH_SIZE, provider.max_batch_size)``;
- every vector has the model's dimensions and finite values, or :class:`EmbeddingError` is
  raised and nothing is cached;
- a provider's failure is an :class:`EmbeddingError`, unless it is already a domain error with
  its own code (the gateway's ``budget_exceeded``, ``llm_not_configured``...), which is kept.

A metered provider (the OpenAI-compatible one goes through the LLM gateway) gets the tenant and
trace id in :class:`EmbeddingContext` so it can charge budgets and key retries.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from threading import Lock
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from django.utils.module_loading import import_string

from automate_core import plugins
from automate_core.errors import AutomateError
from automate_core.tracing import current_trace_id
from rag.conf import rag_settings
from rag.errors import EmbeddingError

if TYPE_CHECKING:
    from rag.models import EmbeddingModel

PLUGIN_KIND = "embeddings"


@dataclass(frozen=True)
class EmbeddingContext:
    """Who the embedding is for: lets metered providers charge the right tenant."""

    tenant_id: Any = None
    trace_id: str | None = None
    purpose: str = "documents"  # or "query"


class Embedder:
    """Base class of embedding providers: turn texts into vectors, one per text, in order.

    ``model_id``, ``dimensions`` and ``config`` come from the EmbeddingModel row. Subclasses
    implement :meth:`embed_documents`; :meth:`embed_query` defaults to it (override for models
    that prefix queries differently from passages).
    """

    name: ClassVar[str] = ""
    #: The most texts one call may carry.
    max_batch_size: ClassVar[int] = 64
    #: Whether vectors depend on (and are paid by) the tenant: then one tenant's cached query
    #: vector is never handed to another.
    per_tenant: ClassVar[bool] = False

    def __init__(self, *, model_id: str, dimensions: int, config: Mapping[str, Any]) -> None:
        self.model_id = model_id
        self.dimensions = dimensions
        self.config = dict(config)

    @classmethod
    def validate_config(cls, model_id: str, config: Mapping[str, Any]) -> list[str]:
        """Problems with a model id or config, as messages (empty when fine)."""
        return []

    def embed_documents(self, texts: Sequence[str], context: EmbeddingContext) -> list[list[float]]:
        raise NotImplementedError

    def embed_query(self, text: str, context: EmbeddingContext) -> list[float]:
        return self.embed_documents([text], context)[0]


def embedder_class(provider: str) -> type[Embedder]:
    """The provider class named ``provider`` (settings registry first, then entry points)."""
    configured: Mapping[str, str] = rag_settings.EMBEDDING_PROVIDERS
    if provider in configured:
        cls = import_string(configured[provider])
    else:
        try:
            cls = plugins.load(PLUGIN_KIND, provider)
        except plugins.PluginNotFound as exc:
            raise EmbeddingError(str(exc), details={"provider": provider}) from exc
    if not (isinstance(cls, type) and issubclass(cls, Embedder)):
        raise EmbeddingError(f"Embedding provider {provider!r} is not an Embedder subclass.")
    return cls


def embedder_for(model: EmbeddingModel) -> Embedder:
    cls = embedder_class(model.provider)
    return cls(model_id=model.model_id, dimensions=model.dimensions, config=model.config or {})


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class EmbedStats:
    """What a call cost: texts sent to the provider, and texts answered from the cache."""

    embedded: int = 0
    cached: int = 0
    provider_calls: int = 0


def _checked(vectors: Any, expected: int, dimensions: int) -> list[list[float]]:
    """Validated vectors, rounded to float32 as pgvector stores them (cached or fresh, a text
    always gets the same numbers). One numpy pass, not a Python loop per number."""
    rows = vectors if isinstance(vectors, np.ndarray) else list(vectors)
    if len(rows) != expected:
        raise EmbeddingError(f"The provider returned {len(rows)} vectors for {expected} texts.")
    for row in rows:
        if len(row) != dimensions:
            raise EmbeddingError(
                f"The provider returned {len(row)}-dimension vectors; the model says {dimensions}."
            )
    try:
        matrix = np.asarray(rows, dtype=np.float32).reshape(expected, dimensions)
    except (TypeError, ValueError) as exc:
        raise EmbeddingError(f"The provider returned vectors that are not numbers: {exc}") from None
    if not np.isfinite(matrix).all():
        raise EmbeddingError("The provider returned a vector with NaN or infinite values.")
    result: list[list[float]] = matrix.tolist()
    return result


def embed_documents(
    model: EmbeddingModel, texts: Sequence[str], *, stats: EmbedStats | None = None
) -> list[list[float]]:
    """Vectors for ``texts``, in order, through the cache (see the module docstring)."""
    from rag.models import EmbeddingCacheEntry

    stats = stats if stats is not None else EmbedStats()
    hashes = [text_hash(t) for t in texts]
    by_hash: dict[str, list[float]] = {}
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), 1000):
        part = unique[start : start + 1000]
        for content_hash, vector in EmbeddingCacheEntry.objects.filter(
            embedding_model=model, content_hash__in=part
        ).values_list("content_hash", "embedding"):
            by_hash[content_hash] = array("f", vector).tolist()
    missing = [h for h in unique if h not in by_hash]
    stats.cached += len(unique) - len(missing)
    if missing:
        text_of = dict(zip(hashes, texts, strict=True))
        context = EmbeddingContext(tenant_id=model.tenant_id, trace_id=current_trace_id())
        batches = embed_batches(
            embedder_for(model),
            [text_of[h] for h in missing],
            context,
            provider=model.provider,
            dimensions=model.dimensions,
        )
        for positions, vectors in batches:
            stats.provider_calls += 1
            batch = [missing[i] for i in positions]
            EmbeddingCacheEntry.objects.bulk_create(
                [
                    EmbeddingCacheEntry(
                        tenant_id=model.tenant_id,
                        embedding_model=model,
                        content_hash=h,
                        embedding=v,
                    )
                    for h, v in zip(batch, vectors, strict=True)
                ],
                ignore_conflicts=True,
            )
            by_hash.update(zip(batch, vectors, strict=True))
        stats.embedded += len(missing)
    return [by_hash[h] for h in hashes]


def embed_batches(
    embedder: Embedder,
    texts: Sequence[str],
    context: EmbeddingContext,
    *,
    provider: str,
    dimensions: int,
) -> Iterator[tuple[list[int], list[list[float]]]]:
    """Checked vectors of ``texts`` straight from the provider (no cache), one provider call
    per batch: yields ``(positions, vectors)``, ``vectors[i]`` being that of
    ``texts[positions[i]]``. What indexing's cache misses go through (and bench_embeddings).

    Texts that need several batches are sent longest first, so each batch holds texts of about
    one length: a model pads a batch to its longest text, and mixed lengths waste most of the
    work on padding. One batch keeps the caller's order.
    """
    size = max(1, min(int(rag_settings.EMBEDDING_BATCH_SIZE), embedder.max_batch_size))
    order = list(range(len(texts)))
    if len(texts) > size:
        order.sort(key=lambda i: len(texts[i]), reverse=True)
    for start in range(0, len(order), size):
        positions = order[start : start + size]
        try:
            raw = embedder.embed_documents([texts[i] for i in positions], context)
        except AutomateError:
            raise
        except Exception as exc:
            raise EmbeddingError(
                f"Embedding provider {provider!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        yield positions, _checked(raw, len(positions), dimensions)


_QUERY_CACHE_SIZE = 2048
_query_cache: OrderedDict[tuple[str, str], list[float]] = OrderedDict()
_query_lock = Lock()


def embed_query(model: EmbeddingModel, text: str) -> list[float]:
    """The query vector; repeated queries are answered from a small in-process LRU (queries are
    user text, so they are not written to the database cache)."""
    key = (_model_key(model), text)
    with _query_lock:
        if key in _query_cache:
            _query_cache.move_to_end(key)
            return _query_cache[key]
    embedder = embedder_for(model)
    context = EmbeddingContext(
        tenant_id=model.tenant_id, trace_id=current_trace_id(), purpose="query"
    )
    try:
        raw = [embedder.embed_query(text, context)]
    except AutomateError:
        raise
    except Exception as exc:
        raise EmbeddingError(
            f"Embedding provider {model.provider!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    (vector,) = _checked(raw, 1, model.dimensions)
    with _query_lock:
        _query_cache[key] = vector
        while len(_query_cache) > _QUERY_CACHE_SIZE:
            _query_cache.popitem(last=False)
    return vector


def _model_key(model: EmbeddingModel) -> str:
    # A per-tenant provider (the gateway's) resolves model_id among the tenant's own LLM models
    # and bills the tenant, so its cache entries are the tenant's; a local model's are shared.
    tenant = model.tenant_id if embedder_class(model.provider).per_tenant else None
    return json.dumps(
        [tenant, model.provider, model.model_id, model.config], sort_keys=True, default=str
    )
