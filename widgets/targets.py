"""What answers an embed's visitors: a target opens an answer stream for a question.

A target kind is a class with ``kind`` and :meth:`open`; :func:`target_for` picks the embed's:
a RAG endpoint (streamed text with citations) or a data-chat dataset (the explanation, then a
table and a chart). The endpoints, admission checks and the widget's event stream are the same
for both.
"""

from __future__ import annotations

import base64
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

from automate_datachat import services as datachat
from automate_llm.services import CallContext
from rag import services as rag
from widgets.conf import widget_settings
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
    #: A data-chat answer's table and chart spec (see ``WidgetMessage.data``).
    data: dict[str, Any] = field(default_factory=dict)


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
        assert self.embed.rag_endpoint is not None  # an embed has one target (a constraint)
        endpoint = rag.get_endpoint(self.embed.tenant_id, self.embed.rag_endpoint.slug)
        return RagAnswerStream(rag.stream_answer(endpoint, question, context=context))


class DataChatAnswerStream:
    """A data-chat answer as one piece of text (the model's explanation, once the SQL ran);
    the table and chart come with :meth:`reply`. The SQL is not shown to visitors."""

    def __init__(self, events: Generator[Any, None, datachat.Answer], trace_id: str) -> None:
        self._events = events
        self._answer: datachat.Answer | None = None
        self.trace_id = trace_id

    def __iter__(self) -> Iterator[str]:
        while self._answer is None:
            try:
                next(self._events)  # progress ("sql", "rows"): the answer comes whole
            except StopIteration as done:
                self._answer = done.value
        if self._answer.explanation:
            yield self._answer.explanation

    def close(self) -> None:
        self._events.close()

    def reply(self) -> Reply:
        answer = self._answer
        assert answer is not None and answer.result is not None  # the stream ended
        table = answer.result.to_json()
        rows = int(widget_settings.TABLE_ROWS)
        data = {
            "columns": [column["name"] for column in table["columns"]],
            "rows": table["rows"][:rows],
            "row_count": table["row_count"],
            "truncated": table["truncated"] or table["row_count"] > rows,
            "chart": answer.chart,
        }
        return Reply(
            text=answer.explanation,
            outcome="answered",
            request_id=answer.request_ids[-1] if answer.request_ids else None,
            input_tokens=answer.usage.input_tokens,
            output_tokens=answer.usage.output_tokens,
            cost=answer.usage.cost,
            data=data,
        )


class DataChatTarget:
    """Answers from the embed's data-chat dataset: guarded SQL over the tenant's rows, where
    row filters naming ``$claims.<name>`` take the signed visitor's claims (an anonymous
    visitor has none, so such a dataset refuses them)."""

    kind = "datachat"

    def __init__(self, embed: ChatEmbed) -> None:
        self.embed = embed

    def open(self, question: str, *, context: CallContext, claims: dict[str, Any]) -> AnswerStream:
        tenant = self.embed.tenant
        dataset = datachat.dataset_for_end_user(tenant, self.embed.dataset, claims)
        events = datachat.ask_events(
            tenant=tenant,
            dataset=dataset,
            question=question,
            context=context,
            actor=f"end_user:{context.end_user}",
        )
        return DataChatAnswerStream(events, context.trace_id)


def chart_image(spec: dict[str, Any]) -> str:
    """The chart as a ``data:`` URL of its server-rendered SVG, for an ``<img>``: an image
    runs no script, and it needs no request of its own (so no second origin or token check)."""
    svg = datachat.chart_svg(spec)
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


def target_for(embed: ChatEmbed) -> Target:
    if embed.dataset:
        return DataChatTarget(embed)
    return RagTarget(embed)
