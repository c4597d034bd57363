"""Egress policy: the one guard every outbound URL passes through.

Connectors, LLM provider ``base_url``\\ s, MCP servers and RAG sources all fetch URLs that a
tenant (or a prompt) can influence, so each URL is checked here before any byte leaves:

* :func:`check_url` parses the URL strictly, applies the scheme, port and host allowlists,
  resolves the host (every A/AAAA record) and refuses it if *any* address is loopback, private,
  link-local, cloud metadata or otherwise special. It returns a :class:`CheckedURL` holding the
  approved addresses, or raises :class:`EgressDenied`.
* :func:`http_client` / :func:`async_http_client` return httpx clients whose transport runs
  :func:`check_url` on every request, redirect hops included (httpx sends each hop as a new
  request), and then connects to exactly the addresses that were approved. There is no second
  DNS lookup, so DNS rebinding has no window; the ``Host`` header, TLS SNI and certificate
  verification still use the original hostname. :func:`httpx2_client` and
  :func:`async_httpx2_client` are the same for ``httpx2``, the httpx fork the openai, anthropic
  and MCP SDKs are built on.

Ambiguous spellings are refused rather than interpreted: a URL that two parsers could read
differently (``http://127.1/``, ``http://0x7f.1/``, ``http://a@b/``, backslashes, percent-encoded
hosts) never reaches a resolver. See ``docs/governance.md`` ("Egress policy").
"""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import re
import socket
import ssl
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import httpcore
import httpcore2
import httpx
import httpx2
import idna

from automate_core.conf import automate_settings
from automate_core.errors import AutomateError

if TYPE_CHECKING:
    from automate_core.tenancy.models import Tenant

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: A callable with :func:`socket.getaddrinfo`'s signature. It is called as
#: ``resolver(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM)``; tests inject fakes here.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

__all__ = [
    "AsyncEgressTransport",
    "AsyncHttpx2EgressTransport",
    "CheckedURL",
    "EgressDenied",
    "EgressTransport",
    "Httpx2EgressTransport",
    "Resolver",
    "async_http_client",
    "async_httpx2_client",
    "check_url",
    "host_matches",
    "http_client",
    "httpx2_client",
    "validate_host_pattern",
]


class EgressDenied(AutomateError):
    """The egress policy refused an outbound URL; ``reason`` says which rule.

    Not an ``httpx.HTTPError`` on purpose: a refusal is a policy decision, not a transient
    network failure, so retry loops that catch transport errors do not retry it. The message
    names the host at most, never the full URL (it may carry secrets in its query).
    """

    status_code = 403
    code = "egress_denied"
    default_message = "The egress policy refused this outbound request."

    def __init__(self, reason: str, *, host: str | None = None) -> None:
        self.reason = reason
        self.host = host
        details: dict[str, str] = {"reason": reason}
        if host is not None:
            details["host"] = host
        super().__init__(f"Egress denied: {reason}", details=details)


@dataclass(frozen=True)
class CheckedURL:
    """A URL the policy approved, and the only addresses a connection to it may use."""

    url: str
    scheme: str
    #: Lowercase ASCII (IDNA) hostname without a trailing dot, or a canonical IP literal
    #: without brackets.
    host: str
    #: The explicit port, or the scheme's default.
    port: int
    #: Every address the host resolved to, in resolver order; all of them passed the policy.
    addresses: tuple[IPAddress, ...]

    @property
    def is_ip_literal(self) -> bool:
        return _parse_ip(self.host) is not None


# --- address classification -------------------------------------------------------------------

