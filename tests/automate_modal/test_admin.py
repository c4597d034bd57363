"""The admin of endpoints and jobs: the job timeline and the cancel action."""

from __future__ import annotations

import pytest
from django.urls import reverse

from automate_modal import services
from automate_modal.models import ModalJob

pytestmark = pytest.mark.django_db


def test_the_job_page_shows_its_timeline(cloud, endpoint, admin_client):
    job = services.spawn_job(endpoint, {})
    response = admin_client.get(reverse("admin:automate_modal_modaljob_change", args=[job.pk]))
    assert response.status_code == 200
    assert job.function_call_id in response.content.decode()


def test_the_cancel_action_cancels_running_jobs(cloud, endpoint, admin_client):
    job = services.spawn_job(endpoint, {})
    response = admin_client.post(
        reverse("admin:automate_modal_modaljob_changelist"),
        {"action": "cancel_jobs", "_selected_action": [str(job.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    assert ModalJob.objects.get(pk=job.pk).status == ModalJob.Status.CANCELLED
    assert cloud.spawned[0].cancelled


def test_the_endpoint_list_renders(endpoint, admin_client):
    response = admin_client.get(reverse("admin:automate_modal_modalendpoint_changelist"))
    assert response.status_code == 200
    assert "Whisper" in response.content.decode()
