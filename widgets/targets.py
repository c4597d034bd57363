"""What answers an embed's visitors: a target opens an answer stream for a question.

A target kind is a class with ``kind`` and :meth:`open`; :func:`target_for` picks the embed's.
Today the only kind is a RAG endpoint; a data-chat dataset adds a class here (and its field on
the embed), and the endpoints, admission checks and the widget's event stream stay the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

from automate_llm.services import CallContext
from rag import services as rag
from widgets.models import ChatEmbed

SNIPPET_CHARS = 240


@dataclass
class Reply:
    """A finished answer: its text and citations, and what its model call used."""

    text: str
    outcome: str
    citations: list[dict[str, Any]] = field(default_factory=list)
    request_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)


class AnswerStream(Protocol):
    """Pieces of an answer's text; :meth:`reply` once they ran out; :meth:`close` stops it."""

    trace_id: str

    def __iter__(self) -> Iterator[str]: ...

    def close(self) -> None: ...

    def reply(self) -> Reply: ...


class Target(Protocol):
    kind: str

    def open(
        self, question: str, *, context: CallContext, claims: dict[str, Any]
    ) -> AnswerStream: ...


def _link(document: dict[str, Any]) -> str:
    """The document's address when its external id is a web address (URL and sitemap
    sources), else nothing: a citation never links to anything but http(s)."""
    external = str(document.get("external_id") or "")
    parts = urlsplit(external)
    return external if parts.scheme in ("http", "https") and parts.netloc else ""


class RagAnswerStream:
    def __init__(self, stream: rag.AnswerStream) -> None:
        self._stream = stream
        self.trace_id = stream.trace_id

    def __iter__(self) -> Iterator[str]:
        return iter(self._stream)

    def close(self) -> None:
        self._stream.close()

    def reply(self) -> Reply:
        answer = self._stream.answer
        assert answer is not None  # the stream ended
        results = answer.retrieval.results
        citations = []
        for citation in answer.citations:
            item = results[citation.marker - 1]
            citations.append(
                {
                    "marker": citation.marker,
                    "title": citation.title or citation.document.get("title") or "",
                    "url": _link(citation.document),
                    "snippet": item.text[:SNIPPET_CHARS],
                }
            )
        return Reply(
            text=answer.answer,
            outcome=answer.outcome,
            citations=citations,
            request_id=str(answer.request_id) if answer.request_id else None,
            input_tokens=answer.usage.input_tokens,
            output_tokens=answer.usage.output_tokens,
            cost=answer.usage.cost,
        )


class RagTarget:
    """Grounded answers with citations from the embed's RAG endpoint (its forced filters and
    answer settings apply; end-user claims do not reach retrieval)."""

    kind = "rag"

    def __init__(self, embed: ChatEmbed) -> None:
        self.embed = embed

    def open(self, question: str, *, context: CallContext, claims: dict[str, Any]) -> AnswerStream:
        endpoint = rag.get_endpoint(self.embed.tenant_id, self.embed.rag_endpoint.slug)
        return RagAnswerStream(rag.stream_answer(endpoint, question, context=context))


def target_for(embed: ChatEmbed) -> Target:
    return RagTarget(embed)
