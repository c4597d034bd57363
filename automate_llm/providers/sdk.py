"""What the built-in providers share about the official SDKs (openai, anthropic).

Both SDKs are generated from the same template: the same client options, the same exception
tree, the same ``httpx2`` transport. This module holds the parts that are therefore the same:

* :func:`http_client` gives the SDK an ``httpx2`` client whose every request passes the
  tenant's egress policy and connects only to the approved address (one client, with its
  connection pool, per tenant and allowlist, reused across calls: building one loads the CA
  bundle, ~20 ms).
* :func:`translate_error` turns an SDK exception into an :mod:`automate_llm.errors` error the
  gateway understands (retryable or not), keeping :class:`EgressDenied` as it is.
* :func:`config_problems` checks the config keys the providers have in common.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pydantic

from automate_core.governance import egress
from automate_core.governance.redaction import scrub_secret_values
from automate_core.governance.secrets import InvalidSecretRefError, SecretRef
from automate_core.tenancy.models import Tenant
from automate_llm.errors import (
    LLMError,
    ProviderBadResponse,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)

__all__ = [
    "config_problems",
    "http_client",
    "parse_arguments",
    "retry_after_seconds",
    "translate_error",
    "translated",
]

_CLIENTS: OrderedDict[tuple[Any, ...], httpx2.Client] = OrderedDict()
_CLIENTS_LOCK = threading.Lock()
_MAX_CLIENTS = 256
# A streamed answer holds its connection for as long as the model writes (seconds to minutes),
# so one tenant's open answers can far outnumber egress' default pool of 100.
_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=20)


def http_client(tenant: Tenant | None) -> httpx2.Client:
    """The egress-guarded ``httpx2`` client for ``tenant``'s provider calls.

    Cached per tenant and egress allowlist (the only tenant field the policy reads), so a
    changed allowlist gets a new client; the global egress settings are read on every request.
    Redirects are not followed: a provider API never redirects a model call. The pool holds
    up to 1000 connections, one per answer in flight.
    """
    allowlist = getattr(tenant, "egress_allowlist", None) or []
    key = (
        getattr(tenant, "pk", None),
        tuple(allowlist) if isinstance(allowlist, list) else allowlist,
    )
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is not None:
            _CLIENTS.move_to_end(key)
            return client
        # Evicted clients are left to the garbage collector: another thread may be using one.
        client = egress.httpx2_client(tenant, follow_redirects=False, limits=_LIMITS)
        _CLIENTS[key] = client
        while len(_CLIENTS) > _MAX_CLIENTS:
            _CLIENTS.popitem(last=False)
        return client


# -- errors ------------------------------------------------------------------------------------


def retry_after_seconds(headers: Mapping[str, str] | httpx2.Headers | None) -> float | None:
    """The wait a response asks for: ``retry-after-ms``, else ``Retry-After`` in seconds or as
    an HTTP date; None when absent or unreadable."""
    if not headers:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _provider_message(exc: Any) -> str:
    """The provider's own error message, with any secret resolved for this call hidden (a
    provider may echo the key it was sent; the message travels on to API answers and logs)."""
    body = getattr(exc, "body", None)
    message = str(getattr(exc, "message", "") or exc)
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            message = str(error["message"])
    return str(scrub_secret_values(message))


def translate_error(
    exc: BaseException, sdk: ModuleType, provider: str, *, mid_stream: bool = False
) -> Exception:
    """The gateway error for ``exc`` raised by ``sdk`` (the ``openai`` or ``anthropic`` module).

    429 is ProviderRateLimited with the wait the provider asked for; 408, 5xx, timeouts and
    refused or dropped connections are ProviderUnavailable; other 4xx are ProviderRejected; a
    body that is not a valid response, a connection dropped mid-body, and anything that breaks
    a stream once it has started (``mid_stream``) are ProviderBadResponse. A refusal of the
    egress policy is returned as the EgressDenied it is: not retryable, not the provider's
    fault.
    """
    denied = _cause(exc, egress.EgressDenied)
    if denied is not None:
        return denied  # type: ignore[return-value]
    if isinstance(exc, LLMError):
        return exc
    details: dict[str, Any] = {"provider": provider}
    if isinstance(exc, sdk.APIStatusError):
        status = int(exc.status_code)
        headers = exc.response.headers
        details |= {"status": status, "provider_request_id": exc.request_id}
        message = f"{provider} answered {status}: {_provider_message(exc)}"
        wait = retry_after_seconds(headers)
        if mid_stream:
            return ProviderBadResponse(f"{provider} stream broke: {message}", details=details)
        if status == 429:
            return ProviderRateLimited(message, retry_after=wait, details=details)
        if status == 408 or status >= 500:
            return ProviderUnavailable(message, retry_after=wait, details=details)
        return ProviderRejected(message, details=details)
    if isinstance(exc, sdk.APIResponseValidationError):
        return ProviderBadResponse(f"{provider} sent an invalid response: {exc}", details=details)
    if mid_stream:
        return ProviderBadResponse(
            f"{provider} stream broke before it ended ({_describe(exc)})", details=details
        )
    dropped = _cause(exc, httpx2.RemoteProtocolError)
    if dropped is not None:
        return ProviderBadResponse(
            f"{provider} dropped the connection mid-response ({dropped})", details=details
        )
    if isinstance(exc, sdk.APITimeoutError) or _cause(exc, httpx2.TimeoutException):
        return ProviderUnavailable(f"{provider} did not answer in time", details=details)
    if isinstance(exc, sdk.APIConnectionError | httpx2.TransportError):
        return ProviderUnavailable(
            f"could not reach {provider} ({_describe(exc)})", details=details
        )
    if isinstance(
        exc, ValueError | TypeError | KeyError | AttributeError | pydantic.ValidationError
    ):
        return ProviderBadResponse(
            f"{provider} sent a malformed response ({_describe(exc)})", details=details
        )
    return ProviderUnavailable(f"{provider} call failed ({_describe(exc)})", details=details)


@contextmanager
def translated(sdk: ModuleType, provider: str, *, mid_stream: bool = False) -> Iterator[None]:
    """Run a block of SDK calls, raising only :func:`translate_error`'s errors out of it."""
    try:
        yield
    except LLMError:
        raise
    except Exception as exc:
        error = translate_error(exc, sdk, provider, mid_stream=mid_stream)
        if _cause(exc, type(error)) is error:
            raise error from None  # the EgressDenied the SDK wrapped: as it was raised
        raise error from exc


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__
    text = f"{type(exc).__name__}: {exc}"
    if cause is not None:
        text += f"; caused by {type(cause).__name__}: {cause}"
    return text


