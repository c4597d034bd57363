"""What a wire server does with the next request: each test queues these in order.

A behaviour describes the provider's answer in neutral words; each server writes it in its own
dialect (JSON or SSE, OpenAI or Anthropic), choosing JSON or SSE by the request's ``stream`` flag,
so one script serves ``chat`` and ``stream`` alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolUse:
    """A tool call in a reply; ``id`` is generated when not given."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """A successful answer.

    ``finish_reason`` is neutral (``stop``, ``length``, ``tool_calls``, ``content_filter``);
    by default ``tool_calls`` when there are tool calls, else ``stop``. ``output`` is a structured
    answer: OpenAI sends it as the message's JSON text, Anthropic as the input of the tool the
    request forced. Streams send the text in pieces of ``chunk_size`` characters and tool
    arguments in two pieces. ``delay`` waits before answering (for timeouts).
    """

    text: str = "Hello from the wire."
    tool_calls: tuple[ToolUse, ...] = ()
    output: Any = None
    finish_reason: str | None = None
    input_tokens: int = 12
    output_tokens: int = 7
    cached_tokens: int = 0
    chunk_size: int = 4
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def neutral_finish(self) -> str:
        if self.finish_reason:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"


@dataclass(frozen=True)
class RateLimited:
    """429 with ``Retry-After`` (seconds, or an HTTP date) and/or ``retry-after-ms``."""

    retry_after: str | None = "1"
    retry_after_ms: str | None = None
    message: str = "Rate limit reached. Please try again later."


@dataclass(frozen=True)
class ServerError:
    """A 5xx answer (500 by default; 529 is Anthropic's "overloaded")."""

    status: int = 500
    retry_after: str | None = None
    message: str = "The server had an error while processing your request."


@dataclass(frozen=True)
class Rejected:
    """A 4xx answer other than 429: the request itself is refused."""

    status: int = 400
    message: str = "Invalid request."


@dataclass(frozen=True)
class Malformed:
    """200 with a body that is not a valid response: broken JSON by default, or ``body``.

    On a stream request the body is sent as one SSE event instead.
    """

    body: bytes | None = None


@dataclass(frozen=True)
class CutStream:
    """Answers ``reply`` but drops the connection after ``after`` SSE events.

    On a non-stream request it sends half of the JSON body and then drops the connection.
    """

    reply: Reply = field(default_factory=Reply)
    after: int = 3


@dataclass(frozen=True)
class Embeddings:
    """An embeddings answer: ``vectors`` as given, else numbers derived from each input text (so
    equal texts get equal vectors): as many as the request's ``dimensions``, else
    ``dimensions``."""

    vectors: tuple[tuple[float, ...], ...] | None = None
    dimensions: int = 8
    input_tokens: int | None = None


Behaviour = Reply | RateLimited | ServerError | Rejected | Malformed | CutStream | Embeddings
