"""Rate limits in Redis: a sliding-window log, checked and recorded in one atomic round trip.

Why a sliding-window log rather than a token bucket: "100/min" then means exactly what it says,
at most 100 admitted requests in *any* 60-second window, with no burst at window edges and no
refill arithmetic for users to reason about; ``retry_after`` is exact (when the oldest admitted
request leaves the window). It stores one sorted-set entry per admitted request, so memory is
bounded by the limit per key; that is cheap at API rates (a 1,000/min key is ~50 KB) and the
key expires one window after its last admitted request. Refused requests are not recorded, so
a client that keeps hammering is not locked out for longer.

The clock is Redis's (``TIME``), so app servers with skewed clocks agree. Keys are
``{RATE_LIMIT_KEY_PREFIX}:{scope}:{identity}``; callers choose the scope (an endpoint, a
connector) and the identity (a tenant, an API key, a client address).
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from automate_core.conf import automate_settings

if TYPE_CHECKING:
    from redis.commands.core import Script

logger = logging.getLogger("automate.ratelimit")

# KEYS[1]: the window's sorted set (score = admission time in microseconds).
# ARGV: limit, window in microseconds, now in microseconds ("" = Redis TIME), a unique member.
# Returns {allowed (0/1), remaining, retry_after, reset}, the last two in microseconds: reset is
# when the oldest admitted request leaves the window (the next unit of quota comes back).
_SLIDING_WINDOW = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now
if ARGV[3] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[3])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, limit - count - 1, 0, tonumber(oldest[2]) + window - now}
end
-- Refused: free again when enough admitted requests have left the window for one more.
local entry = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
local wait = tonumber(entry[2]) + window - now
return {0, 0, wait, wait}
"""

_UNITS = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}  # fmt: skip
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Rate:
    """``limit`` admissions per ``window`` seconds."""

    limit: int
    window: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"100/min"``, ``"5/s"``, ``"1000/hour"``, ``"10/30s"``, ``"2/day"``."""
        match = _RATE.fullmatch(text)
        unit = _UNITS.get(match[3].lower()) if match else None
        if match is None or unit is None or int(match[1]) < 1:
            raise ValueError(f"invalid rate {text!r}; expected like '100/min' or '10/30s'")
        return cls(limit=int(match[1]), window=float(int(match[2] or 1) * unit))

    def __str__(self) -> str:
        return f"{self.limit}/{self.window:g}s"


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int
    # Seconds until a refused request would be admitted; 0.0 when allowed.
    retry_after: float
    # Seconds until the oldest admitted request leaves the window and quota comes back (the
    # ``RateLimit-Reset`` header); equals ``retry_after`` when refused.
    reset: float = 0.0
    # True when Redis could not be reached and the fail-open policy let the request through.
    degraded: bool = False

    def headers(self) -> dict[str, str]:
        """``RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (whole seconds, rounded up), as
        the IETF httpapi RateLimit header draft names them. Empty when the limit could not be
        checked (``degraded``): the numbers would be made up."""
        if self.degraded:
            return {}
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset)),
        }

    def is_tighter_than(self, other: RateLimitResult) -> bool:
        """Of two limits on one request, the one to report: refused over admitted, then fewer
        requests left, then the longer wait."""
        return (not self.allowed, -self.remaining, self.reset) > (
            not other.allowed,
            -other.remaining,
            other.reset,
        )


class RateLimitUnavailable(RuntimeError):
    """Redis could not be reached and ``RATE_LIMIT_FAIL_OPEN`` is off."""


class RateLimiter:
    """Checks and records hits against sliding windows in one Redis.

    ``client`` defaults to the Redis behind the cache ``AUTOMATE["RATE_LIMIT_CACHE"]``; the
    script is loaded once per client and then runs with one ``EVALSHA``.
    """

    def __init__(self, client: redis.Redis | None = None, *, prefix: str | None = None) -> None:
        self._client = client
        self._prefix = prefix
        self._script: Script | None = None

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = _cache_client(automate_settings.RATE_LIMIT_CACHE)
        return self._client

    @property
    def prefix(self) -> str:
        return self._prefix if self._prefix is not None else automate_settings.RATE_LIMIT_KEY_PREFIX

    def key(self, scope: str, identity: str) -> str:
        return f"{self.prefix}:{scope}:{identity}"

    def hit(
        self,
        scope: str,
        identity: str,
        rate: Rate | str,
        *,
        now: float | None = None,
        fail_open: bool | None = None,
    ) -> RateLimitResult:
        """Record one hit if the window has room; say whether it was admitted.

        ``now`` (seconds) replaces Redis's clock, for tests. When Redis fails, the request is
        admitted (``degraded=True``) or :class:`RateLimitUnavailable` is raised, as
        ``fail_open`` (default ``AUTOMATE["RATE_LIMIT_FAIL_OPEN"]``) says.
        """
        rate = Rate.parse(rate) if isinstance(rate, str) else rate
        if self._script is None:
            self._script = self.client.register_script(_SLIDING_WINDOW)
        args = [
            rate.limit,
            math.ceil(rate.window * 1_000_000),
            "" if now is None else round(now * 1_000_000),
            uuid.uuid4().hex,
        ]
        try:
            allowed, remaining, retry_us, reset_us = self._script(
                keys=[self.key(scope, identity)], args=args
            )
        except redis.RedisError as exc:
            if fail_open if fail_open is not None else automate_settings.RATE_LIMIT_FAIL_OPEN:
                logger.warning("Rate limit %s not checked, Redis failed: %s", scope, exc)
                return RateLimitResult(True, rate.limit, rate.limit, 0.0, degraded=True)
            raise RateLimitUnavailable(f"rate limit {scope!r} could not be checked") from exc
        return RateLimitResult(
            allowed=bool(allowed),
            limit=rate.limit,
            remaining=int(remaining),
            retry_after=max(int(retry_us), 0) / 1_000_000,
            reset=max(int(reset_us), 0) / 1_000_000,
        )

    def reset(self, scope: str, identity: str) -> None:
        """Forget a window (an operator lifting a limit, or tests)."""
        self.client.delete(self.key(scope, identity))


def _cache_client(alias: str) -> redis.Redis:
    from django.core.cache import caches

    backend = caches[alias]
    get_client = getattr(getattr(backend, "_cache", None), "get_client", None)
    if get_client is None:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"AUTOMATE['RATE_LIMIT_CACHE'] = {alias!r} must be a django RedisCache"
        )
    client: redis.Redis = get_client(write=True)
    return client


_limiter: RateLimiter | None = None


def get_rate_limiter() -> RateLimiter:
    """The process-wide limiter over the configured cache's Redis."""
    global _limiter
    if _limiter is None:
        _limiter = RateLimiter()
    return _limiter


