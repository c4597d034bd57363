"""ConnectionProfile: a named, reusable connector configuration of a tenant.

Steps name a profile (``"connection": "crm"``) instead of repeating the config; the config holds
SecretRefs, never values, and is resolved only inside the step that uses it.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from automate_core.base import SluggedModel, TenantScopedModel, TimeStampedModel, UUIDModel


class ConnectionProfile(UUIDModel, TimeStampedModel, TenantScopedModel, SluggedModel):
    connector = models.CharField(max_length=100, help_text="The connector's code, e.g. http.")
    config = models.JSONField(
        default=dict, blank=True, help_text='Connector config; secrets as {"$secret": "NAME"}.'
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="connection_slug_per_tenant")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.connector})"

    def clean(self) -> None:
        from automate_core.connectors.base import connector_class
        from automate_core.plugins import PluginNotFound

        try:
            problems = connector_class(self.connector).validate_config(self.config or {})
        except PluginNotFound as exc:
            raise ValidationError({"connector": str(exc)}) from None
        if problems:
            raise ValidationError({"config": problems})

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.clean()
        super().save(*args, **kwargs)
