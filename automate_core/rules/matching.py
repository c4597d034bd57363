"""Which triggers an event fires, and a dry run that explains why.

A trigger's condition is evaluated through its compiled form (:func:`jsonlogic.compile`), which
is cached by the rule's content: every event of a type reuses the closure compiled for the first
one, and triggers with equal conditions share it. A condition that cannot compile never matches;
the dry run says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from automate_core.events.models import Event
from automate_core.rules.jsonlogic import JSONLogicError, Rule, compile
from automate_core.rules.models import Trigger


def rule_scope(event_type: str, payload: Any, event: Event | None = None) -> dict[str, Any]:
    """What a trigger condition sees: ``event`` (type, payload, source...) and ``payload``."""
    scope_event = (
        event.as_scope() if event is not None else {"type": event_type, "payload": payload}
    )
    return {"event": scope_event, "payload": payload}


@dataclass(frozen=True)
class TriggerVerdict:
    trigger: Trigger
    matched: bool
    reason: str


def compiled_condition(trigger: Trigger) -> Rule:
    """The trigger's condition compiled, from the content-keyed cache (compiled once per
    distinct condition per process). Raises JSONLogicError if the rule is malformed."""
    return compile(trigger.condition)


def evaluate(trigger: Trigger, scope: dict[str, Any]) -> TriggerVerdict:
    if not trigger.is_enabled:
        return TriggerVerdict(trigger, False, "trigger is disabled")
    if not trigger.has_condition:
        return TriggerVerdict(trigger, True, "no condition")
    try:
        condition = compiled_condition(trigger)
    except JSONLogicError as exc:
        return TriggerVerdict(trigger, False, f"condition is invalid ({exc.type}): {exc}")
    try:
        result = condition(scope)
    except JSONLogicError as exc:
        return TriggerVerdict(trigger, False, f"condition raised {exc.type!r}")
    if result:
        return TriggerVerdict(trigger, True, "condition is true")
    return TriggerVerdict(trigger, False, f"condition is false (evaluated to {result!r})")


def dry_run(tenant: Any, event_type: str, payload: Any) -> list[TriggerVerdict]:
    """Every trigger of ``tenant`` for ``event_type``, with whether it would start and why."""
    scope = rule_scope(event_type, payload)
    triggers = Trigger.objects.for_tenant(tenant).filter(event_type=event_type)
    return [evaluate(t, scope) for t in triggers.select_related("automation", "version")]


def matching_triggers(event: Event) -> list[Trigger]:
    if event.tenant_id is None:
        return []
    scope = rule_scope(event.type, event.payload, event)
    triggers = Trigger.objects.for_tenant(event.tenant_id).filter(
        event_type=event.type, is_enabled=True
    )
    return [
        t for t in triggers.select_related("automation", "version") if evaluate(t, scope).matched
    ]
