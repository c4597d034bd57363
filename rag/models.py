"""Knowledge sources, their documents, chunks in versioned indexes, and the endpoints over them.

Every row belongs to one tenant. A :class:`RAGEndpoint` serves its ``live_version``; a re-index
builds a new :class:`IndexVersion` beside it and switches in one transaction. Chunks of every
version live in one table with their embedding (``vector(384)``) and full-text vector
(``tsvector``) side by side; each version has its own partial HNSW index (see
:mod:`rag.indexing`), so a query only ever walks the graph of its own version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import models
from pgvector.django import VectorField

from automate_core.base import (
    MetadataModel,
    SluggedModel,
    StatusModel,
    TenantScopedModel,
    TimeStampedModel,
    UUIDModel,
)
from rag.conf import STORED_DIMENSIONS, rag_settings

if TYPE_CHECKING:
    from rag.embeddings import Embedder
    from rag.search import QueryResult
    from rag.sync import SyncReport


class EmbeddingModel(UUIDModel, TimeStampedModel, TenantScopedModel, SluggedModel):
    """A provider and model that turn text into vectors (``django_automate.embeddings``)."""

    provider = models.CharField(
        max_length=200,
        default="local",
        help_text="Entry point name in the django_automate.embeddings group (or a dotted path).",
    )
    model_id = models.CharField(max_length=200, default="all-MiniLM-L6-v2")
    dimensions = models.PositiveIntegerField(default=STORED_DIMENSIONS)
    config = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="rag_embeddingmodel_slug")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider}:{self.model_id})"

    def clean(self) -> None:
        from rag.embeddings import embedder_class
        from rag.errors import EmbeddingError

        errors: dict[str, str] = {}
        if self.dimensions != STORED_DIMENSIONS:
            errors["dimensions"] = f"The index stores {STORED_DIMENSIONS}-dimension vectors."
        try:
            problems = embedder_class(self.provider).validate_config(
                self.model_id, self.config or {}
            )
        except EmbeddingError as exc:
            errors["provider"] = exc.message
        else:
            if problems:
                errors["config"] = "; ".join(problems)
        if errors:
            raise ValidationError(errors)

    def embedder(self) -> Embedder:
        from rag.embeddings import embedder_for

        return embedder_for(self)

    def embed(self, text: str) -> list[float]:
        """One query vector (not cached: queries are user text)."""
        from rag.embeddings import embed_query

        return embed_query(self, text)

    def batch_embed(self, texts: list[str]) -> list[list[float]]:
        """Vectors for ``texts`` in order, in provider-sized batches; cached by content hash."""
        from rag.embeddings import embed_documents

        return embed_documents(self, texts)


class EmbeddingCacheEntry(UUIDModel, TenantScopedModel):
    """A vector already computed for a text (by SHA-256 of the text) with one embedding model,
    so unchanged text is never sent to a provider twice."""

    embedding_model = models.ForeignKey(EmbeddingModel, on_delete=models.CASCADE, related_name="+")
    content_hash = models.CharField(max_length=64)
    embedding = VectorField(dimensions=STORED_DIMENSIONS)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "embedding cache entries"
        constraints = [
            models.UniqueConstraint(
                fields=["embedding_model", "content_hash"], name="rag_embedding_cache_key"
            )
        ]

    def __str__(self) -> str:
        return self.content_hash[:12]


class KnowledgeSource(UUIDModel, TimeStampedModel, TenantScopedModel, SluggedModel, MetadataModel):
    """Where documents come from. ``type`` names a plugin of ``django_automate.rag.sources``
    (built in: upload, api, url, sitemap, model); ``metadata`` is added to every chunk."""

    class SyncStatus(models.TextChoices):
        IDLE = "idle"
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    type = models.CharField(max_length=100, default="upload")
    config = models.JSONField(default=dict, blank=True)
    credentials_ref = models.CharField(
        max_length=200,
        blank=True,
        help_text="Name of a secret (SecretRef) sent as the Authorization header when fetching.",
    )
    sync_status = models.CharField(
        max_length=16, choices=SyncStatus.choices, default=SyncStatus.IDLE, db_index=True
    )
    # {"phase": "fetch"|"index", "total": n, "done": n, "failed": n}: written as a sync runs.
    sync_progress = models.JSONField(default=dict, blank=True, editable=False)
    last_synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="rag_source_slug")]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"

    def clean(self) -> None:
        from rag.errors import InvalidSourceConfig
        from rag.sources import adapter_class

        try:
            problems = adapter_class(self.type).validate_config(self.config or {})
        except InvalidSourceConfig as exc:
            raise ValidationError({"type": exc.message}) from exc
        if problems:
            raise ValidationError({"config": "; ".join(problems)})

    def sync(self, **options: Any) -> SyncReport:
        """Fetch, parse and index now, in this process (see :func:`rag.sync.sync_source`)."""
        from rag.sync import sync_source

        return sync_source(self, **options)

    def get_documents(self) -> models.QuerySet[Document]:
        return Document.objects.for_tenant(self.tenant_id).filter(source=self)


class Document(UUIDModel, TimeStampedModel, TenantScopedModel, MetadataModel):
    """One item of a source (a file, a page, a model row), parsed to text.

    ``content_hash`` covers what the document was made from (bytes, title, metadata): a sync
    that finds the same hash does nothing. A document that fails to parse is kept with
    ``status=failed`` and the reason in ``error``; it is never silently dropped.
    """

    class Status(models.TextChoices):
        OK = "ok"
        FAILED = "failed"

    source = models.ForeignKey(KnowledgeSource, on_delete=models.CASCADE, related_name="documents")
    external_id = models.CharField(max_length=1000, help_text="URL, file name, row id, ...")
    title = models.CharField(max_length=500, blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    # The uploaded or pushed bytes, kept so a document can be parsed again.
    raw = models.BinaryField(null=True, blank=True, editable=False)
    text = models.TextField(blank=True, editable=False)
    # Heading-aware blocks from the parser: [{"kind", "text", "level", "page"}].
    blocks = models.JSONField(default=list, blank=True, editable=False)
    content_hash = models.CharField(max_length=64, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OK)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["source_id", "external_id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="rag_document_external")
        ]

    def __str__(self) -> str:
        return self.title or self.external_id


class RAGEndpoint(UUIDModel, TimeStampedModel, TenantScopedModel, SluggedModel):
    """A named, queryable index over some sources: ``POST /api/v1/rag/<slug>/query``.

    ``retrieval_config`` tunes the query (see :class:`rag.search.RetrievalConfig`);
    ``access_policy`` may force filters on every query (``{"forced_filters": {...}}``).
    API keys reach it with the scope ``rag:<slug>``.
    """

    description = models.TextField(blank=True)
    sources = models.ManyToManyField(KnowledgeSource, related_name="endpoints", blank=True)
    embedding_model = models.ForeignKey(
        EmbeddingModel, on_delete=models.PROTECT, related_name="endpoints"
    )
    live_version = models.ForeignKey(
        "IndexVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    retrieval_config = models.JSONField(default=dict, blank=True)
    access_policy = models.JSONField(default=dict, blank=True)
    chunk_tokens = models.PositiveIntegerField(default=0, help_text="0: the AUTOMATE_RAG default.")
    chunk_overlap = models.PositiveIntegerField(default=0, help_text="0: the AUTOMATE_RAG default.")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "RAG endpoint"
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="rag_endpoint_slug")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from rag.filters import parse_filters
        from rag.search import RetrievalConfig

        errors: dict[str, str] = {}
        try:
            RetrievalConfig.from_json(self.retrieval_config)
        except Exception as exc:
            errors["retrieval_config"] = str(exc)
        policy = self.access_policy or {}
        try:
            if not isinstance(policy, dict) or set(policy) - {"forced_filters"}:
                raise ValueError('expected {"forced_filters": {...}}')
            parse_filters(policy.get("forced_filters") or {})
        except Exception as exc:
            errors["access_policy"] = str(exc)
        if errors:
            raise ValidationError(errors)

    @property
    def chunking(self) -> tuple[int, int]:
        """(tokens per chunk, overlap) this endpoint chunks with."""
        tokens = self.chunk_tokens or int(rag_settings.CHUNK_TOKENS)
        overlap = self.chunk_overlap or int(rag_settings.CHUNK_OVERLAP)
        return tokens, min(overlap, tokens // 2)

    def query(
        self, text: str, top_k: int | None = None, filters: dict[str, Any] | None = None
    ) -> QueryResult:
        """Hybrid search of the live version, with the access policy's filters forced."""
        from rag.services import query

        return query(self, text, top_k=top_k, filters=filters)

    def health_check(self) -> dict[str, Any]:
        """Whether the endpoint can answer, and why not: live version, chunk count, sources."""
        from rag.services import health_check

        return health_check(self)


