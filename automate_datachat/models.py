"""Datasets defined in the admin: what a tenant may ask about.

A :class:`Dataset` belongs to one tenant; its :class:`DatasetTable` rows expose backing
relations under short aliases. Admin-defined tables may only use the relations the operator
allowed in ``AUTOMATE_DATACHAT`` (``ALLOWED_MODELS``, ``ALLOWED_TABLES``, and
``TENANT_OWNED_TABLES`` for tables without a tenant column), and only columns that exist.
Everything downstream (guard, executor) works on :meth:`Dataset.definition`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models

from automate_core.base import SluggedModel, TenantScopedModel, TimeStampedModel, UUIDModel
from automate_datachat.conf import datachat_settings
from automate_datachat.definitions import (
    DatasetDefinition,
    TableDefinition,
    columns_from,
    filters_from,
    model_relation,
    validate,
)
from automate_datachat.errors import InvalidDataset


class Dataset(UUIDModel, TimeStampedModel, TenantScopedModel, SluggedModel):
    description = models.TextField(blank=True, help_text="What the data is about (for the prompt).")
    row_cap = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Most rows a query returns; empty: AUTOMATE_DATACHAT['DEFAULT_ROW_CAP'].",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="datachat_dataset_slug")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.row_cap is not None and not 1 <= self.row_cap <= datachat_settings.MAX_ROW_CAP:
            raise ValidationError({"row_cap": f"Between 1 and {datachat_settings.MAX_ROW_CAP}."})

    def definition(self) -> DatasetDefinition:
        """This dataset as the guard sees it, bound to its tenant."""
        return DatasetDefinition(
            slug=self.slug,
            tables=tuple(table.definition() for table in self.tables.all()),
            row_cap=self.row_cap or datachat_settings.DEFAULT_ROW_CAP,
            description=self.description,
            tenant_id=str(self.tenant_id),
        )


class DatasetTable(UUIDModel, TimeStampedModel):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="tables")
    alias = models.CharField(max_length=63, help_text="The name queries use, e.g. orders.")
    description = models.TextField(blank=True)
    model_label = models.CharField(
        max_length=200, blank=True, help_text='A Django model, e.g. "shop.Order".'
    )
    relation = models.CharField(
        max_length=127, blank=True, help_text="Or a table or view name (schema.name allowed)."
    )
    columns = models.JSONField(
        default=list,
        help_text='Allowed columns: ["id", {"name": "total", "description": "...", '
        '"samples": [12.5]}]',
    )
    tenant_column = models.CharField(
        max_length=63,
        blank=True,
        help_text="Column holding the tenant id (tenant_id for a model with a tenant field).",
    )
    tenant_owned = models.BooleanField(
        default=False, help_text="The whole relation belongs to this dataset's tenant."
    )
    row_filters = models.JSONField(
        default=dict,
        blank=True,
        help_text='Rows to keep: {"status": "paid", "region": ["eu", "us"]}.',
    )

    class Meta:
        ordering = ["alias"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "alias"], name="datachat_table_alias")
        ]

    def __str__(self) -> str:
        return self.alias

    def definition(self) -> TableDefinition:
        if self.model_label:
            relation, model_tenant_column = model_relation(self.model_label)
        else:
            relation, model_tenant_column = self.relation, None
        tenant_column = self.tenant_column or (None if self.tenant_owned else model_tenant_column)
        return TableDefinition(
            alias=self.alias,
            relation=relation,
            columns=columns_from(self.columns or []),
            tenant_column=tenant_column,
            tenant_owned=self.tenant_owned,
            row_filters=filters_from(self.row_filters),
            description=self.description,
            model_label=self.model_label,
        )

    def clean(self) -> None:
        if bool(self.model_label) == bool(self.relation):
            raise ValidationError("Give either a model or a relation.")
        try:
            table = self.definition()
            validate(DatasetDefinition(slug="check", tables=(table,), row_cap=1))
        except InvalidDataset as exc:
            raise ValidationError(exc.message) from exc
        self._check_allowed(table)
        self._check_columns(table)

    def _check_allowed(self, table: TableDefinition) -> None:
        if self.model_label and self.model_label not in datachat_settings.ALLOWED_MODELS:
            raise ValidationError({"model_label": "Not in AUTOMATE_DATACHAT['ALLOWED_MODELS']."})
        allowed_tables = datachat_settings.ALLOWED_TABLES
        if self.relation and self.relation not in allowed_tables and not self.tenant_owned:
            raise ValidationError({"relation": "Not in AUTOMATE_DATACHAT['ALLOWED_TABLES']."})
        if self.tenant_owned:
            owned = datachat_settings.TENANT_OWNED_TABLES.get(self.dataset.tenant.slug, [])
            if table.relation not in owned:
                raise ValidationError(
                    {"tenant_owned": "Not a table of this tenant in TENANT_OWNED_TABLES."}
                )

    def _check_columns(self, table: TableDefinition) -> None:
        existing = relation_columns(table.relation)
        if existing is None:
            raise ValidationError({"relation": f"No relation {table.relation!r}."})
        wanted = {*table.column_names, *(c for c, _ in table.row_filters)}
        if table.tenant_column:
            wanted.add(table.tenant_column)
        missing = sorted(wanted - existing)
        if missing:
            raise ValidationError({"columns": f"No such columns: {', '.join(missing)}."})


def relation_columns(relation: str) -> set[str] | None:
    """Column names of a table or view, None if it does not exist."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [relation])
        if cursor.fetchone()[0] is None:
            return None
        rows: Any = connection.introspection.get_table_description(cursor, relation)
    return {row.name for row in rows}


