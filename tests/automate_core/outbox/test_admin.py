"""The outbox admin: read-only jobs, filters, and the dead-letter redrive action."""

from __future__ import annotations

import pytest
from django.urls import reverse

from automate_core.outbox import store
from automate_core.outbox.models import OutboxJob
from automate_core.outbox.worker import run_job

Status = OutboxJob.Status
CHANGELIST = "admin:automate_core_outboxjob_changelist"


@pytest.fixture
def dead_and_done(db) -> tuple[OutboxJob, OutboxJob]:
    dead = store.enqueue("test.fail", {"to": "ops@example.com"}, max_attempts=1)
    done = store.enqueue("test.noop", {})
    for lease in store.claim_batch("w", 10):
        run_job(lease)
    return dead, done


def test_job_list_filters_by_status_and_kind(admin_client, dead_and_done):
    dead, done = dead_and_done

    by_status = admin_client.get(reverse(CHANGELIST), {"status__exact": "dead"})
    by_kind = admin_client.get(reverse(CHANGELIST), {"kind": "test.noop"})

    assert by_status.status_code == by_kind.status_code == 200
    assert str(dead.id) in by_status.text and str(done.id) not in by_status.text
    assert str(done.id) in by_kind.text and str(dead.id) not in by_kind.text


def test_redrive_action_requeues_only_dead_jobs(admin_client, dead_and_done):
    dead, done = dead_and_done

    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "redrive", "_selected_action": [str(dead.id), str(done.id)]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Re-queued 1 dead job(s)." in response.text
    assert OutboxJob.objects.get(id=dead.id).status == Status.QUEUED
    assert OutboxJob.objects.get(id=done.id).status == Status.DONE


def test_job_page_shows_the_payload_read_only(admin_client, dead_and_done):
    dead, _ = dead_and_done

    response = admin_client.get(reverse("admin:automate_core_outboxjob_change", args=[dead.id]))

    assert response.status_code == 200
    assert "ops@example.com" in response.text
    assert 'name="_save"' not in response.text
    assert 'name="payload"' not in response.text
    assert "RuntimeError" in response.text