class IndexVersion(UUIDModel, TimeStampedModel, TenantScopedModel, StatusModel):
    """One build of an endpoint's index. Immutable once live, except that incremental syncs keep
    the live version current. Only ``building -> live`` publishes a version, and it is a
    compare-and-set: a cancelled build can never go live."""

    INITIAL_STATUS = "building"
    TRANSITIONS: ClassVar[dict[str, set[str]]] = {
        "building": {"live", "failed", "cancelled"},
        "live": {"retired"},
        "retired": {"live"},
        "failed": set(),
        "cancelled": set(),
    }
    ACTIVE_STATUSES: ClassVar[set[str]] = {"building", "live"}

    endpoint = models.ForeignKey(RAGEndpoint, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    embedding_model = models.ForeignKey(EmbeddingModel, on_delete=models.PROTECT, related_name="+")
    chunk_tokens = models.PositiveIntegerField()
    chunk_overlap = models.PositiveIntegerField()
    # {"documents", "chunks", "embedded", "cached", "failed_documents"}
    stats = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    built_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    # True once the version's own HNSW index exists.
    has_vector_index = models.BooleanField(default=False)

    class Meta:
        ordering = ["endpoint_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "number"], name="rag_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} v{self.number} ({self.status})"

    @property
    def vector_index_name(self) -> str:
        """Name of this version's partial HNSW index."""
        return f"rag_chunk_hnsw_{self.pk.hex}"


class Chunk(UUIDModel, TenantScopedModel):
    """A piece of a document in one index version, with its embedding (its BM25 postings are
    :class:`KeywordPosting` rows).

    ``metadata`` holds the document's and source's metadata plus ``source``, ``document_id``,
    ``external_id``, ``headings`` and ``page``: everything a query filter can name.
    """

    # Indexed by the (index_version, document) index below.
    index_version = models.ForeignKey(
        IndexVersion, on_delete=models.CASCADE, related_name="chunks", db_index=False
    )
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    title = models.CharField(max_length=1000, blank=True)
    text = models.TextField()
    token_count = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)
    document_hash = models.CharField(max_length=64)
    metadata = models.JSONField(default=dict, blank=True)
    embedding = VectorField(dimensions=STORED_DIMENSIONS)

    class Meta:
        # By columns, not relations: no joins to order a million chunks.
        ordering = ["document_id", "position"]
        indexes = [
            models.Index(fields=["index_version", "document"], name="rag_chunk_version_doc"),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.position}"


