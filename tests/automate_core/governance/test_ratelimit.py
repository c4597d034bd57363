"""Rate limits: the Redis sliding window, and the DRF throttle answering 429 with Retry-After."""

from __future__ import annotations

import threading
import uuid

import pytest
import redis
from django.urls import path
from redis.backoff import NoBackoff
from redis.retry import Retry
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from automate_core.errors import NotFoundError
from automate_core.governance.ratelimit import (
    APIKeyRateThrottle,
    Rate,
    RateLimiter,
    RateLimitUnavailable,
    TenantRateThrottle,
)
from automate_core.tenancy.models import APIKey

PREFIX = "test-policies-ratelimit"


@pytest.fixture
def limiter():
    """A limiter over the test Redis with a key prefix no other run shares."""
    prefix = f"{PREFIX}:{uuid.uuid4().hex}"
    limiter = RateLimiter(prefix=prefix)
    yield limiter
    for key in limiter.client.scan_iter(match=f"{prefix}:*"):
        limiter.client.delete(key)


# -- rates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "window"),
    [
        ("100/min", 100, 60),
        ("5/s", 5, 1),
        ("5/sec", 5, 1),
        ("1000/hour", 1000, 3600),
        ("2/day", 2, 86400),
        ("10/30s", 10, 30),
        (" 7 / 5 Minutes ", 7, 300),
    ],
)
def test_rates_parse_from_text(text, limit, window):
    assert Rate.parse(text) == Rate(limit, window)


@pytest.mark.parametrize("text", ["", "100", "0/min", "100/fortnight", "-1/s", "ten/min"])
def test_malformed_rates_are_refused(text):
    with pytest.raises(ValueError, match="invalid rate"):
        Rate.parse(text)


# -- the sliding window ------------------------------------------------------------------------


def test_hits_are_admitted_up_to_the_limit_then_refused(limiter):
    results = [limiter.hit("ep", "tenant:1", "3/min") for _ in range(4)]

    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.remaining for r in results] == [2, 1, 0, 0]
    assert 0 < results[3].retry_after <= 60
    assert results[0].retry_after == 0.0


def test_the_window_slides_and_retry_after_is_exact(limiter):
    def hit(at: float):
        return limiter.hit("ep", "tenant:1", Rate(2, 10), now=1_000 + at)

    assert hit(0).allowed and hit(1).allowed
    refused = hit(2)
    assert (refused.allowed, refused.retry_after) == (False, 8.0)
    assert hit(10).allowed  # the hit at 0 has left the window
    assert hit(10.5).retry_after == 0.5  # the hit at 1 leaves at 11
    assert hit(11).allowed


def test_reset_is_when_the_oldest_admitted_hit_leaves_the_window(limiter):
    def hit(at: float):
        return limiter.hit("ep", "k", Rate(3, 10), now=1_000 + at)

    assert hit(0).reset == 10.0
    assert hit(3).reset == 7.0  # the hit at 0 leaves at 10
    third, refused = hit(4), hit(6)
    assert (third.remaining, third.reset) == (0, 6.0)
    assert (refused.allowed, refused.reset, refused.retry_after) == (False, 4.0, 4.0)


def test_refused_hits_do_not_extend_the_lockout(limiter):
    def hit(at: float):
        return limiter.hit("ep", "k", Rate(1, 10), now=1_000 + at)

    assert hit(0).allowed
    assert not any(hit(t).allowed for t in (1, 2, 3, 9.9))
    assert hit(10).allowed


def test_a_lowered_limit_waits_for_enough_hits_to_expire(limiter):
    for t in range(5):
        limiter.hit("ep", "k", Rate(5, 100), now=1_000 + t)

    refused = limiter.hit("ep", "k", Rate(3, 100), now=1_010)

    # 5 in the window, room for 3: the third-oldest (at t=2) must leave first, at t=102.
    assert (refused.allowed, refused.retry_after) == (False, 92.0)


def test_identities_and_scopes_have_separate_windows(limiter):
    assert limiter.hit("ep", "tenant:1", "1/min").allowed
    assert not limiter.hit("ep", "tenant:1", "1/min").allowed
    assert limiter.hit("ep", "tenant:2", "1/min").allowed
    assert limiter.hit("other-ep", "tenant:1", "1/min").allowed


