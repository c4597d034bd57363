"""Probes: /healthz says the process is up; /readyz that Postgres and Redis answer."""

from __future__ import annotations

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "redis": _check_redis()}
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # any failure means not ready; the type is enough to act on
        return f"error: {type(exc).__name__}"


def _check_redis() -> str:
    try:
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        client.ping()
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"
