"""Test doubles for code that calls models: local servers that speak the OpenAI and Anthropic
HTTP APIs, so the real SDKs (and the providers built on them) are tested at the wire.

Each is a real HTTP server on an ephemeral port of 127.0.0.1; a test queues behaviours
(:mod:`.behaviours`: ``Reply``, ``ToolUse``, ``RateLimited``, ``CutStream``...) and reads back
the requests the SDK sent. Beside them: :mod:`.providers` (provider rows pointed at a server),
:mod:`.fixtures` (a pytest plugin that starts them) and :mod:`.contracts` (the contract test
base of provider plugins). See docs/testing.md.
"""

from automate_llm.testing.anthropic_wire import AnthropicWire
from automate_llm.testing.behaviours import (
    Behaviour,
    CutStream,
    Embeddings,
    Malformed,
    RateLimited,
    Rejected,
    Reply,
    ServerError,
    ToolUse,
)
from automate_llm.testing.openai_wire import OpenAIWire
from automate_llm.testing.wire_server import RecordedRequest, WireServer

__all__ = [
    "AnthropicWire",
    "Behaviour",
    "CutStream",
    "Embeddings",
    "Malformed",
    "OpenAIWire",
    "RateLimited",
    "RecordedRequest",
    "Rejected",
    "Reply",
    "ServerError",
    "ToolUse",
    "WireServer",
]
