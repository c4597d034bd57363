"""Secrets stored in the database, encrypted, per tenant or global.

Values are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) through a ``MultiFernet`` over
``AUTOMATE["SECRET_KEYS"]``: a list of Fernet keys, newest first. The newest key encrypts;
every listed key decrypts, so keys are rotated by putting a new key first, running
``manage.py automate_rotate_secret_keys`` (re-encrypts every row with the newest key), then
dropping the old key. When ``SECRET_KEYS`` is empty, one key is derived from Django's
``SECRET_KEY`` with HKDF-SHA256: fine for development, but then changing ``SECRET_KEY`` makes
every stored secret unreadable, so set explicit keys in production.

:class:`DatabaseSecretsBackend` (entry point ``db``) resolves a name to the tenant's own secret
first, then to the global one (no tenant). Values are never shown back: not by the admin, the
audit log (``secret.write`` rows name the secret, never the value) or error messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cryptography.fernet import InvalidToken
from django.db import transaction
from django.db.models import Q

from automate_core.governance import audit, secret_keys
from automate_core.governance.models import SecretDecryptionError, StoredSecret
from automate_core.governance.secrets import (
    REF_PREFIX,
    SecretNotFoundError,
    SecretRef,
    SecretsBackend,
)

if TYPE_CHECKING:
    from automate_core.tenancy.models import Tenant

__all__ = [
    "DatabaseSecretsBackend",
    "rotate_keys",
    "set_secret",
]


def set_secret(
    name: str,
    value: str,
    *,
    tenant: Tenant | None = None,
    actor: str = "system",
    created_by: Any = None,
) -> StoredSecret:
    """Create or replace the secret ``name`` (of ``tenant``, or global); audits the write."""
    SecretRef.parse(REF_PREFIX + name)  # refuses names a ref could not spell
    with transaction.atomic():
        secret = (
            StoredSecret.objects.select_for_update().filter(tenant=tenant, name=name).first()
        ) or StoredSecret(tenant=tenant, name=name, created_by=created_by)
        write(secret, value, actor=actor)
    return secret


def write(secret: StoredSecret, value: str, *, actor: str) -> None:
    """Encrypt ``value`` into ``secret``, save it and append a ``secret.write`` audit row."""
    created = secret._state.adding
    with transaction.atomic():
        secret.encrypt(value)
        secret.save()
        audit.record(
            "secret.write",
            actor=actor,
            tenant=secret.tenant,
            target=f"secret:{secret.name}",
            data={"created": created, "scope": "tenant" if secret.tenant_id else "global"},
        )


def rotate_keys(*, progress: Callable[[int, int], None] | None = None, batch: int = 500) -> int:
    """Re-encrypt every row not yet under the newest key; returns how many were rewritten.

    Each batch is one transaction with its rows locked, so a concurrent :func:`set_secret` is
    never overwritten with a stale value. Safe to re-run after an interruption.
    """
    fernet, newest = secret_keys.fernet(), secret_keys.key_ids()[0]
    pending = StoredSecret.objects.exclude(key_id=newest)
    total, done = pending.count(), 0
    while True:
        with transaction.atomic():
            rows = list(pending.select_for_update().order_by("pk")[:batch])
            for row in rows:
                try:
                    row.ciphertext = fernet.rotate(row.ciphertext.encode()).decode()
                except InvalidToken:
                    raise SecretDecryptionError(
                        f"secret {row.name!r} (key {row.key_id}) cannot be decrypted with the "
                        "configured SECRET_KEYS; keep its key listed while rotating"
                    ) from None
                row.key_id = newest
            StoredSecret.objects.bulk_update(rows, ["ciphertext", "key_id"])
        done += len(rows)
        if progress:
            progress(done, total)
        if len(rows) < batch:
            return done


class DatabaseSecretsBackend(SecretsBackend):
    """Reads :class:`StoredSecret` rows: the tenant's own secret, else the global one."""

    def get_secret(self, key: str, *, tenant: Tenant | None = None) -> str:
        scope = Q(tenant__isnull=True)
        if tenant is not None:
            scope |= Q(tenant=tenant)
        rows = {row.tenant_id: row for row in StoredSecret.objects.filter(scope, name=key)}
        row = rows.get(getattr(tenant, "pk", None)) or rows.get(None)
        if row is None:
            where = "for this tenant or globally" if tenant is not None else "globally"
            raise SecretNotFoundError(f"secret {key!r} not found in the database ({where})")
        return row.decrypt()
