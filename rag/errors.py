"""RAG errors; the API turns each into a NormalizedError ``{code, message, details, trace_id}``."""

from __future__ import annotations

from automate_core.errors import AutomateError, ConflictError, InvalidInputError, NotFoundError


class EndpointNotFound(NotFoundError):
    code = "rag_endpoint_not_found"
    default_message = "No RAG endpoint with this slug in your tenant."


class SourceNotFound(NotFoundError):
    code = "rag_source_not_found"
    default_message = "No knowledge source with this slug in your tenant."


class IndexNotReady(ConflictError):
    """The endpoint has no live index version yet (its first build has not finished)."""

    code = "rag_index_not_ready"
    default_message = "This endpoint has no live index yet; sync its sources first."


class InvalidFilter(InvalidInputError):
    code = "rag_invalid_filter"
    default_message = "The metadata filter is invalid."


class InvalidRetrievalConfig(InvalidInputError):
    code = "rag_invalid_retrieval_config"
    default_message = "The endpoint's retrieval_config is invalid."


class InvalidSourceConfig(InvalidInputError):
    code = "rag_invalid_source_config"
    default_message = "The knowledge source's config is invalid."


class DocumentParseError(InvalidInputError):
    """A document's bytes could not be turned into text; recorded on the Document."""

    code = "rag_parse_error"
    default_message = "The document could not be parsed."


class FetchError(AutomateError):
    """A URL or sitemap could not be fetched (network error, HTTP error, too large)."""

    status_code = 502
    code = "rag_fetch_error"
    default_message = "The document could not be fetched."


class EmbeddingError(AutomateError):
    """The embedding provider failed or returned vectors of the wrong shape."""

    status_code = 502
    code = "rag_embedding_error"
    default_message = "The embedding provider failed."


class BuildCancelled(ConflictError):
    code = "rag_build_cancelled"
    default_message = "The index build was cancelled."
