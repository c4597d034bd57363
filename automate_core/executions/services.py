"""Operations on runs that other apps call: what a run is, and what its AI steps cost."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal

from django.db import transaction

from automate_core.executions.models import Execution

#: Counters of ``Execution.usage``; ``cost`` is a decimal string, the others integers.
USAGE_COUNTERS = ("input_tokens", "output_tokens", "cached_tokens", "calls")
#: Amounts a call may measure (seconds, summed as floats to the millisecond); a run's usage holds
#: one once a call of the run reported it.
USAGE_MEASURES = ("gpu_seconds",)


def workflow_name_of(execution_id: uuid.UUID | str | None) -> str:
    """The workflow a run belongs to (its budget scope), or "" when there is no such run."""
    if not execution_id:
        return ""
    name = Execution.objects.filter(pk=execution_id).values_list("workflow_name", flat=True)
    return name.first() or ""


def add_usage(execution_id: uuid.UUID | str, usage: Mapping[str, object]) -> None:
    """Add one metered call's tokens, cost and measures (``gpu_seconds``) to the run's
    rolled-up ``usage``.

    Runs in the caller's transaction (the step's), so a step that rolls back takes its usage
    with it; the row lock serialises concurrent calls of parallel steps.
    """
    with transaction.atomic():
        run = Execution.objects.select_for_update().filter(pk=execution_id).only("usage").first()
        if run is None:
            return
        total = dict(run.usage or {})
        for counter in USAGE_COUNTERS:
            added = 1 if counter == "calls" else int(usage.get(counter) or 0)  # type: ignore[call-overload]
            total[counter] = int(total.get(counter) or 0) + added
        total["cost"] = str(
            Decimal(str(total.get("cost") or 0)) + Decimal(str(usage.get("cost") or 0))
        )
        for measure in USAGE_MEASURES:
            if usage.get(measure) is not None:
                added_amount = float(usage[measure])  # type: ignore[arg-type]
                total[measure] = round(float(total.get(measure) or 0) + added_amount, 3)
        Execution.objects.filter(pk=execution_id).update(usage=total)
