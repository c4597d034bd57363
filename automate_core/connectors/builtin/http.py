"""The ``http`` connector, and the delivery machinery every HTTP-speaking built-in shares.

Every request goes through :func:`automate_core.governance.egress.http_client` for the step's
tenant, so the egress policy (and the tenant's allowlist) sees each URL and redirect hop. A call
is retried inside ``execute`` only briefly (:class:`RetryPolicy`): on 429, on 5xx and on
connection errors, with exponential backoff or the server's ``Retry-After``. Waits that are too
long for a worker thread end the call with a *retryable* :class:`~automate_core.connectors.base.
ConnectorError` instead, and the runtime schedules the next attempt. Every attempt carries the
step's ``Idempotency-Key``, so a retried request is one side effect for servers that honour it.

Results and errors never carry config values: response headers that hold credentials are
redacted, and remote error bodies are scrubbed of the connector's secrets before they are kept.
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from django.core.exceptions import ValidationError

from automate_core.conf import automate_settings
from automate_core.connectors.base import (
    ConnectorAdapter,
    ConnectorContext,
    ConnectorError,
    ConnectorResult,
)
from automate_core.governance import egress, redaction
from automate_core.governance.secrets import InvalidSecretRefError, SecretRef

if TYPE_CHECKING:
    from automate_core.tenancy.models import Tenant

__all__ = [
    "HttpConnector",
    "HttpConnectorBase",
    "HttpReply",
    "HttpStatusError",
    "OutboundRequest",
    "RetryPolicy",
    "send",
]

USER_AGENT = "django-automate"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 300.0
DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
REDACTED = "[REDACTED]"
# How much of a remote error body is kept in ConnectorError.details.
ERROR_BODY_CHARS = 500
_SCRUB_WINDOW = 64 * 1024
# The statuses whose Retry-After is honoured (RFC 9110 defines it for 503, RFC 6585 for 429).
RETRY_AFTER_STATUSES = frozenset({429, 503})

# Framing and routing headers a step must not set: they could smuggle a second request or
# point the request somewhere the egress check did not look.
FORBIDDEN_HEADERS = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer",
        "keep-alive", "proxy-connection", "proxy-authorization", "expect",
    }
)  # fmt: skip
# Response headers whose value is a credential whatever the redactor's key rules say.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_TEXT_MEDIA_TYPES = frozenset(
    {"application/xml", "application/javascript", "application/x-www-form-urlencoded"}
)


# --- errors -----------------------------------------------------------------------------------


class HttpStatusError(ConnectorError):
    """The server answered with a status that is not success; ``status`` is that status.

    ``retryable`` is true for 429 and 5xx; ``retry_after`` (seconds) is the server's
    ``Retry-After`` when it sent one, for the runtime to wait at least that long.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        retryable: bool,
        retry_after: float | None = None,
        details: Any = None,
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        super().__init__(message, retryable=retryable, details=details)


