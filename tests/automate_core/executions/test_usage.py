"""A run's rolled-up usage: what each metered call of the run adds."""

from __future__ import annotations

import pytest

from automate_core.executions.models import Execution
from automate_core.executions.services import add_usage

pytestmark = pytest.mark.django_db


def usage_after(*calls: dict[str, object]) -> dict[str, object]:
    run = Execution.objects.create(workflow_name="usage", current_step="one")
    for call in calls:
        add_usage(run.pk, call)
    return Execution.objects.get(pk=run.pk).usage


def test_tokens_calls_and_cost_add_up():
    usage = usage_after(
        {"input_tokens": 10, "output_tokens": 2, "cost": "0.001"},
        {"input_tokens": 5, "cached_tokens": 4, "cost": "0.0005"},
    )
    assert usage == {
        "input_tokens": 15,
        "output_tokens": 2,
        "cached_tokens": 4,
        "calls": 2,
        "cost": "0.0015",
    }


def test_gpu_seconds_add_up_to_the_millisecond():
    usage = usage_after({"gpu_seconds": 1.2344, "cost": "0.1"}, {"gpu_seconds": 2.5})
    assert usage["gpu_seconds"] == 3.734
    assert usage["calls"] == 2


def test_a_run_whose_calls_used_no_gpu_has_no_gpu_seconds():
    assert "gpu_seconds" not in usage_after({"input_tokens": 1})
