"""Values that cross the provider boundary, normalized across providers.

Every provider speaks these and only these: a list of :class:`ChatMessage` and
:class:`ChatOptions` in, a :class:`ChatResult` (or a stream of :class:`ChatChunk`) out. Provider
specific shapes never leave the provider module.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


class ToolCall(BaseModel):
    """A call the model asks for; ``arguments`` is already parsed from the provider's JSON."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ChatMessage(BaseModel):
    """One turn. ``tool_calls`` on an assistant turn; ``tool_call_id`` on the tool's answer."""

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None


class ToolSpec(BaseModel):
    """A tool the model may call: ``parameters`` is a JSON schema object."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ChatOptions(BaseModel):
    """What to ask for. ``json_schema`` requests structured output matching that schema."""

    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stop: list[str] = Field(default_factory=list)
    tools: list[ToolSpec] = Field(default_factory=list)
    tool_choice: Literal["auto", "none", "required"] | str = "auto"
    json_schema: dict[str, Any] | None = None
    timeout: float | None = Field(default=None, gt=0)
    # Sent to providers that accept one, so a retried call is not billed or executed twice.
    idempotency_key: str | None = None
    # Provider-specific parameters passed through unchanged (top_p, seed, ...).
    extra: dict[str, Any] = Field(default_factory=dict)


class Usage(BaseModel):
    """Tokens as the provider reports them; ``cached_tokens`` is the part of ``input_tokens``
    read from the provider's cache (providers that report it apart are added in)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


class ChatResult(BaseModel):
    """A finished chat call."""

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: FinishReason = "stop"
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    provider: str = ""
    request_id: str | None = None


class ChatChunk(BaseModel):
    """One piece of a stream. The last chunk has ``finish_reason`` and, when known, ``usage``;
    ``tool_calls`` are delivered whole on the chunk that completes them."""

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    request_id: str | None = None


class EmbeddingResult(BaseModel):
    vectors: list[list[float]]
    model: str = ""
    usage: Usage = Field(default_factory=Usage)
