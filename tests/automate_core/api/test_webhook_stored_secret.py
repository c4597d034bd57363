"""A webhook secret stored in the admin (the db secrets backend) is used with default settings."""

from __future__ import annotations

import json
import time

import pytest
from rest_framework.test import APIClient

from automate_core.events.models import Event, WebhookSource
from automate_core.events.webhooks import sign
from automate_core.governance.stored_secrets import set_secret

SECRET = "whsec-stored-in-the-admin-0123"


def post_webhook(secret: str, payload: dict | None = None):
    raw = json.dumps(payload or {"amount": 1}).encode()
    ts = str(int(time.time()))
    return APIClient().post(
        "/api/v1/webhooks/acme-shop",
        data=raw,
        content_type="application/json",
        HTTP_X_AUTOMATE_TIMESTAMP=ts,
        HTTP_X_AUTOMATE_SIGNATURE=sign(secret, ts, raw),
        HTTP_X_AUTOMATE_EVENT="order.paid",
    )


@pytest.fixture
def hook(tenant, monkeypatch):
    monkeypatch.delenv("AUTOMATE_SECRET_SHOP_HOOK", raising=False)
    set_secret("SHOP_HOOK", SECRET, tenant=tenant)
    return WebhookSource.objects.create(tenant=tenant, source="acme-shop", secret_ref="SHOP_HOOK")


def test_a_webhook_signed_with_the_stored_secret_is_accepted(hook):
    assert post_webhook(SECRET).status_code == 202
    assert Event.objects.get().source == "webhook:acme-shop"


def test_a_webhook_signed_with_another_secret_is_still_refused(hook):
    response = post_webhook("not-the-stored-secret")
    assert response.status_code == 401 and response.json()["code"] == "invalid_signature"


def test_the_environment_overrides_a_stored_secret(hook, monkeypatch):
    monkeypatch.setenv("AUTOMATE_SECRET_SHOP_HOOK", "from-the-environment-0123")
    assert post_webhook("from-the-environment-0123").status_code == 202


def test_a_signed_webhook_whose_payload_holds_a_nul_is_invalid_input(hook):
    response = post_webhook(SECRET, {"note": "a\x00b"})
    assert response.status_code == 400 and response.json()["code"] == "invalid_input"
    assert not Event.objects.exists()
