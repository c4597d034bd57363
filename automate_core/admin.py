import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest
from django.utils.html import format_html

from automate_core.admin_base import (
    ImmutableAdmin,
    RedactedPayloadAdmin,
    TenantScopedAdmin,
    redacted_json,
)
from automate_core.connectors.models import ConnectionProfile
from automate_core.events.models import Event, WebhookSource
from automate_core.executions.models import Execution, StepRun
from automate_core.governance import audit, stored_secrets
from automate_core.governance.models import AuditLog, Budget, StoredSecret
from automate_core.outbox import store as outbox_store
from automate_core.outbox.models import OutboxJob
from automate_core.rules.models import Trigger
from automate_core.tenancy.models import APIKey, Tenant, TenantMembership
from automate_core.workflows import engine
from automate_core.workflows.models import Automation, WorkflowVersion


def _audit_key(request: HttpRequest, action: str, key: APIKey, data: Any = None) -> None:
    actor = audit.actor_for_request(request)
    audit.record(action, actor=actor, tenant=key.tenant, target=f"api_key:{key.prefix}", data=data)


class MembershipInline(admin.TabularInline):
    model = TenantMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_lookup = "pk"
    list_display = ["name", "slug", "is_active", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(APIKey)
class APIKeyAdmin(TenantScopedAdmin):
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
            with transaction.atomic():
                super().save_model(request, obj, form, change)
                _audit_key(request, "api_key.create", obj, {"name": obj.name, "scopes": obj.scopes})
            messages.warning(request, f"New API key (copy it now, it is not shown again): {raw}")
            return
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for key in queryset.filter(revoked_at__isnull=True):
            with transaction.atomic():
                key.revoke()
                _audit_key(request, "api_key.revoke", key)

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
class OutboxJobAdmin(TenantScopedAdmin):
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
class EventAdmin(RedactedPayloadAdmin):
    """Events are immutable: listed and inspected, never edited here."""

    list_display = ["type", "tenant", "status", "source", "occurs_at", "created_at"]
    list_filter = ["status", "source", "type"]
    search_fields = ["type", "=idempotency_key", "=trace_id"]
    readonly_fields = [f.name for f in Event._meta.fields]
    payload_fields = ("payload",)

    @admin.display(description="payload")
    def redacted_payload(self, obj: Event) -> str:
        return redacted_json(obj.payload)

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
class ExecutionAdmin(RedactedPayloadAdmin):
    list_display = ["workflow_name", "status", "current_step", "tenant", "wake_at", "created_at"]
    list_filter = ["status", "workflow_name"]
    search_fields = ["=id", "workflow_name", "=trace_id"]
    readonly_fields = [f.name for f in Execution._meta.fields]
    payload_fields = ("context", "result", "error", "waiting_for")
    inlines = [StepRunInline]
    actions = ["send_awaited_signal", "retry_failed", "cancel_runs"]

    @admin.display(description="context")
    def redacted_context(self, obj: Execution) -> str:
        return redacted_json(obj.context)

    @admin.display(description="result")
    def redacted_result(self, obj: Execution) -> str:
        return redacted_json(obj.result)

    @admin.display(description="error")
    def redacted_error(self, obj: Execution) -> str:
        return redacted_json(obj.error)

    @admin.display(description="waiting for")
    def redacted_waiting_for(self, obj: Execution) -> str:
        return redacted_json(obj.waiting_for)

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
class AutomationAdmin(TenantScopedAdmin):
    list_display = ["name", "slug", "tenant", "created_at"]
    search_fields = ["name", "slug"]
    inlines = [WorkflowVersionInline]


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(TenantScopedAdmin):
    tenant_lookup = "automation__tenant"
    list_display = ["automation", "version", "is_live", "published_at"]
    list_filter = ["is_live"]
    actions = ["publish"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        frozen = ["digest", "published_at", "is_live"]
        return [*frozen, "graph", "automation", "version"] if obj and obj.is_published else frozen

    @admin.action(description="Publish and make live")
    def publish(self, request: HttpRequest, queryset: Any) -> None:
        for version in queryset:
            version.publish(actor=audit.actor_for_request(request))
        messages.info(request, "Published.")


@admin.register(Trigger)
class TriggerAdmin(TenantScopedAdmin):
    list_display = ["name", "event_type", "automation", "version", "is_enabled", "tenant"]
    list_filter = ["is_enabled", "event_type"]


@admin.register(WebhookSource)
class WebhookSourceAdmin(TenantScopedAdmin):
    list_display = ["source", "tenant", "secret_ref", "is_enabled"]


@admin.register(Budget)
class BudgetAdmin(TenantScopedAdmin):
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

    def save_model(self, request: HttpRequest, obj: Budget, form: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit.record(
                "budget.change",
                actor=audit.actor_for_request(request),
                tenant=obj.tenant,
                target=f"budget:{obj.pk}",
                data={
                    "created": not change,
                    "changed": form.changed_data,
                    "scope": f"{obj.scope_type}:{obj.scope_id}",
                    "period": obj.period,
                    "limit_tokens": obj.limit_tokens,
                    "limit_cost": obj.limit_cost,
                },
            )


# -- governance: audit log and stored secrets ----------------------------------------------------


AUDIT_LOG_FIELDS = (
    "id", "seq", "created_at", "tenant_id", "actor", "action", "target", "data",
    "trace_id", "prev_hash", "hash",
)  # fmt: skip


@admin.register(AuditLog)
class AuditLogAdmin(ImmutableAdmin):
    """Read-only: rows are append-only. Each page verifies the rows it shows (their hash and
    their link to the row before them, one extra query); the whole chain is checked by
    ``manage.py automate_audit_verify``, not on every page load."""

    list_display = ["created_at", "actor", "action", "target", "tenant_id", "trace_id", "chain"]
    list_filter = ["action"]
    search_fields = ["actor", "action", "target", "=trace_id"]
    show_full_result_count = False
    fields = (*AUDIT_LOG_FIELDS, "chain")
    readonly_fields = (*AUDIT_LOG_FIELDS, "chain")
    actions = None

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        # result_list caches its rows, so the template renders these very instances.
        rows = list(changelist.result_list)
        verdicts = audit.verify_rows(rows)
        for row in rows:
            row.chain_verdict = verdicts[row.id]
        if request.method == "GET" and rows:
            self._report_page(request, rows)
        return changelist

    def _report_page(self, request: HttpRequest, rows: list[AuditLog]) -> None:
        broken = [
            (row.seq, row.chain_verdict.reason)
            for row in rows
            if row.chain_verdict is not None and not row.chain_verdict.ok
        ]
        full_check = "Check the whole chain with manage.py automate_audit_verify."
        if not broken:
            self.message_user(
                request,
                f"The {len(rows)} row(s) on this page match their hashes and follow the rows "
                f"before them. {full_check}",
                messages.SUCCESS,
            )
            return
        listed = "; ".join(f"seq {seq}: {reason}" for seq, reason in broken[:10])
        self.message_user(
            request,
            f"Audit chain BROKEN: {len(broken)} of {len(rows)} row(s) on this page fail "
            f"verification ({listed}). {full_check}",
            messages.ERROR,
        )

    @admin.display(description="chain")
    def chain(self, obj: AuditLog) -> str:
        verdict = obj.chain_verdict
        if verdict is None:  # the change page: one row
            verdict = audit.verify_rows([obj])[obj.id]
        return str(verdict)


class StoredSecretForm(forms.ModelForm):
    """The value is write-only: never rendered back, left empty on change to keep it."""

    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        strip=False,
        help_text="Write-only. On change, leave empty to keep the current value.",
    )

    class Meta:
        model = StoredSecret
        fields = ["tenant", "name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["value"].required = self.instance._state.adding


@admin.register(StoredSecret)
class StoredSecretAdmin(TenantScopedAdmin):
    """Lists names only; every write goes through the service, so it is encrypted and audited."""

    form = StoredSecretForm
    list_display = ["name", "tenant", "key_id", "updated_at", "created_by"]
    list_filter = ["tenant"]
    search_fields = ["name"]
    list_select_related = ["tenant", "created_by"]

    fields = ["tenant", "name", "value", "key_id", "created_by", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        frozen = ["key_id", "created_by", "updated_at"]
        return [*frozen, "tenant", "name"] if obj else frozen

    def save_model(self, request: HttpRequest, obj: StoredSecret, form: Any, change: bool) -> None:
        value = form.cleaned_data.get("value")
        if not change and request.user.is_authenticated:
            obj.created_by = request.user
        if value:
            stored_secrets.write(obj, value, actor=audit.actor_for_request(request))

    def delete_model(self, request: HttpRequest, obj: StoredSecret) -> None:
        with transaction.atomic():
            _audit_secret_delete(request, obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        with transaction.atomic():
            for obj in queryset:
                _audit_secret_delete(request, obj)
            super().delete_queryset(request, queryset)


def _audit_secret_delete(request: HttpRequest, obj: StoredSecret) -> None:
    audit.record(
        "secret.delete",
        actor=audit.actor_for_request(request),
        tenant=obj.tenant,
        target=f"secret:{obj.name}",
    )


@admin.register(ConnectionProfile)
class ConnectionProfileAdmin(TenantScopedAdmin):
    """Configs hold SecretRefs, never values; the redactor still guards what is shown."""

    list_display = ["name", "slug", "connector", "tenant", "updated_at"]
    list_filter = ["connector"]
    search_fields = ["name", "slug"]