class DataChatSession(UUIDModel, TimeStampedModel, TenantScopedModel):
    """A conversation about one dataset: follow-up questions read its history. Kept until
    ``expires_at`` (``SESSION_TTL_SECONDS`` after its last message), then deleted with its
    messages by the ``datachat.expire_sessions`` maintenance task."""

    dataset = models.SlugField(max_length=100, help_text="The dataset's slug.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    end_user = models.CharField(
        max_length=200, blank=True, help_text="The host site's end user id (widgets, API)."
    )
    #: Who opened it through the API (``APIKey`` id), so keys only see their own sessions.
    api_key_id = models.UUIDField(null=True, blank=True)
    context = models.JSONField(default=dict, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="datachat_session_recent")]

    def __str__(self) -> str:
        return f"{self.dataset} session {self.pk}"


class DataChatMessage(UUIDModel, TimeStampedModel):
    """One turn: the user's question, or the assistant's answer with the SQL that ran, the
    first ``MESSAGE_ROWS`` rows of its result, the Vega-Lite chart spec and the model usage."""

    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    session = models.ForeignKey(DataChatSession, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    sql = models.TextField(blank=True)
    data = models.JSONField(
        default=dict, blank=True, help_text="columns, rows (capped), row_count, truncated"
    )
    chart = models.JSONField(null=True, blank=True, help_text="The Vega-Lite spec.")
    usage = models.JSONField(default=dict, blank=True)
    error = models.JSONField(null=True, blank=True, help_text="A NormalizedError body.")

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"


class DatasetExample(UUIDModel, TimeStampedModel, TenantScopedModel):
    """A question and the SQL that answers it, curated per dataset: the most similar ones go
    into the NL→SQL prompt. The SQL must pass the guard against the dataset when saved."""

    dataset = models.SlugField(max_length=100, help_text="The dataset's slug.")
    question = models.TextField()
    sql = models.TextField()

    class Meta:
        ordering = ["dataset", "created_at"]
        indexes = [models.Index(fields=["tenant", "dataset"], name="datachat_example_dataset")]

    def __str__(self) -> str:
        return self.question[:80]

    def clean(self) -> None:
        from automate_datachat import guard
        from automate_datachat.errors import DatasetNotFound, SQLRejected
        from automate_datachat.registry import resolve_dataset

        try:
            guard.check(self.sql, resolve_dataset(self.tenant, self.dataset))
        except DatasetNotFound as exc:
            raise ValidationError({"dataset": exc.message}) from exc
        except SQLRejected as exc:
            raise ValidationError({"sql": f"{exc.message} ({exc.reason})"}) from exc
