"""Admin pages for datasets: staff define what their tenant may ask about. Saves are audited;
a table's backing relation must be in the operator's allowlists (see ``DatasetTable.clean``)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import transaction
from django.http import HttpRequest

from automate_core.admin_base import TenantScopedAdmin
from automate_core.governance import audit
from automate_datachat.models import (
    DataChatMessage,
    DataChatSession,
    Dataset,
    DatasetExample,
    DatasetTable,
)


class DatasetTableInline(admin.StackedInline):
    model = DatasetTable
    extra = 0
    fields = [
        "alias",
        "description",
        "model_label",
        "relation",
        "columns",
        "tenant_column",
        "tenant_owned",
        "row_filters",
    ]


def _audit_change(request: HttpRequest, action: str, dataset: Dataset, data: Any = None) -> None:
    audit.record(
        action,
        actor=audit.actor_for_request(request),
        tenant=dataset.tenant,
        target=f"datachat.dataset:{dataset.slug}",
        data=data,
    )


@admin.register(Dataset)
class DatasetAdmin(TenantScopedAdmin):
    list_display = ["name", "slug", "tenant", "row_cap", "table_count", "updated_at"]
    search_fields = ["name", "slug", "description"]
    inlines = [DatasetTableInline]

    @admin.display(description="tables")
    def table_count(self, obj: Dataset) -> int:
        return obj.tables.count()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            _audit_change(
                request,
                f"datachat.dataset.{'change' if change else 'create'}",
                obj,
                {name: form.cleaned_data.get(name) for name in form.changed_data},
            )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_formset(request, form, formset, change)
            changed = [table.alias for table in formset.new_objects + formset.changed_objects]
            deleted = [table.alias for table in formset.deleted_objects]
            if changed or deleted:
                _audit_change(
                    request,
                    "datachat.dataset.tables",
                    form.instance,
                    {"changed": changed, "deleted": deleted},
                )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            _audit_change(request, "datachat.dataset.delete", obj)
            super().delete_model(request, obj)


@admin.register(DatasetTable)
class DatasetTableAdmin(TenantScopedAdmin):
    tenant_lookup = "dataset__tenant"
    list_display = ["alias", "dataset", "model_label", "relation", "tenant_column", "tenant_owned"]
    list_filter = ["tenant_owned"]
    search_fields = ["alias", "relation", "model_label", "dataset__slug"]


class DataChatMessageInline(admin.TabularInline):
    model = DataChatMessage
    extra = 0
    can_delete = False
    fields = ["created_at", "role", "content", "sql", "error"]
    readonly_fields = ["created_at", "role", "content", "sql", "error"]


@admin.register(DataChatSession)
class DataChatSessionAdmin(TenantScopedAdmin):
    list_display = ["pk", "dataset", "tenant", "user", "end_user", "created_at", "expires_at"]
    list_filter = ["dataset"]
    search_fields = ["dataset", "end_user"]
    readonly_fields = ["api_key_id", "created_at", "updated_at"]
    inlines = [DataChatMessageInline]


@admin.register(DataChatMessage)
class DataChatMessageAdmin(TenantScopedAdmin):
    tenant_lookup = "session__tenant"
    list_display = ["created_at", "session", "role", "short_content"]
    list_filter = ["role"]
    search_fields = ["content", "sql"]
    readonly_fields = ["session", "role", "content", "sql", "data", "chart", "usage", "error"]

    @admin.display(description="content")
    def short_content(self, obj: DataChatMessage) -> str:
        return obj.content[:80]


@admin.register(DatasetExample)
class DatasetExampleAdmin(TenantScopedAdmin):
    """Curated question → SQL pairs; ``DatasetExample.clean`` runs the guard on the SQL."""

    list_display = ["question", "dataset", "tenant", "created_at"]
    list_filter = ["dataset"]
    search_fields = ["question", "sql"]
