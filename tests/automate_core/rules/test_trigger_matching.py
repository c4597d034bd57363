"""Trigger matching: conditions run in their compiled form, compiled once per distinct rule."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from automate_core.events.ingest import ingestor
from automate_core.rules import jsonlogic
from automate_core.rules.matching import dry_run, matching_triggers
from automate_core.rules.models import Trigger
from automate_core.workflows.models import Automation

pytestmark = pytest.mark.django_db

BIG = {">": [{"var": "payload.amount"}, 100]}


@pytest.fixture
def automation(tenant):
    automation = Automation.objects.create(tenant=tenant, name="Orders")
    automation.new_version(
        {"start": "done", "steps": {"done": {"type": "complete", "result": {}}}}
    ).publish()
    return automation


@pytest.fixture
def empty_cache():
    jsonlogic.cache_clear()
    yield
    jsonlogic.cache_clear()


def trigger(automation, name, condition):
    return Trigger.objects.create(
        tenant=automation.tenant,
        name=name,
        event_type="order.paid",
        condition=condition,
        automation=automation,
    )


def event(tenant, amount):
    return ingestor.ingest("order.paid", {"amount": amount}, tenant=tenant).event


def test_matching_many_events_compiles_a_condition_once(tenant, automation, empty_cache):
    big = trigger(automation, "big", BIG)

    matched = [matching_triggers(event(tenant, amount)) for amount in (50, 500, 5000)]

    assert [[t.pk for t in found] for found in matched] == [[], [big.pk], [big.pk]]
    assert jsonlogic.cache_info().misses == 1


def test_triggers_with_equal_conditions_share_one_compiled_form(tenant, automation, empty_cache):
    trigger(automation, "a", {"and": [{">": [{"var": "payload.amount"}, 1]}, True]})
    trigger(automation, "b", {"and": [{">": [{"var": "payload.amount"}, 1]}, True]})

    assert len(matching_triggers(event(tenant, 5))) == 2
    assert jsonlogic.cache_info().misses == 1


def test_a_condition_that_raises_on_the_data_does_not_match_and_says_why(tenant, automation):
    trigger(automation, "nan", {">": [{"+": [{"var": "payload.amount"}, 1]}, 0]})

    assert matching_triggers(event(tenant, "lots")) == []
    [verdict] = dry_run(tenant, "order.paid", {"amount": "lots"})
    assert verdict.matched is False and verdict.reason == "condition raised 'NaN'"


def test_a_malformed_condition_is_refused_when_the_trigger_is_saved(automation):
    with pytest.raises(ValidationError) as refused:
        trigger(automation, "broken", {"no_such_operator": [1]})

    assert "Unknown Operator" in str(refused.value.message_dict["condition"])


def test_a_malformed_stored_condition_never_matches_and_the_dry_run_names_the_problem(
    tenant, automation
):
    broken = trigger(automation, "broken", BIG)
    Trigger.objects.filter(pk=broken.pk).update(condition={"no_such_operator": [1]})

    assert matching_triggers(event(tenant, 500)) == []
    [verdict] = dry_run(tenant, "order.paid", {"amount": 500})
    assert verdict.matched is False
    assert verdict.reason.startswith("condition is invalid (Unknown Operator)")
