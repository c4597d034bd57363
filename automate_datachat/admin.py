"""Admin pages for datasets: staff define what their tenant may ask about. Saves are audited;
a table's backing relation must be in the operator's allowlists (see ``DatasetTable.clean``).

A dataset's "Ask" page lets staff ask it questions through the same service as the API
(:func:`automate_datachat.services.ask`: the guard, the read-only role, the dataset's tenant, an
audit row per query attributed to the staff user) and shows the SQL that ran, the table, the
chart (an SVG rendered on the server, shown with ``<img>``, so nothing in it can run) and a CSV
download. The conversation is a data chat session of that user.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from automate_core.admin_base import TenantScopedAdmin
from automate_core.errors import AutomateError
from automate_core.governance import audit
from automate_core.tracing import current_trace_id, new_trace_id
from automate_datachat import charts, export, services, sessions
from automate_datachat.asking import Answer
from automate_datachat.conf import datachat_settings
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


class AskForm(forms.Form):
    question = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 3, "cols": 80})
    )
    #: The conversation to continue (follow-up questions read its history).
    session = forms.UUIDField(required=False, widget=forms.HiddenInput)


@admin.register(Dataset)
class DatasetAdmin(TenantScopedAdmin):
    list_display = ["name", "slug", "tenant", "row_cap", "table_count", "ask", "updated_at"]
    search_fields = ["name", "slug", "description"]
    readonly_fields = ["ask"]
    inlines = [DatasetTableInline]

    @admin.display(description="tables")
    def table_count(self, obj: Dataset) -> int:
        return obj.tables.count()

    @admin.display(description="ask")
    def ask(self, obj: Dataset) -> str:
        if obj.pk is None:
            return "-"
        return format_html('<a href="{}">Ask this dataset</a>', _ask_url(obj, "ask"))

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/ask/", wrap(self.ask_view), name=_ASK_URL + "ask"),
            path(
                "<path:object_id>/ask/<uuid:message>/chart.svg",
                wrap(self.chart_view),
                name=_ASK_URL + "chart",
            ),
            path(
                "<path:object_id>/ask/<uuid:message>/results.csv",
                wrap(self.results_view),
                name=_ASK_URL + "results",
            ),
            *super().get_urls(),
        ]

    def _visible(self, request: HttpRequest, object_id: str) -> Dataset:
        dataset = self.get_object(request, object_id)  # through the tenant-scoped queryset
        if dataset is None or not self.has_view_permission(request, dataset):
            raise Http404("No such dataset.")
        return dataset

    def ask_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Ask a question (POST) and show the answer: SQL, table, chart, CSV download."""
        dataset = self._visible(request, object_id)
        form = AskForm(request.POST or None)
        answer: Answer | None = None
        error = ""
        if request.method == "POST" and form.is_valid():
            try:
                answer = _ask(request, dataset, form.cleaned_data)
            except AutomateError as exc:
                error = f"{exc.message} ({exc.code})"
            if answer is not None and answer.session is not None:
                form = AskForm(initial={"session": answer.session.pk})
        columns, rows = [], []
        if answer is not None and answer.result is not None:
            columns = [column.name for column in answer.result.columns]
            rows = answer.result.json_rows()[: int(datachat_settings.MESSAGE_ROWS)]
        message = answer.message if answer is not None else None
        return TemplateResponse(
            request,
            "admin/automate_datachat/dataset/ask.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "original": dataset,
                "title": f"Ask {dataset}",
                "form": form,
                "answer": answer,
                "error": error,
                "columns": columns,
                "rows": rows,
                "chart_url": _ask_url(dataset, "chart", message)
                if message is not None and answer is not None and answer.chart
                else "",
                "csv_url": _ask_url(dataset, "results", message)
                if message is not None and rows
                else "",
            },
        )

    def _message(self, request: HttpRequest, object_id: str, message: uuid.UUID) -> Any:
        dataset = self._visible(request, object_id)
        found = DataChatMessage.objects.filter(
            pk=message, session__tenant_id=dataset.tenant_id, session__dataset=dataset.slug
        ).first()
        if found is None:
            raise Http404("No such answer.")
        return found

    def chart_view(self, request: HttpRequest, object_id: str, message: uuid.UUID) -> HttpResponse:
        found = self._message(request, object_id, message)
        if not found.chart:
            raise Http404("This answer has no chart.")
        response = HttpResponse(charts.render(found.chart, format="svg"), "image/svg+xml")
        response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
        return response

    def results_view(
        self, request: HttpRequest, object_id: str, message: uuid.UUID
    ) -> StreamingHttpResponse:
        found = self._message(request, object_id, message)
        if not found.data.get("columns"):
            raise Http404("This answer has no result.")
        columns = [(column["name"], column["type"]) for column in found.data["columns"]]
        response = StreamingHttpResponse(
            export.csv_lines(columns, found.data.get("rows", [])), "text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="datachat-{message}.csv"'
        return response

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


_ASK_URL = "automate_datachat_dataset_"


def _ask_url(dataset: Dataset, name: str, message: DataChatMessage | None = None) -> str:
    args: list[Any] = [dataset.pk] if message is None else [dataset.pk, message.pk]
    return reverse(f"admin:{_ASK_URL}{name}", args=args)


def _ask(request: HttpRequest, dataset: Dataset, data: dict[str, Any]) -> Answer:
    """The API's ask, for a staff user: the dataset's tenant and model, the user's session."""
    session = sessions.open_session(
        tenant=dataset.tenant, dataset=dataset.slug, session=data.get("session"), user=request.user
    )
    context = services.CallContext(
        trace_id=current_trace_id() or new_trace_id(),
        idempotency_key=f"admin-datachat-ask:{uuid.uuid4().hex}",
    )
    return services.ask(
        tenant=dataset.tenant,
        dataset=dataset,
        question=data["question"],
        session=session,
        context=context,
        actor=request.user,
    )


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