def parse_arguments(raw: str | None, provider: str) -> dict[str, Any]:
    """A tool call's JSON arguments as a dict; ProviderBadResponse when they are not one."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise ProviderBadResponse(
            f"{provider} sent tool call arguments that are not JSON", details={"provider": provider}
        ) from None
    if not isinstance(value, dict):
        raise ProviderBadResponse(
            f"{provider} sent tool call arguments that are not a JSON object",
            details={"provider": provider},
        )
    return value


# -- config ------------------------------------------------------------------------------------


def config_problems(
    config: Mapping[str, Any],
    *,
    allowed: set[str],
    api_key_required: bool,
) -> list[str]:
    """Problems with the keys every built-in provider understands.

    ``api_key`` must be a SecretRef (the key itself never sits in the database); ``base_url``
    an absolute http(s) URL (the egress policy checks it on every call); ``headers`` a mapping
    of names to strings or SecretRefs; ``timeout`` a positive number of seconds.
    """
    problems: list[str] = []
    if not isinstance(config, Mapping):
        return ["config must be a JSON object"]
    for key in sorted(set(config) - allowed):
        problems.append(f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")

    api_key = config.get("api_key")
    if api_key in (None, ""):
        if api_key_required:
            problems.append('api_key is required: a SecretRef ({"$secret": NAME})')
    elif _secret_ref(api_key, "api_key", problems) is None:
        problems.append('api_key must be a SecretRef ({"$secret": NAME}), never the key itself')

    base_url = config.get("base_url")
    if base_url is not None:
        parts = urlsplit(base_url) if isinstance(base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append("base_url must be an absolute http(s) URL")

    headers = config.get("headers")
    if headers is not None:
        if not isinstance(headers, Mapping):
            problems.append("headers must be an object of header names to values")
        else:
            for name, value in headers.items():
                if (
                    not isinstance(value, str)
                    and _secret_ref(value, f"headers.{name}", problems) is None
                ):
                    problems.append(f"headers.{name} must be a string or a SecretRef")

    for key in ("organization", "project", "default_model"):
        if key in config and not isinstance(config[key], str):
            problems.append(f"{key} must be a string")

    timeout = config.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        problems.append("timeout must be a positive number of seconds")
    return problems


def _secret_ref(value: Any, path: str, problems: list[str]) -> SecretRef | None:
    try:
        return SecretRef.parse(value, path=path)
    except InvalidSecretRefError as exc:
        problems.append(exc.message)
        return SecretRef("invalid")  # reported above; not reported twice