# Cloud metadata endpoints: refused even when EGRESS_ALLOW_PRIVATE covers their range, because
# they hand out the platform's own credentials.
_METADATA_ADDRESSES: dict[IPAddress, str] = {
    ipaddress.ip_address("169.254.169.254"): "cloud metadata (AWS, GCP, Azure, OpenStack, ...)",
    ipaddress.ip_address("169.254.170.2"): "cloud metadata (AWS ECS task credentials)",
    ipaddress.ip_address("169.254.170.23"): "cloud metadata (AWS EKS pod identity)",
    ipaddress.ip_address("100.100.100.200"): "cloud metadata (Alibaba Cloud)",
    ipaddress.ip_address("192.0.0.192"): "cloud metadata (Oracle Cloud)",
    ipaddress.ip_address("168.63.129.16"): "cloud metadata (Azure WireServer)",
    ipaddress.ip_address("fd00:ec2::254"): "cloud metadata (AWS IMDS over IPv6)",
    ipaddress.ip_address("fd00:ec2::23"): "cloud metadata (AWS EKS pod identity over IPv6)",
}
_METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)

# IANA IPv4 special-purpose registry plus RFC 1918 / 6598; (network, why, never exemptable).
_IPV4_REFUSED: tuple[tuple[ipaddress.IPv4Network, str, bool], ...] = tuple(
    (ipaddress.IPv4Network(net), why, hard)
    for net, why, hard in (
        ("0.0.0.0/8", "unspecified / 'this network'", True),
        ("10.0.0.0/8", "private network", False),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT)", False),
        ("127.0.0.0/8", "loopback", False),
        ("169.254.0.0/16", "link-local", False),
        ("172.16.0.0/12", "private network", False),
        ("192.0.0.0/24", "IETF protocol assignments", False),
        ("192.0.2.0/24", "documentation (TEST-NET-1)", False),
        ("192.88.99.0/24", "6to4 relay anycast", False),
        ("192.168.0.0/16", "private network", False),
        ("198.18.0.0/15", "benchmarking", False),
        ("198.51.100.0/24", "documentation (TEST-NET-2)", False),
        ("203.0.113.0/24", "documentation (TEST-NET-3)", False),
        ("224.0.0.0/4", "multicast", True),
        ("240.0.0.0/4", "reserved / broadcast", True),
    )
)

_V6 = ipaddress.IPv6Network
_IPV6_GLOBAL_UNICAST = _V6("2000::/3")
_IPV6_IPV4_COMPATIBLE = _V6("::/96")
_IPV6_NAT64 = _V6("64:ff9b::/96")
# Outside 2000::/3 everything is refused; these only name the reason.
_IPV6_NON_GLOBAL: tuple[tuple[ipaddress.IPv6Network, str, bool], ...] = (
    (_V6("::/128"), "unspecified", True),
    (_V6("::1/128"), "loopback", False),
    (_V6("64:ff9b:1::/48"), "local-use NAT64", False),
    (_V6("100::/64"), "discard-only", False),
    (_V6("fc00::/7"), "unique local (private network)", False),
    (_V6("fe80::/10"), "link-local", False),
    (_V6("fec0::/10"), "site-local (deprecated)", False),
    (_V6("ff00::/8"), "multicast", True),
)
_IPV6_SPECIAL_GLOBAL: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("2001::/23"), "IETF protocol assignments"),
    (_V6("3fff::/20"), "documentation"),
)


@dataclass(frozen=True)
class _Refusal:
    why: str
    hard: bool  # metadata, unspecified, multicast: EGRESS_ALLOW_PRIVATE cannot exempt these