def hit(scope: str, identity: str, rate: Rate | str) -> RateLimitResult:
    """Record a hit on ``scope`` for ``identity`` with the shared limiter."""
    return get_rate_limiter().hit(scope, identity, rate)


# -- DRF --------------------------------------------------------------------------------------


class TenantRateThrottle(BaseThrottle):
    """Limits a view per tenant; views opt in with ``rate_limit = "100/min"``.

    The scope is ``view.throttle_scope`` when set (views sharing a scope share a budget), else
    the view class, so each endpoint has its own window. ``AUTOMATE["RATE_LIMITS"][scope]``
    overrides the view's rate (operators tune without a deploy); a view with neither is not
    limited. Requests with no tenant are limited per client address. A refusal is a 429
    NormalizedError with ``Retry-After`` (see ``automate_core.api.errors``).

    Every response of a limited view, admitted or refused, carries ``RateLimit-Limit``,
    ``RateLimit-Remaining`` and ``RateLimit-Reset``: the throttle puts them in the view's
    ``headers``, which DRF's ``finalize_response`` copies onto whatever response the view ends
    with. With several limits on one view, the tightest is reported.
    """

    def __init__(self) -> None:
        self.result: RateLimitResult | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        rate = self.get_rate(request, view)
        if rate is None:
            return True
        self.result = get_rate_limiter().hit(self.get_scope(view), self.get_identity(request), rate)
        _report(view, self.result)
        return self.result.allowed

    def wait(self) -> float | None:
        return self.result.retry_after if self.result and not self.result.allowed else None

    def get_scope(self, view: Any) -> str:
        scope = getattr(view, "throttle_scope", None)
        return str(scope) if scope else f"{type(view).__module__}.{type(view).__qualname__}"

    def get_rate(self, request: Request, view: Any) -> Rate | None:
        """The rate for this request; override for per-plan limits."""
        configured = automate_settings.RATE_LIMITS.get(self.get_scope(view))
        rate = configured or getattr(view, "rate_limit", None)
        if rate is None:
            return None
        return rate if isinstance(rate, Rate) else Rate.parse(rate)

    def get_identity(self, request: Request) -> str:
        from automate_core.api.permissions import request_tenant

        tenant = request_tenant(request)
        if tenant is not None:
            return f"tenant:{tenant.pk}"
        return f"ip:{self.get_ident(request)}"


def _report(view: Any, result: RateLimitResult) -> None:
    headers = getattr(view, "headers", None)  # set by APIView.dispatch before throttling
    if not isinstance(headers, dict) or result.degraded:
        return
    reported: RateLimitResult | None = getattr(view, "rate_limit_result", None)
    if reported is None or result.is_tighter_than(reported):
        view.rate_limit_result = result
        headers.update(result.headers())


class APIKeyRateThrottle(TenantRateThrottle):
    """Like :class:`TenantRateThrottle`, but each API key has its own window (a tenant's keys
    do not share one); session users are limited per user."""

    def get_identity(self, request: Request) -> str:
        from automate_core.tenancy.models import APIKey

        if isinstance(request.auth, APIKey):
            return f"api_key:{request.auth.pk}"
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return f"user:{user.pk}"
        return f"ip:{self.get_ident(request)}"
