"""The admin of endpoints, jobs and artifacts: every page loads, the job timeline, the cancel
action, and job payloads redacted for staff without the raw-payload permission."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from automate_core.tenancy.models import TenantMembership
from automate_modal import services
from automate_modal.models import ModalArtifact, ModalEndpoint, ModalJob

from .jobs import report

pytestmark = pytest.mark.django_db


def url(model: str, view: str, *args) -> str:
    return reverse(f"admin:automate_modal_{model}_{view}", args=args)


@pytest.mark.parametrize(
    "model", [ModalEndpoint, ModalJob, ModalArtifact], ids=lambda m: m.__name__
)
def test_every_modal_model_has_a_changelist_and_a_change_page(
    cloud, endpoint, admin_client, settings, tmp_path, model
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.AUTOMATE_MODAL = {**settings.AUTOMATE_MODAL, "OUTPUT_INLINE_MAX_BYTES": 10}
    services.spawn_job(endpoint, {})
    report(cloud.spawned[0], {"output": {"text": "an output stored as an artifact"}})
    name = model._meta.model_name
    assert admin_client.get(url(name, "changelist")).status_code == 200
    assert admin_client.get(url(name, "change", model.objects.get().pk)).status_code == 200


def test_the_job_page_shows_its_timeline(cloud, endpoint, admin_client):
    job = services.spawn_job(endpoint, {})
    response = admin_client.get(url("modaljob", "change", job.pk))
    assert response.status_code == 200
    assert job.function_call_id in response.content.decode()


def test_a_jobs_payloads_are_redacted_for_staff_without_the_raw_permission(
    cloud, endpoint, tenant, client, admin_client
):
    job = services.spawn_job(endpoint, {"note": "my password=hunter2-hunter2"})
    staff = User.objects.create_user("staff", is_staff=True, password="pw-12345678")
    staff.user_permissions.add(Permission.objects.get(codename="view_modaljob"))
    TenantMembership.objects.create(tenant=tenant, user=staff)
    client.force_login(staff)
    page = client.get(url("modaljob", "change", job.pk)).content.decode()
    assert "hunter2-hunter2" not in page and "[REDACTED]" in page
    assert "hunter2-hunter2" in admin_client.get(url("modaljob", "change", job.pk)).content.decode()


def test_staff_of_another_tenant_neither_see_nor_open_a_job(cloud, endpoint, other_tenant, client):
    job = services.spawn_job(endpoint, {})
    staff = User.objects.create_user("outsider", is_staff=True, password="pw-12345678")
    staff.user_permissions.add(Permission.objects.get(codename="view_modaljob"))
    TenantMembership.objects.create(tenant=other_tenant, user=staff)
    client.force_login(staff)
    assert str(job.pk) not in client.get(url("modaljob", "changelist")).content.decode()
    assert client.get(url("modaljob", "change", job.pk)).status_code in (302, 404)


def test_the_cancel_action_cancels_running_jobs(cloud, endpoint, admin_client):
    job = services.spawn_job(endpoint, {})
    response = admin_client.post(
        url("modaljob", "changelist"),
        {"action": "cancel_jobs", "_selected_action": [str(job.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    assert ModalJob.objects.get(pk=job.pk).status == ModalJob.Status.CANCELLED
    assert cloud.spawned[0].cancelled
