"""Base admin classes every app's admin builds on: rows scoped to the staff member's tenants,
changes audited, records staff only read, and payloads shown redacted to staff without the
raw-payload permission."""

import json
from typing import Any

from django.contrib import admin
from django.db import transaction
from django.http import HttpRequest
from django.utils.html import format_html

from automate_core.api.redacted import RAW_PAYLOAD_PERMISSION
from automate_core.governance import audit
from automate_core.governance.redaction import redact
from automate_core.tenancy.models import Tenant, TenantMembership


class TenantScopedAdmin(admin.ModelAdmin):
    """Staff see and act on their own tenants' rows only (superusers see all).

    ``tenant_lookup`` is the path from the model to its tenant. Admin actions run on
    ``get_queryset()``, so they are scoped too; foreign-key choices are limited the same way.
    """

    tenant_lookup = "tenant"

    def get_queryset(self, request: HttpRequest) -> Any:
        rows = super().get_queryset(request)
        if request.user.is_superuser:
            return rows
        return rows.filter(**{f"{self.tenant_lookup}__in": member_tenant_ids(request)})

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if not request.user.is_superuser:
            related = db_field.related_model
            tenants = member_tenant_ids(request)
            if related is Tenant:
                kwargs["queryset"] = Tenant.objects.filter(pk__in=tenants)
            elif any(f.name == "tenant" for f in related._meta.fields):
                kwargs["queryset"] = related._default_manager.filter(tenant__in=tenants)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class AuditedAdmin(TenantScopedAdmin):
    """Each create, change and delete made in the admin writes an audit row in the same
    transaction: ``<audit_kind>.create|change|delete`` on ``<audit_kind>:<pk>``, with the
    changed fields' new values."""

    audit_kind = ""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            self.audit(
                request,
                obj,
                "change" if change else "create",
                {name: form.cleaned_data.get(name) for name in form.changed_data},
            )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            self.audit(request, obj, "delete")
            super().delete_model(request, obj)

    def audit(self, request: HttpRequest, obj: Any, action: str, data: Any = None) -> None:
        """Record ``action`` on ``obj`` by the request's staff member."""
        audit.record(
            f"{self.audit_kind}.{action}",
            actor=audit.actor_for_request(request),
            tenant=obj.tenant,
            target=f"{self.audit_kind}:{obj.pk}",
            data=data,
        )


class RecordsAdmin(TenantScopedAdmin):
    """Rows the app writes (conversations, messages, logs): staff read them, never add them."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ImmutableAdmin(TenantScopedAdmin):
    """Rows that are history (audit entries, model requests, approved pins): shown, never
    added, edited or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def member_tenant_ids(request: HttpRequest) -> list[Any]:
    return list(
        TenantMembership.objects.filter(**{"user_id": request.user.pk}).values_list(
            "tenant_id", flat=True
        )
    )


def redacted_json(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(redact(value), indent=2, default=str))


class RedactedPayloadAdmin(TenantScopedAdmin):
    """Shows ``payload_fields`` redacted (through ``redacted_<field>`` display methods) to staff
    without the ``automate_core.view_raw_payload`` permission."""

    payload_fields: tuple[str, ...] = ()

    def _swap(self, request: HttpRequest, names: Any) -> list[Any]:
        if request.user.has_perm(RAW_PAYLOAD_PERMISSION):
            return list(names)
        return [f"redacted_{n}" if n in self.payload_fields else n for n in names]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self._swap(request, super().get_readonly_fields(request, obj))

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self._swap(request, super().get_fields(request, obj))