def invalid_params(message: str) -> ConnectorError:
    """A step's params are wrong: retrying the same params cannot help."""
    return ConnectorError(f"Invalid params: {message}", retryable=False)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` without any of ``secrets`` nor anything the shared redactor recognises."""
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return redaction.redact_text(text)


def is_retryable_status(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


# --- retry policy -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How one ``execute`` call retries before it hands the step back to the runtime.

    After ``n`` failed attempts the next waits ``min(backoff_base * 2**(n-1), backoff_max)``,
    shortened by up to ``jitter`` (a fraction), or exactly the server's ``Retry-After`` on 429
    and 503 when that is at most ``max_retry_after``. A longer ``Retry-After``, a wait past the
    step's deadline (``ConnectorContext.timeout_seconds``) or ``max_attempts`` spent ends the
    call with a retryable error: long waits belong to the runtime, not to a worker thread.
    """

    max_attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    jitter: float = 0.1
    max_retry_after: float = 30.0

    # option -> (lowest, highest) accepted in a config's "retry" mapping.
    LIMITS: ClassVar[Mapping[str, tuple[float, float]]] = {
        "max_attempts": (1, 10),
        "backoff_base": (0, 60),
        "backoff_max": (0, 300),
        "jitter": (0, 1),
        "max_retry_after": (0, 300),
    }

    @classmethod
    def problems(cls, value: Any) -> list[str]:
        """What is wrong with a config's ``retry`` mapping (None means the defaults)."""
        if value is None:
            return []
        if not isinstance(value, Mapping):
            return ["retry must be a mapping of retry options"]
        problems = [f"unknown retry option {key!r}" for key in sorted(set(value) - set(cls.LIMITS))]
        for key, (low, high) in cls.LIMITS.items():
            if key in value:
                problems.extend(number_problems(f"retry.{key}", value[key], low, high))
        if isinstance(value.get("max_attempts"), float):
            problems.append("retry.max_attempts must be a whole number")
        return problems

    @classmethod
    def from_config(cls, value: Mapping[str, Any] | None) -> RetryPolicy:
        return cls(**dict(value or {}))

    def wait_before_next(self, attempts: int, retry_after: float | None) -> float | None:
        """Seconds to wait before another attempt after ``attempts`` failed; None: give up."""
        if attempts >= self.max_attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        delay = min(self.backoff_base * 2 ** (attempts - 1), self.backoff_max)
        return delay * (1 - random.uniform(0, self.jitter))


# --- config checks shared by the HTTP connectors ----------------------------------------------


def number_problems(name: str, value: Any, low: float, high: float) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return [f"{name} must be a number"]
    if not low <= value <= high:
        return [f"{name} must be between {low:g} and {high:g}"]
    return []


def secret_ref_problem(name: str, value: Any) -> str | None:
    """None when ``value`` is a well-formed SecretRef or no ref at all, else the problem."""
    try:
        SecretRef.parse(value, path=name)
    except InvalidSecretRefError as exc:
        return exc.message
    return None


def is_secret_ref(value: Any) -> bool:
    try:
        return SecretRef.parse(value) is not None
    except InvalidSecretRefError:
        return False


def _missing_or_ref_problems(name: str, value: Any, required: bool) -> list[str] | None:
    """The verdict for an absent value or a SecretRef; None when the value itself needs checking."""
    if value is None:
        return [f"{name} is required"] if required else []
    if is_secret_ref(value):
        return []
    problem = secret_ref_problem(name, value)
    return [problem] if problem else None


def url_problems(name: str, value: Any, *, required: bool = False) -> list[str]:
    """Problems with a URL option: an absolute http(s) URL, or a SecretRef to one."""
    verdict = _missing_or_ref_problems(name, value, required)
    if verdict is not None:
        return verdict
    if not isinstance(value, str) or not value:
        return [f"{name} must be a URL"]
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        return [f"{name} is not a valid URL"]
    if url.scheme not in ("http", "https") or not url.host:
        return [f"{name} must be an absolute http:// or https:// URL"]
    return []


def text_problems(name: str, value: Any, *, required: bool = False) -> list[str]:
    """Problems with a string option that may hold a secret (or a SecretRef to one)."""
    verdict = _missing_or_ref_problems(name, value, required)
    if verdict is not None:
        return verdict
    if not isinstance(value, str) or not value:
        return [f"{name} must be a non-empty string"]
    return []


def header_problems(name: str, value: Any) -> list[str]:
    """Problems with a ``{name: value}`` header mapping; values may be SecretRefs."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [f"{name} must be a mapping of header names to values"]
    problems: list[str] = []
    for header, header_value in value.items():
        if not isinstance(header, str) or not _HEADER_NAME.fullmatch(header):
            problems.append(f"{name}: {header!r} is not a valid header name")
        elif header.lower() in FORBIDDEN_HEADERS:
            problems.append(f"{name}: the {header} header cannot be set")
        elif not is_secret_ref(header_value) and not _is_header_value(header_value):
            problems.append(f"{name}.{header} must be a string without line breaks")
    return problems


def _is_header_value(value: Any) -> bool:
    return isinstance(value, str) and not any(c in value for c in "\r\n\0")


def unresolved(name: str) -> ConnectorError:
    return ConnectorError(
        f"Config option {name} is still a SecretRef: the runtime resolves secrets before "
        "execute() is called",
        retryable=False,
    )


def resolved_text(config: Mapping[str, Any], name: str) -> str | None:
    """A string option's value at call time; a SecretRef left unresolved is an error."""
    value = config.get(name)
    if is_secret_ref(value) or (value is not None and not isinstance(value, str)):
        raise unresolved(name)
    return value


def resolved_headers(config: Mapping[str, Any], name: str = "headers") -> dict[str, str]:
    headers = dict(config.get(name) or {})
    for header, value in headers.items():
        if not isinstance(value, str):
            raise unresolved(f"{name}.{header}")
    return headers


# --- one request, retried ---------------------------------------------------------------------


@dataclass(frozen=True)
class OutboundRequest:
    """One request as a connector wants it sent; :func:`send` adds the platform's headers."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, Any] | None = None
    content: bytes | None = None
    timeout: float = DEFAULT_TIMEOUT
    follow_redirects: bool = False
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    #: Headers computed again for each attempt from the body (a webhook signature carries the
    #: time it was made, so a retry must not reuse an old one).
    sign: Callable[[bytes], Mapping[str, str]] | None = None


@dataclass(frozen=True)
class HttpReply:
    """The final response of :func:`send`: the last attempt's, after any retries."""

    status: int
    headers: httpx.Headers
    content: bytes
    host: str
    attempts: int

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def charset(self) -> str:
        for part in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = part.partition("=")
            if name.strip().lower() == "charset":
                return value.strip().strip('"') or "utf-8"
        return "utf-8"

    @property
    def retry_after(self) -> float | None:
        """``Retry-After`` in seconds from now (delta or HTTP-date) on a 429 or 503."""
        if self.status not in RETRY_AFTER_STATUSES:
            return None
        return parse_retry_after(self.headers.get("retry-after"))

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.charset, errors="replace")
        except LookupError:  # an unknown charset name
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not JSON."""
        return json.loads(self.content)

    def decoded_body(self) -> tuple[Any, str]:
        """``(body, encoding)``: parsed JSON when the content type says JSON, text for text
        types (and untyped UTF-8), base64 otherwise, so a result is always JSON-storable."""
        if not self.content:
            return None, "none"
        media = self.media_type
        if media == "application/json" or media.endswith("+json"):
            try:
                return self.json(), "json"
            except ValueError:
                return self.text, "text"
        if media.startswith("text/") or media.endswith("+xml") or media in _TEXT_MEDIA_TYPES:
            return self.text, "text"
        if not media:
            try:
                return self.content.decode("utf-8"), "text"
            except UnicodeDecodeError:
                pass
        return base64.b64encode(self.content).decode("ascii"), "base64"

    def safe_headers(self) -> dict[str, str]:
        """Response headers, lower-cased, with credentials (auth, cookies) redacted."""
        result: dict[str, str] = {}
        for name, value in self.headers.multi_items():
            key = name.lower()
            if key in CREDENTIAL_HEADERS or redaction.is_sensitive_key(key):
                value = REDACTED
            else:
                value = redaction.redact_text(value)
            result[key] = f"{result[key]}, {value}" if key in result else value
        return result

    def error(self, secrets: Iterable[str] = (), *, what: str = "HTTP") -> HttpStatusError:
        """The :class:`HttpStatusError` for this reply, its body scrubbed of ``secrets``."""
        retryable = is_retryable_status(self.status)
        details: dict[str, Any] = {
            "status": self.status,
            "host": self.host,
            "attempts": self.attempts,
            # Scrubbed before it is cut, so a secret across the cut cannot survive in part.
            "body": scrub(self.text[:_SCRUB_WINDOW], secrets)[:ERROR_BODY_CHARS],
        }
        retry_after = self.retry_after
        if retry_after is not None:
            details["retry_after"] = retry_after
        return HttpStatusError(
            f"{what} {self.status} from {self.host}",
            status=self.status,
            retryable=retryable,
            retry_after=retry_after,
            details=details,
        )


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def tenant_for(context: ConnectorContext) -> Tenant | None:
    """The step's tenant, so that its egress allowlist applies; None for platform calls."""
    if context.tenant_id is None:
        return None
    from automate_core.tenancy.models import Tenant

    if isinstance(context.tenant_id, Tenant):
        return context.tenant_id
    try:
        return Tenant.objects.get(pk=context.tenant_id)
    except (Tenant.DoesNotExist, ValidationError, ValueError):
        raise ConnectorError("The step's tenant does not exist", retryable=False) from None


def _is_transient(exc: httpx.TransportError) -> bool:
    """Whether another attempt may get through: timeouts, refused or dropped connections."""
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def send(
    request: OutboundRequest,
    context: ConnectorContext,
    *,
    retry: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> HttpReply:
    """Send ``request`` through the egress guard, retrying 429, 5xx and connection errors.

    Returns the final reply whatever its status (callers decide what an error is); raises a
    retryable ConnectorError when no response came back, a non-retryable one for a request
    that cannot work (bad URL, too many redirects, oversized response), and
    :class:`~automate_core.governance.egress.EgressDenied` unchanged when the policy refuses a
    URL: a policy decision is never retried.
    """
    tenant = tenant_for(context)
    try:
        host = httpx.URL(request.url).host
    except httpx.InvalidURL:
        raise invalid_params("url is not a valid URL") from None
    headers = httpx.Headers({"User-Agent": USER_AGENT})
    headers.update(dict(request.headers))
    headers[IDEMPOTENCY_HEADER] = context.idempotency_key
    if context.trace_id:
        headers[automate_settings.TRACE_HEADER] = context.trace_id
    deadline = time.monotonic() + context.timeout_seconds

    client = egress.http_client(tenant, follow_redirects=request.follow_redirects)
    with client:
        attempts = 0
        while True:
            attempts += 1
            timeout = max(0.001, min(request.timeout, deadline - time.monotonic()))
            failure: httpx.TransportError | None = None
            reply: HttpReply | None = None
            try:
                reply = _attempt(client, request, headers, timeout, host, attempts)
            except httpx.TransportError as exc:
                if not _is_transient(exc):
                    raise ConnectorError(
                        f"Request to {host} cannot be sent ({type(exc).__name__})",
                        retryable=False,
                        details={"host": host, "error": type(exc).__name__},
                    ) from None
                failure = exc
            except httpx.TooManyRedirects:
                raise ConnectorError(
                    f"Too many redirects from {host}", retryable=False, details={"host": host}
                ) from None

            if reply is not None and not is_retryable_status(reply.status):
                return reply
            retry_after = reply.retry_after if reply is not None else None
            wait = retry.wait_before_next(attempts, retry_after)
            if wait is None or time.monotonic() + wait >= deadline:
                if reply is not None:
                    return reply
                raise ConnectorError(
                    f"Could not reach {host} ({type(failure).__name__}) "
                    f"after {attempts} attempt(s)",
                    retryable=True,
                    details={"host": host, "error": type(failure).__name__, "attempts": attempts},
                )
            sleep(wait)


def _attempt(
    client: httpx.Client,
    request: OutboundRequest,
    headers: httpx.Headers,
    timeout: float,
    host: str,
    attempts: int,
) -> HttpReply:
    sent_headers = httpx.Headers(headers)
    if request.sign is not None:
        sent_headers.update(dict(request.sign(request.content or b"")))
    url = httpx.URL(request.url)
    if request.query:
        # Added to the URL's own query; httpx's params= would replace it.
        url = url.copy_merge_params(dict(request.query))
    with client.stream(
        request.method,
        url,
        headers=sent_headers,
        content=request.content,
        timeout=timeout,
    ) as response:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > request.max_response_bytes:
                raise ConnectorError(
                    f"Response from {host} is larger than {request.max_response_bytes} bytes",
                    retryable=False,
                    details={"host": host, "status": response.status_code},
                )
            chunks.append(chunk)
        return HttpReply(
            status=response.status_code,
            headers=response.headers,
            content=b"".join(chunks),
            host=host,
            attempts=attempts,
        )


# --- the base class of HTTP-speaking connectors -----------------------------------------------


class HttpConnectorBase(ConnectorAdapter):
    """What the ``http``, ``webhook`` and ``slack`` connectors share: the ``timeout``,
    ``retry`` and ``max_response_bytes`` options, and :meth:`deliver`.

    Subclasses list their own options in ``config_keys``. ``sleep`` is how retries wait; tests
    replace it on the instance to see the waits without spending them.
    """

    config_keys: ClassVar[frozenset[str]] = frozenset()
    common_keys: ClassVar[frozenset[str]] = frozenset({"timeout", "retry", "max_response_bytes"})

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        self.sleep: Callable[[float], None] = time.sleep

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        if not isinstance(config, Mapping):
            return ["config must be a mapping"]
        known = cls.config_keys | cls.common_keys
        problems = [f"unknown option {key!r}" for key in sorted(set(config) - known, key=str)]
        if "timeout" in config:
            problems.extend(number_problems("timeout", config["timeout"], 0.001, MAX_TIMEOUT))
        if "max_response_bytes" in config:
            value = config["max_response_bytes"]
            problems.extend(number_problems("max_response_bytes", value, 1, 1 << 30))
        problems.extend(RetryPolicy.problems(config.get("retry")))
        return problems

    @property
    def timeout(self) -> float:
        return float(self.config.get("timeout", DEFAULT_TIMEOUT))

    @property
    def max_response_bytes(self) -> int:
        return int(self.config.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES))

    def deliver(self, request: OutboundRequest, context: ConnectorContext) -> HttpReply:
        retry = RetryPolicy.from_config(self.config.get("retry"))
        return send(request, context, retry=retry, sleep=self.sleep)


def json_bytes(value: Any, name: str) -> bytes:
    """``value`` as compact UTF-8 JSON; a value JSON cannot carry is a params error."""
    try:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError) as exc:
        raise invalid_params(f"{name} is not JSON-serialisable ({exc})") from None


# --- the http connector -----------------------------------------------------------------------


class HttpConnector(HttpConnectorBase):
    """One HTTP request per step.

    Config: ``base_url`` (relative ``url`` params resolve against it, absolute ones must stay
    under it), ``headers`` sent with every request (only together with ``base_url``, so that a
    credential such as ``Authorization`` never goes to a host a step picks), and
    ``follow_redirects`` (off by default), plus the shared ``timeout``, ``retry`` and
    ``max_response_bytes``.
    """

    code = "http"
    name = "HTTP request"
    actions = {"request": "Send one HTTP request; returns status, headers and the parsed body."}
    config_keys = frozenset({"base_url", "headers", "follow_redirects"})
    methods = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
    param_keys = frozenset({"method", "url", "headers", "query", "json", "body", "timeout"})

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        problems = super().validate_config(config)
        if not isinstance(config, Mapping):
            return problems
        problems.extend(url_problems("base_url", config.get("base_url")))
        problems.extend(header_problems("headers", config.get("headers")))
        if config.get("headers") and config.get("base_url") is None:
            problems.append(
                "headers needs base_url: default headers (often credentials) are only sent "
                "to URLs under base_url"
            )
        if not isinstance(config.get("follow_redirects", False), bool):
            problems.append("follow_redirects must be true or false")
        return problems

    def execute(
        self, action: str, params: Mapping[str, Any], context: ConnectorContext
    ) -> ConnectorResult:
        self.check_action(action)
        request = self._request(params)
        reply = self.deliver(request, context)
        if reply.status >= 400:
            raise reply.error(self._secrets(params))
        body, encoding = reply.decoded_body()
        return ConnectorResult(
            data={
                "status": reply.status,
                "headers": reply.safe_headers(),
                "body": body,
                "body_encoding": encoding,
            },
            status=reply.status,
            metadata={"attempts": reply.attempts, "host": reply.host},
        )

    def _secrets(self, params: Mapping[str, Any]) -> list[str]:
        """Values that must not show in an error: the config's header values, and the step's
        own values of credential headers."""
        values = list(resolved_headers(self.config).values())
        for name, value in (params.get("headers") or {}).items():
            if name.lower() in CREDENTIAL_HEADERS or redaction.is_sensitive_key(name):
                values.append(value)
        return values

    def _request(self, params: Mapping[str, Any]) -> OutboundRequest:
        unknown = sorted(set(params) - self.param_keys, key=str)
        if unknown:
            raise invalid_params(f"unknown param(s) {', '.join(map(repr, unknown))}")
        method = params.get("method", "GET")
        if not isinstance(method, str) or method.upper() not in self.methods:
            raise invalid_params(f"method must be one of {', '.join(sorted(self.methods))}")

        headers = resolved_headers(self.config)
        extra = params.get("headers") or {}
        problems = header_problems("headers", extra)
        if problems or any(not isinstance(v, str) for v in extra.values()):
            raise invalid_params("; ".join(problems) or "header values must be strings")
        lowered = {name.lower(): name for name in headers}
        for name, value in extra.items():
            headers.pop(lowered.get(name.lower(), name), None)
            headers[name] = value

        content: bytes | None = None
        if "json" in params and "body" in params:
            raise invalid_params("give json or body, not both")
        if "json" in params:
            content = json_bytes(params["json"], "json")
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
        elif params.get("body") is not None:
            body = params["body"]
            if not isinstance(body, str | bytes):
                raise invalid_params("body must be a string (use json for structured data)")
            content = body.encode() if isinstance(body, str) else body

        query = params.get("query")
        if query is not None and not (
            isinstance(query, Mapping)
            and all(
                isinstance(name, str)
                and all(
                    _is_query_scalar(v) for v in (value if isinstance(value, list) else [value])
                )
                for name, value in query.items()
            )
        ):
            raise invalid_params("query must map names to strings, numbers or lists of them")

        timeout = params.get("timeout", self.timeout)
        problems = number_problems("timeout", timeout, 0.001, MAX_TIMEOUT)
        if problems:
            raise invalid_params(problems[0])

        return OutboundRequest(
            method=method.upper(),
            url=self._url(params.get("url")),
            headers=headers,
            query=query,
            content=content,
            timeout=float(timeout),
            follow_redirects=bool(self.config.get("follow_redirects", False)),
            max_response_bytes=self.max_response_bytes,
        )

    def _url(self, url: Any) -> str:
        if not isinstance(url, str) or not url:
            raise invalid_params("url is required")
        base = resolved_text(self.config, "base_url")
        absolute = bool(_SCHEME.match(url))
        if base is None:
            if not absolute or url.split(":", 1)[0].lower() not in ("http", "https"):
                raise invalid_params("url must be an absolute http(s) URL (or set base_url)")
            return url
        target = url if absolute else f"{base.rstrip('/')}/{url.lstrip('/')}"
        if not _is_under(target, base):
            raise invalid_params("url is outside the connector's base_url")
        return target


def _is_query_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _is_under(url: str, base: str) -> bool:
    """Whether ``url`` has ``base``'s origin and a path at or below ``base``'s path (after
    ``..`` segments are resolved, as they will be when the request is sent)."""
    try:
        target, prefix = httpx.URL(url), httpx.URL(base)
    except httpx.InvalidURL:
        return False
    if (target.scheme, target.host, target.port) != (prefix.scheme, prefix.host, prefix.port):
        return False
    root = prefix.path.rstrip("/")
    return not root or target.path == root or target.path.startswith(root + "/")
