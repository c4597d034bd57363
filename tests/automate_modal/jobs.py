"""Helpers of the Modal tests: drive the reconcile poll and the completion callback."""

from __future__ import annotations

from urllib.parse import urlsplit

from rest_framework.test import APIClient

from automate_core.testing.runtime import fire_timers, run_until_idle
from automate_modal.models import ModalJob
from automate_modal.services import RECONCILE_JOB, SPAWN_JOB


def poll_now(rounds: int = 3) -> None:
    """Run the reconcile polls, the retries and the orphan checks that are queued, as if their
    time had come, and those they queue, ``rounds`` times."""
    for _ in range(rounds):
        fire_timers(kinds=(RECONCILE_JOB, SPAWN_JOB))
        run_until_idle()


def report(cloud_call, body, client: APIClient | None = None):
    """POST ``body`` to the callback URL the call was spawned with."""
    url = urlsplit(cloud_call.automate["callback_url"])
    return (client or APIClient()).post(f"{url.path}?{url.query}", body, format="json")


def fresh(job: ModalJob) -> ModalJob:
    return ModalJob.objects.get(pk=job.pk)
