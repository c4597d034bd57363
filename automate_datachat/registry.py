"""Datasets that apps ship in code, and resolving a dataset for a tenant.

Call :func:`register_dataset` from an ``AppConfig.ready()``. A registered dataset is offered to
every tenant (or only to the tenant slugs listed in ``tenants``) and, like an admin-defined one,
is bound to the asking tenant before the guard sees it. A tenant's own ``Dataset`` row with the
same slug takes precedence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from automate_datachat.conf import datachat_settings
from automate_datachat.definitions import (
    ColumnDefinition,
    DatasetDefinition,
    TableDefinition,
    columns_from,
    filters_from,
    model_relation,
    validate,
)
from automate_datachat.errors import DatasetNotFound, InvalidDataset

if TYPE_CHECKING:
    from automate_core.tenancy.models import Tenant


@dataclass(frozen=True)
class _Registration:
    definition: DatasetDefinition
    tenants: frozenset[str] | None


_registry: dict[str, _Registration] = {}


def table(
    alias: str,
    *,
    columns: Iterable[str | Mapping[str, Any] | ColumnDefinition],
    model: str = "",
    relation: str = "",
    tenant_column: str | None = None,
    tenant_owned: bool = False,
    row_filters: Mapping[str, Any] | None = None,
    description: str = "",
) -> TableDefinition:
    """A table of a registered dataset, backed by a Django model (``"shop.Order"``: its table,
    and ``tenant_id`` as tenant column when it has a ``tenant`` field) or a table/view name."""
    if bool(model) == bool(relation):
        raise InvalidDataset(f"Table {alias!r} needs exactly one of model= or relation=.")
    if model:
        relation, model_tenant_column = model_relation(model)
        if tenant_column is None and not tenant_owned:
            tenant_column = model_tenant_column
    return TableDefinition(
        alias=alias,
        relation=relation,
        columns=columns_from(columns),
        tenant_column=tenant_column,
        tenant_owned=tenant_owned,
        row_filters=filters_from(row_filters),
        description=description,
        model_label=model,
    )


def register_dataset(
    slug: str,
    *,
    tables: Iterable[TableDefinition],
    description: str = "",
    row_cap: int | None = None,
    tenants: Iterable[str] | None = None,
) -> DatasetDefinition:
    """Offer a dataset defined in code (to the tenants with these slugs, or to all)."""
    definition = DatasetDefinition(
        slug=slug,
        tables=tuple(tables),
        row_cap=row_cap or datachat_settings.DEFAULT_ROW_CAP,
        description=description,
    )
    validate(definition)
    _registry[slug] = _Registration(definition, frozenset(tenants) if tenants else None)
    return definition


def unregister_dataset(slug: str) -> None:
    _registry.pop(slug, None)


def registered_datasets() -> list[DatasetDefinition]:
    return [registration.definition for registration in _registry.values()]


def registered_for(tenant: Tenant) -> list[DatasetDefinition]:
    """The registered datasets ``tenant`` may use, bound to it."""
    return [
        registration.definition.bind(tenant.pk)
        for registration in _registry.values()
        if registration.tenants is None or tenant.slug in registration.tenants
    ]


def resolve_dataset(tenant: Tenant, slug: str) -> DatasetDefinition:
    """The dataset ``slug`` as ``tenant`` sees it, bound to the tenant: its own ``Dataset`` row
    if it has one, else a registered dataset offered to it."""
    from automate_datachat.models import Dataset

    row = Dataset.objects.for_tenant(tenant).prefetch_related("tables").filter(slug=slug).first()
    if row is not None:
        return row.definition()
    registration = _registry.get(slug)
    if registration is None or (
        registration.tenants is not None and tenant.slug not in registration.tenants
    ):
        raise DatasetNotFound(details={"dataset": slug})
    return registration.definition.bind(tenant.pk)
