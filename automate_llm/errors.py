"""Errors of the LLM gateway. Each is an :class:`AutomateError`, so the API answers with a
NormalizedError; ``retryable`` tells the gateway whether another attempt may succeed."""

from __future__ import annotations

from typing import Any

from automate_core.errors import AutomateError


class LLMError(AutomateError):
    status_code = 502
    code = "llm_error"
    default_message = "The language model call failed."
    retryable = False


class NoProviderConfigured(LLMError):
    status_code = 503
    code = "llm_not_configured"
    default_message = (
        "No LLM provider is configured for this tenant: add one in the admin "
        "(LLM providers) or name one in the request."
    )


class UnknownProvider(NoProviderConfigured):
    """A call named a provider the tenant does not have active, while it has others
    (``details.choices``): the caller's mistake, so a 404 rather than a 503."""

    status_code = 404
    code = "llm_provider_not_found"
    default_message = "No active LLM provider by that name in this tenant."


class ProviderConfigError(LLMError):
    status_code = 400
    code = "llm_provider_config_invalid"
    default_message = "The LLM provider's configuration is invalid."


class TransientLLMError(LLMError):
    """A failure another attempt may not have; ``retry_after`` is the wait the provider asked
    for, in seconds (None when it said nothing)."""

    retryable = True

    def __init__(
        self, message: str | None = None, *, retry_after: float | None = None, details: Any = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, details=details)


class ProviderRateLimited(TransientLLMError):
    """429 from the provider."""

    status_code = 429
    code = "llm_rate_limited"
    default_message = "The LLM provider is rate limiting requests."


class ProviderUnavailable(TransientLLMError):
    """5xx, a timeout or a broken connection: the same request may succeed later."""

    code = "llm_unavailable"
    default_message = "The LLM provider is unavailable."


class ProviderRejected(LLMError):
    """The provider refused the request (4xx other than 429): retrying cannot help."""

    code = "llm_request_rejected"
    default_message = "The LLM provider rejected the request."


class ProviderBadResponse(LLMError):
    """The provider answered with something that is not a valid response (or a cut stream)."""

    code = "llm_bad_response"
    default_message = "The LLM provider sent a malformed response."
    retryable = True


class StructuredOutputInvalid(LLMError):
    """The model's output did not match the JSON schema, also after the repair attempt."""

    status_code = 422
    code = "llm_structured_output_invalid"
    default_message = "The model's output did not match the requested JSON schema."


class StreamCancelled(LLMError):
    """The caller closed a stream before it ended (a client went away); what arrived is
    charged."""

    status_code = 499
    code = "llm_stream_cancelled"
    default_message = "The stream was closed before it ended."
