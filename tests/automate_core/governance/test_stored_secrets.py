"""Stored secrets: encrypted at rest, per tenant over global, rotatable, never shown back."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from automate_core.governance.audit import verify_chain
from automate_core.governance.models import AuditLog, SecretDecryptionError, StoredSecret
from automate_core.governance.secrets import SecretNotFoundError, get_secret, resolve_secrets
from automate_core.governance.stored_secrets import DatabaseSecretsBackend, set_secret

pytestmark = pytest.mark.django_db

KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()
VALUE = "sk-live-very-secret-value-42"
DB_ONLY = {"SECRETS_BACKENDS": ["db"]}


def _column(secret: StoredSecret) -> str:
    table = StoredSecret._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT ciphertext FROM {table} WHERE id = %s", [secret.pk])  # noqa: S608 -- table from _meta, value bound
        return cursor.fetchone()[0]


@override_settings(AUTOMATE=DB_ONLY)
def test_a_stored_secret_round_trips_through_the_backends():
    set_secret("STRIPE_KEY", VALUE)

    assert get_secret("STRIPE_KEY") == VALUE
    assert resolve_secrets({"key": "$secret:STRIPE_KEY"}) == {"key": VALUE}


def test_the_value_is_never_stored_in_clear():
    secret = set_secret("STRIPE_KEY", VALUE)

    column = _column(secret)
    assert VALUE not in column and "very-secret" not in column
    assert StoredSecret.objects.get(pk=secret.pk).decrypt() == VALUE


def test_a_tenant_secret_overrides_the_global_one(tenant, other_tenant):
    set_secret("SLACK_TOKEN", "global-token-value")
    set_secret("SLACK_TOKEN", "acme-token-value", tenant=tenant)
    backend = DatabaseSecretsBackend()

    assert backend.get_secret("SLACK_TOKEN", tenant=tenant) == "acme-token-value"
    assert backend.get_secret("SLACK_TOKEN", tenant=other_tenant) == "global-token-value"
    assert backend.get_secret("SLACK_TOKEN") == "global-token-value"


def test_a_tenant_secret_is_invisible_to_other_tenants_and_globally(tenant, other_tenant):
    set_secret("ONLY_ACME", "acme-only-value", tenant=tenant)
    backend = DatabaseSecretsBackend()

    with pytest.raises(SecretNotFoundError):
        backend.get_secret("ONLY_ACME", tenant=other_tenant)
    with pytest.raises(SecretNotFoundError):
        backend.get_secret("ONLY_ACME")


@override_settings(AUTOMATE=DB_ONLY)
def test_a_missing_secret_raises_not_found_naming_the_ref(tenant):
    with pytest.raises(SecretNotFoundError, match="NOPE") as caught:
        resolve_secrets({"a": {"$secret": "NOPE"}}, tenant=tenant)

    assert caught.value.details == {"refs": ["NOPE"]}


def test_writing_a_secret_is_audited_without_its_value(tenant):
    set_secret("STRIPE_KEY", VALUE, tenant=tenant, actor="user:3")
    set_secret("STRIPE_KEY", VALUE + "-2", tenant=tenant, actor="user:3")

    rows = list(AuditLog.objects.order_by("seq"))
    assert [(r.action, r.actor, r.target, r.data["created"]) for r in rows] == [
        ("secret.write", "user:3", "secret:STRIPE_KEY", True),
        ("secret.write", "user:3", "secret:STRIPE_KEY", False),
    ]
    assert VALUE not in str([(r.data, r.target) for r in rows])
    assert StoredSecret.objects.count() == 1
    assert verify_chain().ok


def test_rotation_re_encrypts_with_the_newest_key():
    with override_settings(AUTOMATE={"SECRET_KEYS": [KEY_A]}):
        secret = set_secret("STRIPE_KEY", VALUE)
        under_a = _column(secret)
    with override_settings(AUTOMATE={"SECRET_KEYS": [KEY_B, KEY_A]}):
        call_command("automate_rotate_secret_keys", verbosity=0)
    with override_settings(AUTOMATE={"SECRET_KEYS": [KEY_B]}):
        rotated = StoredSecret.objects.get(pk=secret.pk)
        assert rotated.decrypt() == VALUE
        assert _column(secret) != under_a and rotated.key_id != secret.key_id


def test_dropping_a_key_before_rotating_fails_loudly_without_the_value():
    with override_settings(AUTOMATE={"SECRET_KEYS": [KEY_A]}):
        set_secret("STRIPE_KEY", VALUE)
    with (
        override_settings(AUTOMATE={"SECRET_KEYS": [KEY_B]}),
        pytest.raises(SecretDecryptionError, match="STRIPE_KEY"),
    ):
        DatabaseSecretsBackend().get_secret("STRIPE_KEY")


def test_the_admin_never_renders_a_value(admin_client, tenant):
    added = admin_client.post(
        reverse("admin:automate_core_storedsecret_add"),
        {"tenant": tenant.pk, "name": "STRIPE_KEY", "value": VALUE},
    )
    assert added.status_code == 302, added.content.decode()
    secret = StoredSecret.objects.get(name="STRIPE_KEY")
    assert secret.decrypt() == VALUE

    pages = [
        admin_client.get(reverse("admin:automate_core_storedsecret_changelist")),
        admin_client.get(reverse("admin:automate_core_storedsecret_change", args=[secret.pk])),
    ]
    for page in pages:
        assert page.status_code == 200
        body = page.content.decode()
        assert VALUE not in body and secret.ciphertext not in body
    assert "STRIPE_KEY" in pages[0].content.decode()


def test_the_admin_keeps_the_value_when_left_empty_and_replaces_it_when_given(admin_client):
    secret = set_secret("STRIPE_KEY", VALUE)
    url = reverse("admin:automate_core_storedsecret_change", args=[secret.pk])

    admin_client.post(url, {"value": ""})
    assert StoredSecret.objects.get(pk=secret.pk).decrypt() == VALUE
    admin_client.post(url, {"value": "new-value-123"})
    assert StoredSecret.objects.get(pk=secret.pk).decrypt() == "new-value-123"
    assert AuditLog.objects.filter(action="secret.write").count() == 2


@pytest.mark.django_db
def test_a_tenant_can_set_its_own_backend_order(tenant, monkeypatch):
    monkeypatch.setenv("AUTOMATE_SECRET_ORDERED", "from-env")
    assert get_secret("ORDERED", tenant=tenant) == "from-env"
    tenant.secrets_backends = ["db"]
    tenant.save()
    with pytest.raises(SecretNotFoundError, match="ORDERED"):
        get_secret("ORDERED", tenant=tenant)
    set_secret("ORDERED", "from-db", tenant=tenant)
    assert get_secret("ORDERED", tenant=tenant) == "from-db"