def _classify(address: IPAddress) -> _Refusal | None:
    """Why ``address`` is not a public unicast destination, or None if it is."""
    if address in _METADATA_ADDRESSES:
        return _Refusal(_METADATA_ADDRESSES[address], hard=True)
    if isinstance(address, ipaddress.IPv4Address):
        for network4, why, hard in _IPV4_REFUSED:
            if address in network4:
                return _Refusal(f"{why} {network4}", hard)
        return None

    if address.scope_id:
        return _Refusal("scoped (zone) IPv6 address", hard=False)
    if address.ipv4_mapped is not None:
        return _embedded("IPv4-mapped", address.ipv4_mapped)
    for network, why, hard in _IPV6_NON_GLOBAL:
        if address in network:
            return _Refusal(f"{why} {network}", hard)
    if address in _IPV6_IPV4_COMPATIBLE:
        return _Refusal("deprecated IPv4-compatible IPv6 address ::/96", hard=False)
    if address in _IPV6_NAT64:
        return _embedded("NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address not in _IPV6_GLOBAL_UNICAST:
        return _Refusal("not a global unicast IPv6 address (outside 2000::/3)", hard=False)
    if address.teredo is not None:
        server, client = address.teredo
        return _embedded("Teredo", server) or _embedded("Teredo", client)
    if address.sixtofour is not None:
        return _embedded("6to4", address.sixtofour)
    for network, why in _IPV6_SPECIAL_GLOBAL:
        if address in network:
            return _Refusal(f"{why} {network}", hard=False)
    return None


def _embedded(kind: str, ipv4: ipaddress.IPv4Address) -> _Refusal | None:
    refusal = _classify(ipv4)
    if refusal is None:
        return None
    return _Refusal(f"{kind} address embedding {ipv4}: {refusal.why}", refusal.hard)


# --- URL parsing ------------------------------------------------------------------------------

# RFC 3986 appendix B, split into scheme, authority (required here), and the rest.
_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(?://([^/?#]*))?(.*)$", re.DOTALL)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# Used with fullmatch(), so a trailing newline never slips through as "$" would let it.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_STRICT_IPV4_RE = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
_NUMERIC_LABEL_RE = re.compile(r"[0-9]+|0x[0-9a-f]*")
_LABEL_RE = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_LOOPBACK_NAMES = ("localhost",)

# The Fetch standard's "bad ports": services that must never be spoken to with HTTP.
# fmt: off
FETCH_BAD_PORTS = frozenset(
    {
        1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95,
        101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161,
        179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563,
        587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060,
        5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
    }
)
# fmt: on


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    ip: IPAddress | None


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _parse(url: str) -> _Target:
    for char in url:
        if char == "\\":
            raise EgressDenied("backslashes in URLs are refused (parsers disagree on them)")
        if (
            ord(char) <= 0x20
            or ord(char) == 0x7F
            or (ord(char) > 0x7F and unicodedata.category(char)[0] in "CZ")
        ):
            raise EgressDenied("whitespace or control characters in URLs are refused")

    match = _URL_RE.match(url)
    if match is None:
        raise EgressDenied("not an absolute URL")
    scheme, authority, _ = match.groups()
    scheme = scheme.lower()
    if scheme not in {s.lower() for s in automate_settings.EGRESS_SCHEMES}:
        raise EgressDenied(f"scheme {scheme!r} is not allowed")
    if not authority:
        raise EgressDenied("URL has no host")
    if "@" in authority:
        raise EgressDenied("credentials (userinfo) in URLs are refused")

    if authority.startswith("["):
        literal, bracket, rest = authority[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise EgressDenied("malformed IPv6 literal")
        if "%" in literal:
            raise EgressDenied("IPv6 zone identifiers are refused")
        try:
            ip: IPAddress | None = ipaddress.IPv6Address(literal)
        except ValueError:
            raise EgressDenied("malformed IPv6 literal") from None
        host = str(ip)
        has_port, port_text = bool(rest), rest[1:]
    else:
        if authority.count(":") > 1:
            raise EgressDenied("malformed authority (more than one ':')")
        raw_host, colon, port_text = authority.partition(":")
        has_port = bool(colon)
        host = _normalize_hostname(raw_host)
        ip = ipaddress.IPv4Address(host) if _STRICT_IPV4_RE.fullmatch(host) else None

    port = _check_port(scheme, port_text if has_port else None, host)
    return _Target(scheme=scheme, host=host, port=port, ip=ip)


def _normalize_hostname(raw: str) -> str:
    if not raw:
        raise EgressDenied("URL has no host")
    if "%" in raw:
        raise EgressDenied("percent-encoded hosts are refused")
    host = raw.lower()
    if not host.isascii():
        try:
            host = idna.encode(host).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise EgressDenied("invalid internationalized hostname") from None
    if host.endswith("."):
        host = host[:-1]
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise EgressDenied("invalid hostname")
    # WHATWG URL parsing reads any host whose last label is numeric as an IPv4 address, in
    # decimal, octal or hex, with 1 to 4 parts: only the strict dotted-quad is accepted.
    if _NUMERIC_LABEL_RE.fullmatch(labels[-1]) and not _STRICT_IPV4_RE.fullmatch(host):
        raise EgressDenied(
            "ambiguous numeric host: decimal, octal, hex and short-form IPv4 spellings "
            "are refused; write a dotted quad"
        )
    return host


def _check_port(scheme: str, text: str | None, host: str) -> int:
    if text is None:
        if scheme not in _DEFAULT_PORTS:
            raise EgressDenied(f"scheme {scheme!r} needs an explicit port", host=host)
        port = _DEFAULT_PORTS[scheme]
    else:
        if not re.fullmatch(r"[0-9]{1,5}", text) or not 1 <= int(text) <= 65535:
            raise EgressDenied("invalid port", host=host)
        port = int(text)
    allowed = automate_settings.EGRESS_PORTS
    if allowed is not None:
        if port not in {int(p) for p in allowed}:
            raise EgressDenied(f"port {port} is not in AUTOMATE['EGRESS_PORTS']", host=host)
    elif port in FETCH_BAD_PORTS:
        raise EgressDenied(f"port {port} belongs to a non-HTTP service", host=host)
    return port


# --- host allowlists --------------------------------------------------------------------------


def validate_host_pattern(pattern: str) -> str:
    """Return ``pattern`` in canonical form, or raise ValueError.

    A pattern is a hostname (``api.openai.com``), a wildcard ``*.stripe.com`` that matches
    every subdomain at any depth but **not** the apex ``stripe.com`` (list both when both are
    meant), or an IP literal (``203.0.113.7``, ``2001:db8::1`` with or without brackets),
    which matches only that literal written in a URL.
    """
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError("empty host pattern")
    text = pattern.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    ip = _parse_ip(text)
    if ip is not None:
        return str(ip)
    wildcard = text.startswith("*.")
    name = text[2:] if wildcard else text
    if "*" in name:
        raise ValueError(f"{pattern!r}: '*' is only allowed as a leading '*.' label")
    try:
        name = _normalize_hostname(name)
    except EgressDenied as exc:
        raise ValueError(f"{pattern!r}: {exc.reason}") from None
    return f"*.{name}" if wildcard else name


def host_matches(host: str, pattern: str) -> bool:
    """Whether the canonical ``host`` matches ``pattern``; an invalid pattern matches nothing."""
    try:
        canonical = validate_host_pattern(pattern)
    except ValueError:
        return False
    if canonical.startswith("*."):
        return host.endswith(canonical[1:])
    return host == canonical


def _tenant_allowlist(tenant: Tenant | None) -> list[str]:
    if tenant is None:
        return []
    patterns = getattr(tenant, "egress_allowlist", None) or []
    return [patterns] if isinstance(patterns, str) else list(patterns)


def _check_host_allowlists(host: str, tenant: Tenant | None) -> None:
    # Each non-empty list must match: the operator's list is a ceiling no tenant can widen.
    global_patterns = list(automate_settings.EGRESS_ALLOWLIST or [])
    if global_patterns and not any(host_matches(host, p) for p in global_patterns):
        raise EgressDenied(f"host {host} is not in AUTOMATE['EGRESS_ALLOWLIST']", host=host)
    tenant_patterns = _tenant_allowlist(tenant)
    if tenant_patterns and not any(host_matches(host, p) for p in tenant_patterns):
        raise EgressDenied(f"host {host} is not in the tenant's egress allowlist", host=host)


def _is_exempt(host: str, address: IPAddress) -> bool:
    """Whether EGRESS_ALLOW_PRIVATE lets ``host`` reach the non-public ``address``."""
    for entry in automate_settings.EGRESS_ALLOW_PRIVATE or []:
        try:
            network = ipaddress.ip_network(str(entry).strip().strip("[]"), strict=False)
        except ValueError:
            if host_matches(host, str(entry)):
                return True
            continue
        if address.version == network.version and address in network:
            return True
    return False


# --- the check --------------------------------------------------------------------------------


def check_url(
    url: str | httpx.URL | httpx2.URL,
    tenant: Tenant | None = None,
    *,
    resolver: Resolver | None = None,
) -> CheckedURL:
    """Approve ``url`` for an outbound request on behalf of ``tenant``, or raise EgressDenied.

    The host is resolved once, here; callers that open their own connections must connect only
    to ``CheckedURL.addresses`` (the clients from :func:`http_client` do), or a second lookup
    could answer differently (DNS rebinding). ``resolver`` defaults to
    :func:`socket.getaddrinfo`.
    """
    text = str(url) if isinstance(url, httpx.URL | httpx2.URL) else url
    if not isinstance(text, str):
        raise EgressDenied("URL must be a string")
    target = _parse(text)
    host = target.host

    if host in _METADATA_HOSTS:
        raise EgressDenied(f"{host} is a cloud metadata host", host=host)
    _check_host_allowlists(host, tenant)

    if target.ip is not None:
        addresses: tuple[IPAddress, ...] = (target.ip,)
    else:
        if (host in _LOOPBACK_NAMES or host.endswith(".localhost")) and not _is_exempt(
            host, ipaddress.ip_address("127.0.0.1")
        ):
            raise EgressDenied(f"{host} is a loopback name", host=host)
        addresses = _resolve(host, target.port, resolver or socket.getaddrinfo)

    for address in addresses:
        refusal = _classify(address)
        if refusal is None or (not refusal.hard and _is_exempt(host, address)):
            continue
        via = "" if target.ip is not None else f"{host} resolves to "
        raise EgressDenied(f"{via}{address}, which is {refusal.why}", host=host)

    return CheckedURL(
        url=text, scheme=target.scheme, host=host, port=target.port, addresses=addresses
    )


def _resolve(host: str, port: int, resolver: Resolver) -> tuple[IPAddress, ...]:
    try:
        answers = resolver(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise EgressDenied(f"{host} could not be resolved ({exc})", host=host) from None
    addresses: list[IPAddress] = []
    for family, *_, sockaddr in answers:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = _parse_ip(str(sockaddr[0]))
        if address is None:
            raise EgressDenied(f"{host} resolved to a malformed address", host=host)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise EgressDenied(f"{host} has no A or AAAA records", host=host)
    return tuple(addresses)


# --- pinned connections -----------------------------------------------------------------------

# The CheckedURL of the request being sent. httpcore opens a connection inside the requesting
# thread or task (the one that runs the transport), so the network backend can read it here.
_current_check: contextvars.ContextVar[CheckedURL | None] = contextvars.ContextVar(
    "automate_egress_check", default=None
)


def _checked_for(host: str, port: int) -> CheckedURL:
    checked = _current_check.get()
    canonical = host.lower().rstrip(".")
    ip = _parse_ip(canonical)
    if ip is not None:
        canonical = str(ip)
    if checked is None or checked.host != canonical or checked.port != port:
        raise EgressDenied(f"connection to {host}:{port} was not checked by the egress policy")
    return checked


@contextmanager
def _pinned_to(checked: CheckedURL) -> Iterator[None]:
    """Let the pinned backends of this thread or task connect to ``checked`` only."""
    token = _current_check.set(checked)
    try:
        yield
    finally:
        _current_check.reset(token)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the approved addresses of the current request, never to a fresh lookup.

    ``core`` is the httpcore module ``inner`` comes from: ``httpcore`` or its fork ``httpcore2``
    (same backend API), whose connect errors are the ones to fall through to the next address.
    """

    def __init__(self, inner: Any, core: ModuleType = httpcore) -> None:
        self._inner = inner
        self._connect_errors: tuple[type[Exception], ...] = (core.ConnectError, core.ConnectTimeout)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        checked = _checked_for(host, port)
        last_error: Exception | None = None
        for address in checked.addresses:
            try:
                return self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except self._connect_errors as exc:
                last_error = exc
        assert last_error is not None  # addresses is never empty
        raise last_error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise EgressDenied("unix sockets are not reachable through the egress policy")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncPinnedBackend(httpcore.AsyncNetworkBackend):
    """The async twin of :class:`_PinnedBackend` (``core`` as there)."""

    def __init__(self, inner: Any, core: ModuleType = httpcore) -> None:
        self._inner = inner
        self._connect_errors: tuple[type[Exception], ...] = (core.ConnectError, core.ConnectTimeout)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        checked = _checked_for(host, port)
        last_error: Exception | None = None
        for address in checked.addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except self._connect_errors as exc:
                last_error = exc
        assert last_error is not None  # addresses is never empty
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressDenied("unix sockets are not reachable through the egress policy")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class _GuardedPool:
    """The set-up the four guarded transports share: their own connection pool over a pinned
    network backend.

    httpx's transports have no hook for a network backend; they keep all their state in
    ``_pool``, which this builds instead of calling their ``__init__``. Subclasses name their
    httpx flavour (``httpx`` over ``httpcore``, ``httpx2`` over ``httpcore2``) and whether they
    are async.
    Same options as :class:`httpx.HTTPTransport` except ``proxy`` and ``uds``, which would route
    around the check.
    """

    _core: ModuleType
    _httpx: ModuleType
    _is_async: bool
    _pool: Any

    def __init__(
        self,
        *,
        tenant: Tenant | None = None,
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits | httpx2.Limits | None = None,
        local_address: str | None = None,
        retries: int = 0,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> None:
        self._tenant = tenant
        self._resolver = resolver
        limits = limits or _DEFAULT_LIMITS
        core = self._core
        backend: Any
        if self._is_async:
            backend, pool_class = (
                _AsyncPinnedBackend(core.AnyIOBackend(), core),
                core.AsyncConnectionPool,
            )
        else:
            backend, pool_class = _PinnedBackend(core.SyncBackend(), core), core.ConnectionPool
        self._pool = pool_class(
            network_backend=backend,
            ssl_context=self._httpx.create_ssl_context(
                verify=verify, cert=cert, trust_env=trust_env
            ),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=http1,
            http2=http2,
            local_address=local_address,
            retries=retries,
            socket_options=socket_options,
        )

    def _check(self, url: Any) -> CheckedURL:
        return check_url(url, self._tenant, resolver=self._resolver)

    async def _check_async(self, url: Any) -> CheckedURL:
        # Resolving a host name blocks: that check runs in a worker thread. An IP literal
        # needs no lookup, so it is checked here, without a thread hop on every request.
        if _parse_ip(str(getattr(url, "host", ""))) is None:
            return await anyio.to_thread.run_sync(functools.partial(self._check, url))
        return self._check(url)


class EgressTransport(_GuardedPool, httpx.HTTPTransport):
    """An httpx transport that checks every request and connects only to approved addresses.

    A kept-alive connection is reused only for the same scheme, host and port, and its address
    was approved when it was opened.
    """

    _core = httpcore
    _httpx = httpx
    _is_async = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with _pinned_to(self._check(request.url)):
            return super().handle_request(request)


class Httpx2EgressTransport(_GuardedPool, httpx2.HTTPTransport):
    """:class:`EgressTransport` for ``httpx2``, the httpx fork the provider SDKs are built on.

    The same pinned backend runs over ``httpcore2``'s pool, so the same guarantees hold.
    """

    _core = httpcore2
    _httpx = httpx2
    _is_async = False

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        with _pinned_to(self._check(request.url)):
            return super().handle_request(request)


class AsyncEgressTransport(_GuardedPool, httpx.AsyncHTTPTransport):
    """The async twin of :class:`EgressTransport`."""

    _core = httpcore
    _httpx = httpx
    _is_async = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _pinned_to(await self._check_async(request.url)):
            return await super().handle_async_request(request)


class AsyncHttpx2EgressTransport(_GuardedPool, httpx2.AsyncHTTPTransport):
    """The async twin of :class:`Httpx2EgressTransport` (the MCP SDK's HTTP transports)."""

    _core = httpcore2
    _httpx = httpx2
    _is_async = True

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        with _pinned_to(await self._check_async(request.url)):
            return await super().handle_async_request(request)


# Client options that would send requests around the guarded transport.
_BYPASSING_OPTIONS = ("transport", "mounts", "proxy", "proxies", "app", "uds")
# Client options that configure the transport; httpx ignores them when a transport is given.
_TRANSPORT_OPTIONS = ("verify", "cert", "http1", "http2", "limits")


def _split_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    bypassing = [name for name in _BYPASSING_OPTIONS if name in kwargs]
    if bypassing:
        raise TypeError(f"{', '.join(bypassing)} would bypass the egress policy")
    transport_options = {name: kwargs.pop(name) for name in _TRANSPORT_OPTIONS if name in kwargs}
    transport_options["trust_env"] = kwargs.get("trust_env", True)
    return transport_options


def http_client(
    tenant: Tenant | None = None, *, resolver: Resolver | None = None, **httpx_kwargs: Any
) -> httpx.Client:
    """An :class:`httpx.Client` whose every request, redirect hops included, passes the policy.

    Takes httpx.Client's keyword arguments, except those that would bypass the guarded
    transport (``transport``, ``mounts``, ``proxy``, ``app``). Environment proxies are ignored.
    A refused request raises :class:`EgressDenied` from the call that sent it.
    """
    options = _split_options(httpx_kwargs)
    transport = EgressTransport(tenant=tenant, resolver=resolver, **options)
    return httpx.Client(transport=transport, **httpx_kwargs)


def async_http_client(
    tenant: Tenant | None = None, *, resolver: Resolver | None = None, **httpx_kwargs: Any
) -> httpx.AsyncClient:
    """The :class:`httpx.AsyncClient` counterpart of :func:`http_client`."""
    options = _split_options(httpx_kwargs)
    transport = AsyncEgressTransport(tenant=tenant, resolver=resolver, **options)
    return httpx.AsyncClient(transport=transport, **httpx_kwargs)


def httpx2_client(
    tenant: Tenant | None = None, *, resolver: Resolver | None = None, **httpx_kwargs: Any
) -> httpx2.Client:
    """:func:`http_client` for ``httpx2``: pass it as the openai/anthropic SDKs' ``http_client``.

    Every request the SDK sends (and every redirect hop) passes the policy for ``tenant`` and
    connects only to the approved addresses; a refusal raises :class:`EgressDenied` inside the
    SDK, which wraps it in its connection error (``__cause__`` is the EgressDenied).
    """
    options = _split_options(httpx_kwargs)
    transport = Httpx2EgressTransport(tenant=tenant, resolver=resolver, **options)
    return httpx2.Client(transport=transport, **httpx_kwargs)


def async_httpx2_client(
    tenant: Tenant | None = None, *, resolver: Resolver | None = None, **httpx_kwargs: Any
) -> httpx2.AsyncClient:
    """The :class:`httpx2.AsyncClient` counterpart of :func:`httpx2_client`: pass it as the MCP
    SDK's ``http_client`` (or return it from an ``httpx_client_factory``)."""
    options = _split_options(httpx_kwargs)
    transport = AsyncHttpx2EgressTransport(tenant=tenant, resolver=resolver, **options)
    return httpx2.AsyncClient(transport=transport, **httpx_kwargs)