class KeywordIndex(models.Model):
    """The BM25 statistics of one index version: its language, k1 and b, and N and the total
    length the average chunk length (avgdl) comes from.

    ``chunks`` and ``total_length`` are kept by the database (statement triggers on
    :class:`KeywordPosting`), so every path that adds or deletes chunks keeps them right.
    ``numbered`` counts the chunk numbers handed out (:class:`KeywordDocument`).
    """

    index_version = models.OneToOneField(
        IndexVersion, on_delete=models.CASCADE, primary_key=True, related_name="keyword_index"
    )
    #: A Postgres text search configuration (``regconfig``): stemming and stop words.
    language = models.CharField(max_length=63)
    k1 = models.FloatField()
    b = models.FloatField()
    #: N: chunks with at least one term (a chunk of stop words only has no postings).
    chunks = models.BigIntegerField(default=0)
    #: Sum of the chunks' lengths in terms (stop words excluded), so avgdl = total / N.
    total_length = models.BigIntegerField(default=0)
    #: Chunk numbers handed out so far; the next chunk gets this one.
    numbered = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"BM25 of {self.index_version_id}"


class KeywordTerm(models.Model):
    """Document frequency of one term in one index version (kept by the database, like
    :attr:`KeywordIndex.chunks`)."""

    pk = models.CompositePrimaryKey("index_version", "term")
    # Deleted with the version by the database (ON DELETE CASCADE, see the migration).
    index_version = models.ForeignKey(
        IndexVersion,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the primary key leads with it
        related_name="+",
    )
    term = models.TextField()
    #: df: chunks of the version holding the term.
    documents = models.IntegerField()
    #: Drawn from a sequence each time the term's postings change (by the database, like
    #: ``documents``); a packed list stamped with another value is stale.
    generation = models.BigIntegerField(editable=False)

    def __str__(self) -> str:
        return self.term


