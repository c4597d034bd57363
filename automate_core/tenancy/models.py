"""Tenants and API keys.

API keys are shown once, at creation; only their SHA-256 digest is stored. A key is a 256-bit
random token, so a plain digest is as strong as a slow hash here and lets lookup be one index
probe. Keys belong to one tenant and may be narrowed to resources (``rag:support``,
``workflow:*``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import secrets
from datetime import timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from automate_core.base import TenantQuerySet, TenantScopedModel, TimeStampedModel, UUIDModel

KEY_PREFIX = "dak_"


class Tenant(UUIDModel, TimeStampedModel):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    is_active = models.BooleanField(default=True)
    egress_allowlist = models.JSONField(
        default=list,
        blank=True,
        help_text='Hosts this tenant\'s steps may call, e.g. ["api.openai.com", "*.stripe.com"]. '
        "Empty allows any public host; private and metadata addresses are always refused.",
    )

    secrets_backends = models.JSONField(
        default=list,
        blank=True,
        help_text='Secrets backends to try, in order, e.g. ["db", "env"]. Empty: the '
        'AUTOMATE["SECRETS_BACKENDS"] order.',
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TenantMembership(TimeStampedModel):
    """A user's role in a tenant: what session-authenticated requests act as."""

    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tenant_memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="unique_tenant_member")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


class APIKeyQuerySet(TenantQuerySet):
    def usable(self) -> APIKeyQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True, tenant__is_active=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


APIKeyManager = models.Manager.from_queryset(APIKeyQuerySet)


class APIKey(UUIDModel, TimeStampedModel, TenantScopedModel):
    name = models.CharField(max_length=200)
    prefix = models.CharField(
        max_length=16, editable=False, help_text="First characters, to tell keys apart."
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(
        default=list,
        blank=True,
        help_text='Resource patterns this key may use, e.g. ["rag:support", "workflow:*"]. '
        "Empty means every resource of the tenant.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects: ClassVar[APIKeyManager] = APIKeyManager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(
        cls,
        *,
        tenant: Tenant,
        name: str,
        scopes: list[str] | None = None,
        created_by: Any = None,
        expires_at: Any = None,
    ) -> tuple[APIKey, str]:
        """Create a key; returns it with the raw secret, which is never retrievable again."""
        key = cls(
            tenant=tenant,
            name=name,
            scopes=list(scopes or []),
            created_by=created_by,
            expires_at=expires_at,
        )
        raw = key.assign_secret()
        key.save()
        return key, raw

    def assign_secret(self) -> str:
        """Give an unsaved key a fresh secret; returns the raw value (store only its hash)."""
        raw = KEY_PREFIX + secrets.token_urlsafe(32)
        self.prefix, self.key_hash = raw[:12], hash_key(raw)
        return raw

    @classmethod
    def authenticate(cls, raw_key: str) -> APIKey | None:
        """The usable key for ``raw_key``, or None (unknown, revoked, expired, tenant inactive)."""
        if not raw_key.startswith(KEY_PREFIX):
            return None
        return (
            cls.objects.usable().select_related("tenant").filter(key_hash=hash_key(raw_key)).first()
        )

    @property
    def is_active(self) -> bool:
        expired = self.expires_at is not None and self.expires_at <= timezone.now()
        return self.revoked_at is None and not expired

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])

    def allows(self, resource: str) -> bool:
        """True if the key may use ``resource`` (``kind:name``); unscoped keys allow all."""
        return not self.scopes or any(fnmatch.fnmatchcase(resource, p) for p in self.scopes)

    def touch(self, every: timedelta) -> None:
        """Record use, at most once per ``every`` so authentication stays a read."""
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at >= every:
            type(self).objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now
