"""The LLMProvider contract that every provider plugin implements.

A provider turns normalized messages and options into one HTTP call to its service and the
answer back into a :class:`~automate_llm.types.ChatResult`. It does not retry, fail over, meter
or audit: the gateway does that the same way for every provider. It raises only the errors of
:mod:`automate_llm.errors`, so the gateway can tell a retryable failure from a final one.

Providers are registered as entry points in the group ``django_automate.llm.providers`` and
built with the provider row's config, its SecretRefs already resolved for this one call.
Every request goes through the egress policy of the tenant passed in.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from automate_core import plugins
from automate_core.tenancy.models import Tenant
from automate_llm.types import ChatChunk, ChatMessage, ChatOptions, ChatResult, EmbeddingResult

PLUGIN_KIND = "llm.providers"


class LLMProvider:
    #: The entry-point name, also ``LLMProvider.provider_type`` on the model.
    provider_type: ClassVar[str] = ""
    supports_streaming: ClassVar[bool] = False
    supports_embeddings: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any], *, tenant: Tenant | None = None) -> None:
        self.config = dict(config)
        self.tenant = tenant

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        """Problems with ``config`` (SecretRefs unresolved), one message per problem."""
        return []

    def chat(self, messages: Sequence[ChatMessage], options: ChatOptions) -> ChatResult:
        raise NotImplementedError

    def stream(self, messages: Sequence[ChatMessage], options: ChatOptions) -> Iterator[ChatChunk]:
        """Yield chunks as they arrive; raise ProviderBadResponse if the stream breaks."""
        raise NotImplementedError(f"{self.provider_type} does not stream")

    def embed(
        self, texts: Sequence[str], *, model: str, dimensions: int | None = None
    ) -> EmbeddingResult:
        """Vectors for ``texts``; ``dimensions`` asks a model that can shorten its vectors
        (OpenAI's text-embedding-3) for that many numbers."""
        raise NotImplementedError(f"{self.provider_type} has no embeddings")

    def count_tokens(self, text: str, *, model: str | None = None) -> int:
        """An estimate of the tokens ``text`` takes for ``model`` (tiktoken by default)."""
        from automate_llm.tokens import count_tokens

        return count_tokens(text, model=model).tokens


def provider_class(provider_type: str) -> type[LLMProvider]:
    """The installed provider class registered as ``provider_type``; PluginNotFound otherwise."""
    cls: type[LLMProvider] = plugins.load(PLUGIN_KIND, provider_type)
    return cls
