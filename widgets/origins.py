"""Allowed origins of an embed: exact origins and ``*.example.com`` wildcards, matched strictly.

An origin is ``scheme://host[:port]`` as a browser sends it in the ``Origin`` header. A pattern
matches only an origin with the same scheme and the same effective port (the scheme's default
when none is written), and a host that is equal (exact pattern) or is a strict subdomain of the
wildcard's base on a label boundary (``*.example.com`` matches ``a.example.com`` and
``a.b.example.com``, never ``example.com``, ``evilexample.com`` or ``example.com.evil.io``).
Hosts are compared lower-cased and IDNA-encoded, so a Unicode look-alike is its own host. Anything
that is not a plain origin (a path, credentials, a query, ``null``) matches nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

__all__ = ["InvalidOriginPattern", "OriginPattern", "normalize_origin", "origin_allowed"]

DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


class InvalidOriginPattern(ValueError):
    """A configured origin pattern is not ``scheme://host[:port]`` or ``scheme://*.host``."""


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        default = DEFAULT_PORTS[self.scheme] == self.port
        return f"{self.scheme}://{self.host}" + ("" if default else f":{self.port}")


def _host(raw: str) -> str:
    host = raw.lower()
    if not host or host.endswith("."):
        raise ValueError("empty host or a trailing dot")
    if host.startswith("[") or _IPV4.match(host):
        return host
    try:
        encoded = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(str(exc)) from exc
    if not all(_LABEL.match(label) for label in encoded.split(".")):
        raise ValueError("invalid host")
    return encoded


def parse_origin(text: str) -> Origin:
    """The origin ``text`` names; ``ValueError`` for anything but ``scheme://host[:port]``."""
    if not isinstance(text, str) or text != text.strip() or not text:
        raise ValueError("not an origin")
    parts = urlsplit(text)
    if parts.scheme not in DEFAULT_PORTS or parts.path or parts.query or parts.fragment:
        raise ValueError("not an origin")
    if "@" in parts.netloc or parts.hostname is None:
        raise ValueError("not an origin")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("invalid port") from exc
    raw_host = parts.netloc.rsplit(":", 1)[0] if parts.port is not None else parts.netloc
    return Origin(parts.scheme, _host(raw_host), port or DEFAULT_PORTS[parts.scheme])


def normalize_origin(text: str) -> str | None:
    """``text`` as a canonical origin string, or None when it is not a plain origin."""
    try:
        return str(parse_origin(text))
    except ValueError:
        return None


@dataclass(frozen=True)
class OriginPattern:
    """One allowed-origins entry: an exact origin, or a wildcard over the subdomains of a host."""

    origin: Origin
    wildcard: bool

    @classmethod
    def parse(cls, text: str) -> OriginPattern:
        wildcard = False
        candidate = text.strip()
        scheme, sep, rest = candidate.partition("://")
        if sep and rest.startswith("*."):
            wildcard, candidate = True, f"{scheme}://{rest[2:]}"
        try:
            origin = parse_origin(candidate)
        except ValueError as exc:
            raise InvalidOriginPattern(
                f"{text!r} is not an origin like https://shop.example.com or https://*.example.com"
            ) from exc
        if wildcard and (origin.host.startswith("[") or _IPV4.match(origin.host)):
            raise InvalidOriginPattern(f"{text!r}: a wildcard needs a domain name")
        if wildcard and "." not in origin.host:
            raise InvalidOriginPattern(f"{text!r}: a wildcard over a top-level domain")
        return cls(origin, wildcard)

    def matches(self, origin: Origin) -> bool:
        if (origin.scheme, origin.port) != (self.origin.scheme, self.origin.port):
            return False
        if not self.wildcard:
            return origin.host == self.origin.host
        return origin.host.endswith("." + self.origin.host)

    def __str__(self) -> str:
        text = str(self.origin)
        return text.replace("://", "://*.", 1) if self.wildcard else text


def origin_allowed(origin: str | None, patterns: list[str]) -> bool:
    """Whether the ``Origin`` header value ``origin`` matches one of ``patterns``.

    A missing or malformed origin matches nothing; a malformed pattern matches nothing (the
    admin refuses to save one).
    """
    if not origin:
        return False
    try:
        parsed = parse_origin(origin)
    except ValueError:
        return False
    for text in patterns:
        try:
            if OriginPattern.parse(text).matches(parsed):
                return True
        except InvalidOriginPattern:
            continue
    return False