def test_windows_expire_from_redis(limiter):
    limiter.hit("ep", "k", "5/min")

    ttl_ms = limiter.client.pttl(limiter.key("ep", "k"))

    assert 0 < ttl_ms <= 60_000


def test_reset_forgets_a_window(limiter):
    limiter.hit("ep", "k", "1/min")
    limiter.reset("ep", "k")
    assert limiter.hit("ep", "k", "1/min").allowed


def test_concurrent_hits_never_admit_more_than_the_limit(limiter):
    threads, hits_each, limit = 24, 25, 100
    start = threading.Barrier(threads)
    admitted: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        start.wait()
        mine = sum(limiter.hit("ep", "shared", Rate(limit, 60)).allowed for _ in range(hits_each))
        with lock:
            admitted.append(mine)

    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert sum(admitted) == limit
    assert limiter.client.zcard(limiter.key("ep", "shared")) == limit


# -- when Redis is down ------------------------------------------------------------------------


@pytest.fixture
def dead_limiter(tmp_path):
    client = redis.Redis(
        unix_socket_path=str(tmp_path / "nothing.sock"), retry=Retry(NoBackoff(), 0)
    )
    return RateLimiter(client, prefix=PREFIX)


def test_fail_open_admits_and_marks_the_result_degraded(dead_limiter, caplog):
    result = dead_limiter.hit("ep", "k", "1/min", fail_open=True)

    assert (result.allowed, result.degraded) == (True, True)
    assert "not checked" in caplog.text


def test_fail_closed_raises(dead_limiter):
    with pytest.raises(RateLimitUnavailable):
        dead_limiter.hit("ep", "k", "1/min", fail_open=False)


# -- the DRF throttle --------------------------------------------------------------------------


class PingView(APIView):
    throttle_classes = [TenantRateThrottle]
    rate_limit = "3/min"

    def get(self, request):
        return Response({"ok": True})


class PongView(PingView):
    """Same rate, another endpoint: its own window."""


class MissingView(PingView):
    def get(self, request):
        raise NotFoundError("nothing here")


class ScopedView(PingView):
    throttle_scope = "test-reports"


class PerKeyView(APIView):
    throttle_classes = [APIKeyRateThrottle]
    rate_limit = "2/min"

    def get(self, request):
        return Response({"ok": True})


class TwoLimitsView(APIView):
    """A generous per-tenant limit and a tight per-key one on the same endpoint."""

    throttle_classes = [TenantRateThrottle, APIKeyRateThrottle]

    def get_throttles(self):
        tenant, per_key = TenantRateThrottle(), APIKeyRateThrottle()
        tenant.get_rate = lambda request, view: Rate(50, 60)
        per_key.get_rate = lambda request, view: Rate(2, 60)
        per_key.get_scope = lambda view: "test-two-limits-key"
        return [tenant, per_key]

    def get(self, request):
        return Response({"ok": True})


class UnlimitedView(APIView):
    throttle_classes = [TenantRateThrottle]

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [
    path("api/v1/ping", PingView.as_view()),
    path("api/v1/pong", PongView.as_view()),
    path("api/v1/scoped", ScopedView.as_view()),
    path("api/v1/per-key", PerKeyView.as_view()),
    path("api/v1/unlimited", UnlimitedView.as_view()),
    path("api/v1/missing", MissingView.as_view()),
    path("api/v1/two-limits", TwoLimitsView.as_view()),
]


@pytest.fixture
def throttled(settings):
    """Routes to the views above, and a key prefix of this test's own."""
    prefix = f"{PREFIX}:{uuid.uuid4().hex}"
    settings.ROOT_URLCONF = __name__
    settings.AUTOMATE = {"RATE_LIMIT_KEY_PREFIX": prefix}
    yield settings
    client = RateLimiter(prefix=prefix).client
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


def client_for(tenant) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {APIKey.issue(tenant=tenant, name='t')[1]}")
    return client


@pytest.mark.django_db
def test_over_the_limit_the_api_answers_429_with_retry_after(throttled, api_client):
    statuses = [api_client.get("/api/v1/ping").status_code for _ in range(4)]
    refused = api_client.get("/api/v1/ping")

    assert statuses == [200, 200, 200, 429]
    assert refused.status_code == 429
    retry_after = int(refused["Retry-After"])
    assert 1 <= retry_after <= 60
    body = refused.json()
    assert body["code"] == "throttled"
    assert body["details"] == {"retry_after_seconds": retry_after}
    assert body["trace_id"] == refused["X-Trace-Id"]


