"""Admin of Modal endpoints, jobs (with their timeline and a cancel action) and artifacts.

Every page is tenant-scoped. Endpoint configs hold SecretRefs only (``ModalEndpoint.clean``); a
job's input, output, error and timeline are shown redacted to staff without the raw-payload
permission, like runs and LLM calls. Jobs and artifacts are written by the runtime only.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from automate_core.admin_base import RedactedPayloadAdmin, TenantScopedAdmin, redacted_json
from automate_core.errors import AutomateError
from automate_core.governance.audit import actor_for_request
from automate_modal.models import ModalArtifact, ModalEndpoint, ModalJob


@admin.register(ModalEndpoint)
class ModalEndpointAdmin(TenantScopedAdmin):
    list_display = ("name", "slug", "tenant", "backend", "gpu", "timeout", "is_active")
    list_filter = ("backend", "gpu", "is_active")
    search_fields = ("name", "slug", "app_name", "function_name")


@admin.register(ModalJob)
class ModalJobAdmin(RedactedPayloadAdmin):
    list_display = ("id", "endpoint", "status", "gpu", "gpu_seconds", "cost", "created_at")
    list_filter = ("status", "gpu")
    list_select_related = ("endpoint",)
    search_fields = ("id", "function_call_id", "trace_id", "idempotency_key")
    payload_fields = ("timeline", "input", "output", "error")
    readonly_fields = (
        "endpoint",
        "status",
        "timeline",
        "input",
        "output",
        "error",
        "function_call_id",
        "gpu",
        "gpu_seconds",
        "cost",
        "pricing_version",
        "trace_id",
        "execution_id",
        "step_id",
        "idempotency_key",
    )
    exclude = ("attempts", "budget_scopes")
    actions = ["cancel_jobs"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Timeline")
    def timeline(self, job: ModalJob) -> str:
        return format_html("<pre>{}</pre>", json.dumps(job.timeline(), indent=2, default=str))

    @admin.display(description="Timeline")
    def redacted_timeline(self, job: ModalJob) -> str:
        return redacted_json(job.timeline())

    @admin.display(description="input")
    def redacted_input(self, job: ModalJob) -> str:
        return redacted_json(job.input)

    @admin.display(description="output")
    def redacted_output(self, job: ModalJob) -> str:
        return redacted_json(job.output)

    @admin.display(description="error")
    def redacted_error(self, job: ModalJob) -> str:
        return redacted_json(job.error)

    @admin.action(description="Cancel the selected running jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        from automate_modal import services

        cancelled = 0
        for job in queryset.filter(status__in=ModalJob.ACTIVE_STATUSES):
            try:
                services.cancel_job(job, actor=actor_for_request(request))
                cancelled += 1
            except AutomateError as exc:
                self.message_user(request, f"{job.pk}: {exc.message}", messages.WARNING)
        self.message_user(request, f"Cancelled {cancelled} job(s).")


@admin.register(ModalArtifact)
class ModalArtifactAdmin(TenantScopedAdmin):
    list_display = ("name", "job", "content_type", "size", "created_at")
    list_select_related = ("job",)
    search_fields = ("name",)
    readonly_fields = ("job", "name", "content_type", "size", "url", "file", "tenant")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
