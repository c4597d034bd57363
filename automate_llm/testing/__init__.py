"""Local servers that speak the OpenAI and Anthropic HTTP APIs, for tests of the real SDKs.

Each is a real HTTP server on an ephemeral port of 127.0.0.1; a test queues behaviours
(:mod:`.behaviours`) and reads back the requests the SDK sent. The pytest fixtures that start
them live in ``tests/automate_llm/conftest.py``.
"""

from tests.automate_llm.wire.anthropic_wire import AnthropicWire
from tests.automate_llm.wire.behaviours import (
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
from tests.automate_llm.wire.openai_wire import OpenAIWire
from tests.automate_llm.wire.server import RecordedRequest, WireServer

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
