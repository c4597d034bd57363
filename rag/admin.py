"""Admin pages of the RAG app: every change to a source, endpoint or embedding model is audited;
syncs, re-indexes and cancellations are queued as outbox jobs, like the API does."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest
from django.utils.html import format_html

from automate_core.admin_base import TenantScopedAdmin
from automate_core.governance import audit
from automate_core.governance.redaction import redact
from automate_core.tenancy.models import TenantMembership
from rag.models import (
    Chunk,
    Document,
    EmbeddingCacheEntry,
    EmbeddingModel,
    IndexVersion,
    KnowledgeSource,
    RAGEndpoint,
)


def _pre(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(redact(value), indent=2, default=str))


class AuditedConfigAdmin(TenantScopedAdmin):
    """Writes an audit row (redacted) for each saved change, in the same transaction."""

    audit_kind = ""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit.record(
                f"{self.audit_kind}.{'change' if change else 'create'}",
                actor=audit.actor_for_request(request),
                tenant=obj.tenant,
                target=f"{self.audit_kind}:{obj.slug}",
                data={name: form.cleaned_data.get(name) for name in form.changed_data},
            )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            audit.record(
                f"{self.audit_kind}.delete",
                actor=audit.actor_for_request(request),
                tenant=obj.tenant,
                target=f"{self.audit_kind}:{obj.slug}",
            )
            super().delete_model(request, obj)


@admin.register(EmbeddingModel)
class EmbeddingModelAdmin(AuditedConfigAdmin):
    audit_kind = "rag.embedding_model"
    list_display = ["name", "tenant", "provider", "model_id", "dimensions", "created_at"]
    list_filter = ["provider"]
    search_fields = ["name", "slug", "model_id"]


@admin.register(KnowledgeSource)
class KnowledgeSourceAdmin(AuditedConfigAdmin):
    audit_kind = "rag.source"
    list_display = [
        "name",
        "tenant",
        "type",
        "sync_status",
        "progress",
        "last_synced_at",
        "document_count",
    ]
    list_filter = ["type", "sync_status"]
    search_fields = ["name", "slug"]
    readonly_fields = ["sync_status", "progress", "last_synced_at", "last_error"]
    actions = ["queue_sync"]

    @admin.display(description="progress")
    def progress(self, obj: KnowledgeSource) -> str:
        p = obj.sync_progress or {}
        if not p:
            return "-"
        failed = f", {p.get('failed', 0)} failed" if p.get("failed") else ""
        return f"{p.get('phase', '')} {p.get('done', 0)}/{p.get('total', '?')}{failed}"

    @admin.display(description="documents")
    def document_count(self, obj: KnowledgeSource) -> int:
        return obj.documents.count()

    @admin.action(description="Sync selected sources (queued)")
    def queue_sync(self, request: HttpRequest, queryset: Any) -> None:
        from rag import services

        for source in queryset:
            services.queue_sync(source, actor=audit.actor_for_request(request))
        messages.info(request, f"Queued {queryset.count()} sync(s).")


@admin.register(Document)
class DocumentAdmin(TenantScopedAdmin):
    list_display = ["__str__", "source", "tenant", "status", "content_type", "updated_at"]
    list_filter = ["status", "content_type"]
    list_select_related = ["source", "tenant"]
    search_fields = ["title", "external_id"]
    readonly_fields = (
        "source",
        "external_id",
        "title",
        "content_type",
        "status",
        "error",
        "content_hash",
        "text",
        "metadata_json",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields

    @admin.display(description="metadata")
    def metadata_json(self, obj: Document) -> str:
        return _pre(obj.metadata)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # documents come from syncs and pushes

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class IndexVersionInline(admin.TabularInline):
    model = IndexVersion
    extra = 0
    can_delete = False
    readonly_fields = ("number", "status", "stats", "built_at", "activated_at", "error")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RAGEndpoint)
class RAGEndpointAdmin(AuditedConfigAdmin):
    audit_kind = "rag.endpoint"
    list_display = ["name", "slug", "tenant", "live_version", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    readonly_fields = ["live_version"]
    filter_horizontal = ["sources"]
    inlines = [IndexVersionInline]
    actions = ["queue_reindex"]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "sources" and not request.user.is_superuser:
            tenants = TenantMembership.objects.filter(**{"user_id": request.user.pk}).values(
                "tenant_id"
            )
            kwargs["queryset"] = KnowledgeSource.objects.filter(tenant__in=tenants)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.action(description="Re-index selected endpoints (build beside the live version)")
    def queue_reindex(self, request: HttpRequest, queryset: Any) -> None:
        from rag import services

        for endpoint in queryset:
            services.queue_reindex(endpoint, actor=audit.actor_for_request(request))
        messages.info(request, f"Queued {queryset.count()} re-index build(s).")


@admin.register(IndexVersion)
class IndexVersionAdmin(TenantScopedAdmin):
    list_display = ["endpoint", "number", "status", "tenant", "chunk_count", "built_at"]
    list_filter = ["status"]
    list_select_related = ["endpoint", "tenant"]
    readonly_fields = (
        "endpoint",
        "number",
        "status",
        "embedding_model",
        "chunk_tokens",
        "chunk_overlap",
        "stats",
        "error",
        "built_at",
        "activated_at",
        "has_vector_index",
    )
    fields = readonly_fields
    actions = ["cancel_builds", "make_live"]

    @admin.display(description="chunks")
    def chunk_count(self, obj: IndexVersion) -> Any:
        return (obj.stats or {}).get("chunks", "-")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request)

    @admin.action(description="Cancel selected builds", permissions=["change"])
    def cancel_builds(self, request: HttpRequest, queryset: Any) -> None:
        from rag import services

        cancelled = sum(services.cancel_build(v) for v in queryset.filter(status="building"))
        messages.info(request, f"Cancelled {cancelled} build(s).")

    @admin.action(description="Make live (roll back to a retired version)", permissions=["change"])
    def make_live(self, request: HttpRequest, queryset: Any) -> None:
        from rag import services

        for version in queryset.filter(status="retired"):
            services.activate_version(version, actor=audit.actor_for_request(request))
        messages.info(request, "Done.")


@admin.register(Chunk)
class ChunkAdmin(TenantScopedAdmin):
    list_display = ["__str__", "title", "index_version", "token_count", "tenant"]
    list_select_related = ["index_version", "tenant"]
    show_full_result_count = False
    search_fields = ["=content_hash"]
    readonly_fields = (
        "index_version",
        "document",
        "position",
        "title",
        "text",
        "token_count",
        "content_hash",
        "metadata_json",
    )
    fields = readonly_fields

    @admin.display(description="metadata")
    def metadata_json(self, obj: Chunk) -> str:
        return _pre(obj.metadata)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(EmbeddingCacheEntry)
class EmbeddingCacheEntryAdmin(TenantScopedAdmin):
    list_display = ["content_hash", "embedding_model", "tenant", "created_at"]
    show_full_result_count = False
    readonly_fields = ("embedding_model", "content_hash", "created_at")
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