class KeywordPosting(models.Model):
    """One term of one chunk: its frequency and the chunk's length. The rows are what the
    statistics triggers and deletes work on; queries read them packed (:class:`KeywordList`).

    Deleted with the chunk by the database (ON DELETE CASCADE, see the migration): the ORM
    never has to collect millions of rows.
    """

    pk = models.CompositePrimaryKey("chunk", "term")
    chunk = models.ForeignKey(
        Chunk,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the primary key leads with it
        related_name="+",
    )
    index_version = models.ForeignKey(
        IndexVersion,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    term = models.TextField()
    frequency = models.IntegerField()
    length = models.IntegerField()

    class Meta:
        indexes = [
            # A term's postings, read whole when its list is packed.
            models.Index(
                fields=["index_version", "term"],
                include=["chunk", "frequency", "length"],
                name="rag_posting_term",
            )
        ]

    def __str__(self) -> str:
        return f"{self.term} in {self.chunk_id}"


class KeywordDocument(models.Model):
    """A chunk's number in its version's keyword index: dense from 0, so a query adds scores
    into an array indexed by number. Handed out by :func:`rag.bm25.index_chunks`, never
    reused; deleted with the chunk by the database (ON DELETE CASCADE, see the migration)."""

    chunk = models.OneToOneField(
        Chunk, on_delete=models.DO_NOTHING, db_constraint=False, primary_key=True, related_name="+"
    )
    index_version = models.ForeignKey(
        IndexVersion,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the unique constraint leads with it
        related_name="+",
    )
    number = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["index_version", "number"], name="rag_keyword_document_number"
            )
        ]

    def __str__(self) -> str:
        return f"{self.number} of {self.index_version_id}"


class KeywordList(models.Model):
    """One term's postings packed for queries: chunk numbers (int4), tf and dl (int2), each an
    array of big-endian values in number order, stamped with the term's ``generation`` when
    packed (:func:`rag.bm25.pack`). Stored uncompressed (``STORAGE EXTERNAL``): reading a
    list is a copy, not a decompression."""

    pk = models.CompositePrimaryKey("index_version", "term")
    # Deleted with the version by the database (ON DELETE CASCADE, see the migration).
    index_version = models.ForeignKey(
        IndexVersion,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # the primary key leads with it
        related_name="+",
    )
    term = models.TextField()
    generation = models.BigIntegerField()
    numbers = models.BinaryField()
    frequencies = models.BinaryField()
    lengths = models.BinaryField()

    def __str__(self) -> str:
        return self.term
