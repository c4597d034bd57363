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

import base64
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models import Q

from automate_core.base import TenantManager, TimeStampedModel, UUIDModel
from automate_core.conf import automate_settings
from automate_core.errors import AutomateError
from automate_core.governance import audit
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
    "SecretDecryptionError",
    "StoredSecret",
    "rotate_keys",
    "set_secret",
]

_HKDF_INFO = b"django-automate stored secrets v1"


class SecretDecryptionError(AutomateError):
    """A stored secret cannot be decrypted with any configured key (a key was dropped early)."""

    status_code = 500
    code = "secret_decryption_failed"
    default_message = "A stored secret could not be decrypted."


class StoredSecret(UUIDModel, TimeStampedModel):
    """One encrypted value; ``tenant`` empty means global (visible to every tenant)."""

    tenant = models.ForeignKey(
        "automate_core.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=256)
    ciphertext = models.TextField(editable=False)
    key_id = models.CharField(
        max_length=16, editable=False, help_text="Fingerprint of the key that encrypted it."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = TenantManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                nulls_distinct=False,
                name="stored_secret_name_per_tenant",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.tenant_id or 'global'})"

    def encrypt(self, value: str) -> None:
        """Encrypt ``value`` with the newest key into this (unsaved) row."""
        self.ciphertext = _fernet().encrypt(value.encode()).decode()
        self.key_id = _key_ids()[0]

    def decrypt(self) -> str:
        try:
            return _fernet().decrypt(self.ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretDecryptionError(
                f"secret {self.name!r} (key {self.key_id}) cannot be decrypted with the "
                "configured SECRET_KEYS"
            ) from None


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
    fernet, newest = _fernet(), _key_ids()[0]
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


def _keys() -> list[bytes]:
    configured = automate_settings.SECRET_KEYS
    if configured:
        return [k.encode() if isinstance(k, str) else bytes(k) for k in configured]
    if not settings.SECRET_KEY:
        raise ImproperlyConfigured("Stored secrets need AUTOMATE['SECRET_KEYS'] or SECRET_KEY")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        settings.SECRET_KEY.encode()
    )
    return [base64.urlsafe_b64encode(derived)]


def _fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in _keys()])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "AUTOMATE['SECRET_KEYS'] must hold Fernet keys (Fernet.generate_key())"
        ) from exc


def _key_ids() -> list[str]:
    return [hashlib.sha256(key).hexdigest()[:16] for key in _keys()]
