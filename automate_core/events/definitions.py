"""Events declared on models, kept current by the model's saves and deletes.

.. code-block:: python

    class Invoice(models.Model):
        events = [
            EventDefinition("invoice.paid", condition=lambda inv: inv.status == "paid"),
            EventDefinition("invoice.due", date_field="due_at",
                            condition=lambda inv: inv.status != "paid"),
        ]

* An **immediate** definition (no ``date_field``) occurs once per row, after the commit of the
  first save where its condition holds (idempotency key ``<model>:<pk>:<name>``).
* A **scheduled** definition keeps one Event per row in status ``scheduled`` at the row's
  ``date_field`` while the condition holds: a new date reschedules it, a false condition, an
  empty date or a deleted row cancels it. It occurs at its time, fired by an outbox job (a timer
  in the database). Event workflows with a negative offset start that much before.

``@on_event(name)`` (or ``@on_event(event_name=name, entity_type=...)``) runs a function when
an event occurs; ``@on_event_created`` and ``@on_event_cancelled`` when a scheduled event is
created or cancelled. Each runs as its own outbox job, so a failure is retried and never lost.
Handlers are declared in an app's ``workflows`` module or ``automations`` package, beside the
workflows they go with; those are imported at app ready (:mod:`automate_core.discovery`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save

from automate_core.discovery import discover_automations
from automate_core.events.models import Event

F = TypeVar("F", bound=Callable[[Event], Any])
Handler = Callable[[Event], Any]
# Per event name: each handler with the entity type it is limited to ("*": any).
Handlers = dict[str, list[tuple[Handler, str]]]

_occurred: Handlers = {}
_created: Handlers = {}
_cancelled: Handlers = {}


@dataclass(frozen=True)
class EventDefinition:
    name: str
    condition: Callable[[Any], bool] | None = None
    date_field: str | None = None

    def holds(self, instance: Any) -> bool:
        return self.condition is None or bool(self.condition(instance))


EntityType = str | type[models.Model]


def _entity_label(entity_type: EntityType) -> str:
    """``"*"``, or a model as ``app_label.modelname`` (from the class or a label string)."""
    if isinstance(entity_type, str):
        return entity_type.lower()
    return entity_type._meta.label_lower


def _register(table: Handlers, event_name: str | None, entity_type: EntityType) -> Callable[[F], F]:
    if not event_name:
        raise TypeError("give the event's name: @on_event('name') or @on_event(event_name=...)")
    entry_type = _entity_label(entity_type)

    def decorate(fn: F) -> F:
        entries = table.setdefault(event_name, [])
        if (fn, entry_type) not in entries:
            entries.append((fn, entry_type))
        return fn

    return decorate


def on_event(
    name: str | None = None, *, event_name: str | None = None, entity_type: EntityType = "*"
) -> Callable[[F], F]:
    """Run ``fn(event)`` when an event named ``name`` (or ``event_name``) occurs; with
    ``entity_type`` (a model or ``"app_label.Model"``), only for events about that model."""
    return _register(_occurred, name or event_name, entity_type)


def on_event_created(
    name: str | None = None, *, event_name: str | None = None, entity_type: EntityType = "*"
) -> Callable[[F], F]:
    """Run ``fn(event)`` when a scheduled event named ``name`` is created."""
    return _register(_created, name or event_name, entity_type)


def on_event_cancelled(
    name: str | None = None, *, event_name: str | None = None, entity_type: EntityType = "*"
) -> Callable[[F], F]:
    """Run ``fn(event)`` when a scheduled event named ``name`` is cancelled."""
    return _register(_cancelled, name or event_name, entity_type)


def handlers_for(phase: str, event: Event) -> list[Handler]:
    """The handlers of ``phase`` for ``event``: by its type, and by its entity's model for the
    handlers limited to one."""
    discover_automations()
    table = {"occurred": _occurred, "created": _created, "cancelled": _cancelled}[phase]
    entries = table.get(event.type, [])
    if any(entry_type != "*" for _, entry_type in entries):
        model = event.content_type.model_class() if event.content_type is not None else None
        labels = {"*"} if model is None else {"*", model._meta.label_lower, model.__name__.lower()}
        return [fn for fn, entry_type in entries if entry_type in labels]
    return [fn for fn, _ in entries]


def definitions_of(model: type[models.Model]) -> list[EventDefinition]:
    declared = getattr(model, "events", None)
    if not isinstance(declared, list | tuple):
        return []
    return [d for d in declared if isinstance(d, EventDefinition)]


def sync_instance(instance: models.Model, *, deleted: bool = False) -> None:
    """Bring the row's declared events in line with its current state."""
    from automate_core.events import scheduling

    for definition in definitions_of(type(instance)):
        if definition.date_field is None:
            if not deleted and definition.holds(instance):
                scheduling.occur_once(instance, definition.name, _tenant_of(instance))
            continue
        when: datetime | None = None if deleted else getattr(instance, definition.date_field)
        if when is None or not definition.holds(instance):
            scheduling.cancel(instance, definition.name)
        else:
            scheduling.schedule(instance, definition.name, when, _tenant_of(instance))


def _tenant_of(instance: models.Model) -> Any:
    return getattr(instance, "tenant_id", None)


def _on_save(
    sender: type[models.Model], instance: models.Model, raw: bool = False, **_: Any
) -> None:
    if raw or not definitions_of(sender):
        return
    transaction.on_commit(lambda: sync_instance(instance))


def _on_delete(sender: type[models.Model], instance: models.Model, **_: Any) -> None:
    if not definitions_of(sender):
        return
    content_type = ContentType.objects.get_for_model(sender)
    pk = str(instance.pk)

    def cancel_all() -> None:
        from automate_core.events import scheduling

        scheduling.cancel_for(content_type, pk)

    transaction.on_commit(cancel_all)


def connect() -> None:
    """Called from AppConfig.ready(): watch every model that declares ``events``."""
    post_save.connect(_on_save, dispatch_uid="automate_events_post_save")
    post_delete.connect(_on_delete, dispatch_uid="automate_events_post_delete")
