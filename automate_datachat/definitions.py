"""What a tenant may ask about, as frozen values every path shares.

A :class:`DatasetDefinition` is built from an admin-defined ``Dataset`` row or from a code
registration; the guard and the executor only ever see this form. It is *bound* to one tenant
(``tenant_id``) before the guard rewrites SQL against it, so the tenant a query is scoped to
always comes from the server, never from the query.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from automate_datachat.errors import InvalidDataset

#: Unquoted, lower-case Postgres identifiers: what aliases, columns and relations must look like.
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: Prefixes kept for Postgres' catalogs and for names the guard generates.
RESERVED_PREFIXES = ("pg_", "_dc_")

FilterValue = str | int | float | bool


@dataclass(frozen=True)
class ColumnDefinition:
    """An allowed column; the description and sample values go into the NL→SQL prompt."""

    name: str
    description: str = ""
    samples: tuple[Any, ...] = ()


@dataclass(frozen=True)
class TableDefinition:
    """A backing relation exposed under ``alias``, reduced to the allowed ``columns``.

    Exactly one of ``tenant_column`` (rows whose column equals the tenant id) or
    ``tenant_owned`` (the whole relation belongs to the dataset's tenant) scopes its rows;
    ``row_filters`` narrows them further (``column = value`` or ``column IN (values)``).
    """

    alias: str
    relation: str
    columns: tuple[ColumnDefinition, ...]
    tenant_column: str | None = None
    tenant_owned: bool = False
    row_filters: tuple[tuple[str, tuple[FilterValue, ...]], ...] = ()
    description: str = ""
    model_label: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def schema_and_name(self) -> tuple[str | None, str]:
        schema, _, name = self.relation.rpartition(".")
        return schema or None, name


@dataclass(frozen=True)
class DatasetDefinition:
    slug: str
    tables: tuple[TableDefinition, ...]
    row_cap: int
    description: str = ""
    #: The tenant whose rows the SQL is restricted to (``str(tenant.pk)``); None until bound.
    tenant_id: str | None = None
    _by_alias: dict[str, TableDefinition] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        self._by_alias.update((table.alias, table) for table in self.tables)

    def table(self, alias: str) -> TableDefinition | None:
        return self._by_alias.get(alias)

    def bind(self, tenant_id: Any) -> DatasetDefinition:
        return dataclasses.replace(self, tenant_id=str(tenant_id))


def columns_from(values: Iterable[str | Mapping[str, Any] | ColumnDefinition]) -> tuple:
    """Columns from names, ``{"name", "description", "samples"}`` dicts or definitions."""
    result = []
    for value in values:
        if isinstance(value, ColumnDefinition):
            result.append(value)
        elif isinstance(value, str):
            result.append(ColumnDefinition(value))
        elif isinstance(value, Mapping):
            result.append(
                ColumnDefinition(
                    name=str(value.get("name", "")),
                    description=str(value.get("description", "")),
                    samples=tuple(value.get("samples") or ()),
                )
            )
        else:
            raise InvalidDataset(f"A column must be a name or an object, not {value!r}.")
    return tuple(result)


def filters_from(
    value: Mapping[str, Any] | None,
) -> tuple[tuple[str, tuple[FilterValue, ...]], ...]:
    """``{"status": "paid", "region": ["eu", "us"]}`` as sorted ``(column, values)`` pairs."""
    result = []
    for column, raw in sorted((value or {}).items()):
        values = tuple(raw) if isinstance(raw, list | tuple) else (raw,)
        if not values or not all(
            isinstance(v, str | int | float | bool) and v is not None for v in values
        ):
            raise InvalidDataset(
                f"Row filter {column!r} must be a string, number or boolean, or a non-empty "
                "list of them.",
                details={"row_filters": column},
            )
        result.append((str(column), values))
    return tuple(result)


def model_relation(model_label: str) -> tuple[str, str | None]:
    """The table of a Django model and its tenant column (``tenant_id`` when the model has a
    ``tenant`` foreign key, else None)."""
    from django.apps import apps

    try:
        model = apps.get_model(model_label)
    except (LookupError, ValueError) as exc:
        raise InvalidDataset(f"No model {model_label!r}.", details={"model": model_label}) from exc
    fields = {f.name: f for f in model._meta.concrete_fields}
    tenant = fields.get("tenant")
    return model._meta.db_table, (tenant.column if tenant is not None else None)


def validate(dataset: DatasetDefinition) -> None:
    """Refuse a definition the guard could not rewrite safely: bad identifiers, duplicate
    aliases, a table with no columns or with neither (or both) tenant scopings."""
    if not dataset.tables:
        raise InvalidDataset("A dataset needs at least one table.")
    if dataset.row_cap < 1:
        raise InvalidDataset("row_cap must be at least 1.")
    seen: set[str] = set()
    for table in dataset.tables:
        where = {"table": table.alias}
        _identifier(table.alias, "alias", where, reserved=True)
        if table.alias in seen:
            raise InvalidDataset(f"Two tables use the alias {table.alias!r}.", details=where)
        seen.add(table.alias)
        schema, name = table.schema_and_name
        for part in (schema, name):
            if part is not None:
                _identifier(part, "relation", where, reserved=True)
        if not table.columns:
            raise InvalidDataset(f"Table {table.alias!r} allows no columns.", details=where)
        names = [column.name for column in table.columns]
        if len(set(names)) != len(names):
            raise InvalidDataset(f"Table {table.alias!r} lists a column twice.", details=where)
        for column in names:
            _identifier(column, "column", where, reserved=False)
        if bool(table.tenant_column) == table.tenant_owned:
            raise InvalidDataset(
                f"Table {table.alias!r} needs a tenant column, or to be marked tenant_owned "
                "(not both).",
                details=where,
            )
        if table.tenant_column:
            _identifier(table.tenant_column, "tenant_column", where, reserved=False)
        for column, _ in table.row_filters:
            _identifier(column, "row_filters", where, reserved=False)


def _identifier(value: str, what: str, where: dict[str, str], *, reserved: bool) -> None:
    if not IDENTIFIER.match(value) or (reserved and value.startswith(RESERVED_PREFIXES)):
        raise InvalidDataset(
            f"{what} {value!r} must be a lower-case identifier (letters, digits, _)"
            + (", not starting with pg_ or _dc_." if reserved else "."),
            details={**where, what: value},
        )
