"""``model``: rows of a Django model as documents, kept current by the model's saves and deletes.

``config = {"model": "shop.Product", "fields": ["name", "description"], "title_field": "name",
"metadata_fields": ["category"], "filter": {"published": true}}``.

Only models listed in ``AUTOMATE_RAG["MODEL_SOURCES"]`` can be indexed (a source is tenant
configuration; which tables a tenant may read is the operator's decision). Rows of a model with
a ``tenant`` field are limited to the source's tenant. ``filter`` takes the model's own fields
(with ``__in``, ``__gt``... lookups), never a path through a relation.

:func:`connect` (called when the app is ready) listens to ``post_save`` and ``post_delete`` of
the allowed models and enqueues ``rag.sync_object`` in the writer's transaction, so the index
follows the data with no polling and nothing is queued for a rolled-back write.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.signals import post_delete, post_save

from rag.conf import rag_settings
from rag.sources import Listing, SourceAdapter
from rag.sync import Item

_LOOKUPS = frozenset(
    {"exact", "iexact", "in", "gt", "gte", "lt", "lte", "isnull", "contains", "icontains",
     "startswith", "istartswith"}
)  # fmt: skip
_KEYS = frozenset({"model", "fields", "title_field", "metadata_fields", "filter"})


ModelClass = type[models.Model]


def allowed_models() -> dict[str, ModelClass]:
    found = {}
    for label in rag_settings.MODEL_SOURCES:
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError) as exc:
            raise ImproperlyConfigured(
                f"AUTOMATE_RAG['MODEL_SOURCES'] names {label!r}, which is not a model: {exc}"
            ) from exc
        found[model._meta.label_lower] = model
    return found


def _field_names(model: type[models.Model]) -> set[str]:
    return {f.name for f in model._meta.concrete_fields} | {"pk"}


class ModelSource(SourceAdapter):
    type = "model"

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        problems = [f"unknown key {k!r}" for k in set(config) - _KEYS]
        label = str(config.get("model", "")).lower()
        model = allowed_models().get(label)
        if model is None:
            return [
                *problems,
                f"model {config.get('model')!r} is not in AUTOMATE_RAG['MODEL_SOURCES']",
            ]
        names = _field_names(model)
        fields = config.get("fields")
        if not isinstance(fields, list) or not fields:
            problems.append("fields must list the fields whose text is indexed")
        for key in ("fields", "metadata_fields"):
            for name in config.get(key) or []:
                if name not in names:
                    problems.append(f"{key}: {model.__name__} has no field {name!r}")
        title = config.get("title_field")
        if title is not None and title not in names:
            problems.append(f"title_field: {model.__name__} has no field {title!r}")
        flt = config.get("filter") or {}
        if not isinstance(flt, dict):
            problems.append("filter must be an object")
            flt = {}
        for key in flt:
            name, _, lookup = str(key).partition("__")
            if name not in names or (lookup and lookup not in _LOOKUPS):
                problems.append(f"filter: {key!r} is not a field of the model with a lookup")
        return problems

    @property
    def model(self) -> ModelClass:
        return allowed_models()[str(self.source.config["model"]).lower()]

    def queryset(self) -> models.QuerySet[Any]:
        model = self.model
        rows = model._default_manager.all()
        if "tenant" in _field_names(model):
            rows = rows.filter(tenant_id=self.source.tenant_id)
        return rows.filter(**(self.source.config.get("filter") or {})).order_by("pk")

    def item(self, row: models.Model) -> Item:
        config = self.source.config
        parts = []
        for name in config["fields"]:
            value = getattr(row, name)
            if value not in (None, ""):
                field = self.model._meta.pk if name == "pk" else self.model._meta.get_field(name)
                label = str(getattr(field, "verbose_name", name)).capitalize()
                parts.append(f"{label}: {value}" if len(config["fields"]) > 1 else str(value))
        title_field = config.get("title_field")
        metadata: dict[str, Any] = {
            name: _json_value(getattr(row, name)) for name in config.get("metadata_fields") or []
        }
        metadata.update(model=self.model._meta.label, pk=str(row.pk))
        return Item(
            external_id=str(row.pk),
            data="\n\n".join(parts).encode("utf-8"),
            content_type="text/plain",
            title=str(getattr(row, title_field)) if title_field else "",
            metadata=metadata,
        )

    def list_items(self) -> Listing:
        rows = self.queryset()
        return Listing(items=self._items(rows), total=rows.count())

    def _items(self, rows: models.QuerySet[Any]) -> Iterator[Item]:
        for row in rows.iterator(chunk_size=500):
            yield self.item(row)


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# -- keeping the index current -----------------------------------------------------------------


def _sources_for(instance: models.Model) -> list[Any]:
    from rag.models import KnowledgeSource

    label = instance._meta.label_lower
    sources = KnowledgeSource.objects.filter(type="model", config__model__iexact=label)
    tenant_id = getattr(instance, "tenant_id", None)
    if tenant_id is not None:
        sources = sources.filter(tenant_id=tenant_id)
    return list(sources)


def _enqueue(instance: models.Model, deleted: bool) -> None:
    from automate_core.outbox import store

    for source in _sources_for(instance):
        store.enqueue(
            "rag.sync_object",
            {"source": str(source.pk), "pk": str(instance.pk), "deleted": deleted},
            tenant=source.tenant_id,
        )


def _saved(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    if not kwargs.get("raw"):
        _enqueue(instance, deleted=False)


def _deleted(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    _enqueue(instance, deleted=True)


_connected: set[str] = set()


def connect() -> None:
    """Listen to the allowed models' saves and deletes (idempotent; re-run when the setting
    changes)."""
    for label, model in allowed_models().items():
        if label in _connected:
            continue
        post_save.connect(_saved, sender=model, dispatch_uid=f"rag.model_source.save.{label}")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"rag.model_source.delete.{label}")
        _connected.add(label)
