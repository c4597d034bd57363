import json
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html

from automate_core.events.models import Event
from automate_core.events.webhooks import WebhookSource
from automate_core.executions.models import Execution, StepRun
from automate_core.governance.budget_models import Budget
from automate_core.outbox import store as outbox_store
from automate_core.outbox.models import OutboxJob
from automate_core.rules.models import Trigger
from automate_core.tenancy.models import APIKey, Tenant, TenantMembership
from automate_core.workflows import engine
from automate_core.workflows.models import Automation, WorkflowVersion


class MembershipInline(admin.TabularInline):
    model = TenantMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    """The raw key is shown once, in the message after creation; only its hash is kept."""

    list_display = ["name", "tenant", "prefix", "scopes", "is_active", "last_used_at", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "last_used_at", "revoked_at", "created_at", "created_by"]
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: APIKey, form: Any, change: bool) -> None:
        if not change:
            raw = obj.assign_secret()
            if request.user.is_authenticated:
                obj.created_by = request.user
            super().save_model(request, obj, form, change)
            messages.warning(request, f"New API key (copy it now, it is not shown again): {raw}")
            return
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for key in queryset:
            key.revoke()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: keys stay for the audit trail


OUTBOX_JOB_FIELDS = (
    "id",
    "kind",
    "tenant",
    "status",
    "attempts",
    "max_attempts",
    "available_at",
    "lease_owner",
    "lease_expires_at",
    "fencing_token",
    "started_at",
    "finished_at",
    "idempotency_key",
    "trace_id",
    "payload_json",
    "last_error_text",
    "created_at",
    "updated_at",
)


@admin.register(OutboxJob)
class OutboxJobAdmin(admin.ModelAdmin):
    """Jobs are written only by the runtime's conditional updates: here they are read-only,
    except that dead jobs can be redriven (put back in the queue with fresh attempts)."""

    list_display = [
        "id",
        "kind",
        "status",
        "tenant",
        "attempts",
        "max_attempts",
        "available_at",
        "lease_owner",
        "updated_at",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["tenant"]
    search_fields = ["=id", "kind", "=idempotency_key", "=trace_id"]
    show_full_result_count = False  # no count(*) over a large queue on every page
    fields = OUTBOX_JOB_FIELDS
    readonly_fields = OUTBOX_JOB_FIELDS
    actions = ["redrive"]

    @admin.display(description="payload")
    def payload_json(self, obj: OutboxJob) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, default=str))

    @admin.display(description="last error")
    def last_error_text(self, obj: OutboxJob) -> str:
        return format_html("<pre>{}</pre>", obj.last_error)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs are enqueued by the runtime, in the producer's transaction

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The list (and its actions) needs change permission; a saved form would overwrite a
        # running job's lease columns, so the object page stays view-only.
        return obj is None and super().has_change_permission(request)

    @admin.action(description="Redrive selected dead jobs", permissions=["change"])
    def redrive(self, request: HttpRequest, queryset: Any) -> None:
        selected = list(queryset.values_list("id", flat=True))
        moved = outbox_store.redrive(selected)
        self.message_user(request, f"Re-queued {moved} dead job(s).", messages.SUCCESS)
        if moved < len(selected):
            self.message_user(
                request,
                f"Skipped {len(selected) - moved} job(s) that are not dead.",
                messages.WARNING,
            )


# -- runtime -------------------------------------------------------------------------------------


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """Events are immutable: listed and inspected, never edited here."""

    list_display = ["type", "tenant", "status", "source", "occurs_at", "created_at"]
    list_filter = ["status", "source", "type"]
    search_fields = ["type", "=idempotency_key", "=trace_id"]
    readonly_fields = [f.name for f in Event._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class StepRunInline(admin.TabularInline):
    """The run's timeline: one row per step visit."""

    model = StepRun
    extra = 0
    can_delete = False
    ordering = ["seq"]
    readonly_fields = (
        "seq",
        "step_id",
        "status",
        "attempt",
        "duration_ms",
        "output",
        "error",
        "idempotency_key",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    list_display = ["workflow_name", "status", "current_step", "tenant", "wake_at", "created_at"]
    list_filter = ["status", "workflow_name"]
    search_fields = ["=id", "workflow_name", "=trace_id"]
    readonly_fields = [f.name for f in Execution._meta.fields]
    inlines = [StepRunInline]
    actions = ["send_awaited_signal", "retry_failed", "cancel_runs"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Send the signal they wait for (waiting runs)")
    def send_awaited_signal(self, request: HttpRequest, queryset: Any) -> None:
        resumed = 0
        for run in queryset.filter(status=Execution.Status.WAITING, waiting_for__kind="signal"):
            resumed += len(engine.signal(run.waiting_for["name"], {}, execution=run))
        messages.info(request, f"Resumed {resumed} run(s).")

    @admin.action(description="Retry from the failed step (failed runs)")
    def retry_failed(self, request: HttpRequest, queryset: Any) -> None:
        runs = list(queryset.filter(status=Execution.Status.FAILED))
        for run in runs:
            engine.retry(run)
        messages.info(request, f"Retried {len(runs)} run(s).")

    @admin.action(description="Cancel (unfinished runs)")
    def cancel_runs(self, request: HttpRequest, queryset: Any) -> None:
        runs = list(queryset.exclude(status__in=Execution.FINISHED))
        for run in runs:
            engine.cancel(run)
        messages.info(request, f"Cancelled {len(runs)} run(s).")


class WorkflowVersionInline(admin.TabularInline):
    model = WorkflowVersion
    extra = 0
    readonly_fields = ("version", "is_live", "published_at", "digest")
    fields = readonly_fields
    can_delete = False


@admin.register(Automation)
class AutomationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "tenant", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [WorkflowVersionInline]


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(admin.ModelAdmin):
    list_display = ["automation", "version", "is_live", "published_at"]
    list_filter = ["is_live"]
    actions = ["publish"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        frozen = ["digest", "published_at", "is_live"]
        return [*frozen, "graph", "automation", "version"] if obj and obj.is_published else frozen

    @admin.action(description="Publish and make live")
    def publish(self, request: HttpRequest, queryset: Any) -> None:
        for version in queryset:
            version.publish()
        messages.info(request, "Published.")


@admin.register(Trigger)
class TriggerAdmin(admin.ModelAdmin):
    list_display = ["name", "event_type", "automation", "version", "is_enabled", "tenant"]
    list_filter = ["is_enabled", "event_type"]


@admin.register(WebhookSource)
class WebhookSourceAdmin(admin.ModelAdmin):
    list_display = ["source", "tenant", "secret_ref", "is_enabled"]


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    """Limits are editable; the counters move only through the budgets service."""

    list_display = [
        "scope_type",
        "scope_id",
        "period",
        "period_start",
        "limit_tokens",
        "spent_tokens",
        "reserved_tokens",
        "limit_cost",
        "spent_cost",
        "reserved_cost",
        "tenant",
    ]
    list_filter = ["scope_type", "period"]
    search_fields = ["scope_id"]
    readonly_fields = ["spent_tokens", "spent_cost", "reserved_tokens", "reserved_cost"]