@pytest.mark.django_db
def test_each_tenant_has_its_own_budget(throttled, tenant, other_tenant):
    acme, globex = client_for(tenant), client_for(other_tenant)

    assert [acme.get("/api/v1/ping").status_code for _ in range(4)][-1] == 429
    assert globex.get("/api/v1/ping").status_code == 200


@pytest.mark.django_db
def test_a_tenants_keys_share_the_tenant_budget(throttled, tenant):
    first, second = client_for(tenant), client_for(tenant)

    for _ in range(3):
        assert first.get("/api/v1/ping").status_code == 200
    assert second.get("/api/v1/ping").status_code == 429


@pytest.mark.django_db
def test_each_endpoint_has_its_own_window(throttled, api_client):
    for _ in range(3):
        api_client.get("/api/v1/ping")

    assert api_client.get("/api/v1/ping").status_code == 429
    assert api_client.get("/api/v1/pong").status_code == 200


@pytest.mark.django_db
def test_the_api_key_throttle_gives_each_key_its_own_window(throttled, tenant):
    first, second = client_for(tenant), client_for(tenant)

    assert [first.get("/api/v1/per-key").status_code for _ in range(3)] == [200, 200, 429]
    assert second.get("/api/v1/per-key").status_code == 200


@pytest.mark.django_db
def test_settings_override_a_views_rate_by_scope(throttled, api_client):
    throttled.AUTOMATE = {**throttled.AUTOMATE, "RATE_LIMITS": {"test-reports": "1/min"}}

    assert [api_client.get("/api/v1/scoped").status_code for _ in range(2)] == [200, 429]


@pytest.mark.django_db
def test_a_view_without_a_rate_is_not_limited(throttled, api_client):
    assert {api_client.get("/api/v1/unlimited").status_code for _ in range(10)} == {200}


def rate_limit_headers(response) -> tuple[str | None, str | None, str | None]:
    return (
        response.get("RateLimit-Limit"),
        response.get("RateLimit-Remaining"),
        response.get("RateLimit-Reset"),
    )


@pytest.mark.django_db
def test_admitted_responses_carry_the_ratelimit_headers(throttled, api_client):
    responses = [api_client.get("/api/v1/ping") for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [rate_limit_headers(r)[:2] for r in responses] == [("3", "2"), ("3", "1"), ("3", "0")]
    assert all(1 <= int(rate_limit_headers(r)[2]) <= 60 for r in responses)


@pytest.mark.django_db
def test_a_refused_response_keeps_retry_after_and_reports_nothing_left(throttled, api_client):
    for _ in range(3):
        api_client.get("/api/v1/ping")

    refused = api_client.get("/api/v1/ping")

    assert refused.status_code == 429
    assert rate_limit_headers(refused) == ("3", "0", refused["Retry-After"])


@pytest.mark.django_db
def test_an_error_the_limited_view_raises_still_carries_the_headers(throttled, api_client):
    response = api_client.get("/api/v1/missing")

    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert rate_limit_headers(response)[:2] == ("3", "2")


@pytest.mark.django_db
def test_with_two_limits_the_tighter_one_is_reported(throttled, api_client):
    first, second, refused = (api_client.get("/api/v1/two-limits") for _ in range(3))

    assert rate_limit_headers(first)[:2] == ("2", "1")
    assert rate_limit_headers(second)[:2] == ("2", "0")
    assert refused.status_code == 429 and rate_limit_headers(refused)[:2] == ("2", "0")


@pytest.mark.django_db
def test_a_view_without_a_rate_sends_no_ratelimit_headers(throttled, api_client):
    assert rate_limit_headers(api_client.get("/api/v1/unlimited")) == (None, None, None)


@pytest.mark.django_db
def test_an_unchecked_limit_sends_no_made_up_headers(
    throttled, api_client, dead_limiter, monkeypatch
):
    from automate_core.governance import ratelimit

    monkeypatch.setattr(ratelimit, "_limiter", dead_limiter)
    throttled.AUTOMATE = {**throttled.AUTOMATE, "RATE_LIMIT_FAIL_OPEN": True}

    response = api_client.get("/api/v1/ping")

    assert response.status_code == 200
    assert rate_limit_headers(response) == (None, None, None)
