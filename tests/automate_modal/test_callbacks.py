"""The signed, single-use completion callback and the helper functions report with."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from automate_core.testing.runtime import run_until_idle
from automate_modal import services
from automate_modal.callbacks import signature
from automate_modal.models import ModalJob
from automate_modal.remote import report as remote_report

from .jobs import fresh, poll_now, report

pytestmark = pytest.mark.django_db


def callback_path(job_id, attempt, expires, sig) -> str:
    query = urlencode({"attempt": attempt, "exp": expires, "sig": sig})
    return f"/api/v1/modal/callback/{job_id}?{query}"


def test_a_forged_signature_is_refused(cloud, endpoint, client):
    job = services.spawn_job(endpoint, {})
    expires = int(time.time()) + 600
    response = client.post(
        callback_path(job.pk, 1, expires, "0" * 64), {"output": 1}, content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "callback_refused"
    assert fresh(job).status == ModalJob.Status.RUNNING


def test_a_url_signed_for_another_job_is_refused(cloud, endpoint, client):
    job = services.spawn_job(endpoint, {})
    other = services.spawn_job(endpoint, {})
    query = parse_qs(urlsplit(cloud.calls[other.function_call_id].automate["callback_url"]).query)
    response = client.post(
        callback_path(job.pk, 1, query["exp"][0], query["sig"][0]),
        {"output": 1},
        content_type="application/json",
    )
    assert response.status_code == 403


def test_an_expired_url_is_refused(cloud, endpoint, client):
    job = services.spawn_job(endpoint, {})
    expires = int(time.time()) - 1
    response = client.post(
        callback_path(job.pk, 1, expires, signature(job.pk, 1, expires)),
        {"output": 1},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert "expired" in response.json()["message"]


def test_a_replayed_callback_is_refused_and_changes_nothing(cloud, endpoint):
    job = services.spawn_job(endpoint, {})
    assert report(cloud.spawned[0], {"output": {"n": 1}}).status_code == 200
    replay = report(cloud.spawned[0], {"output": {"n": 2}})
    assert replay.status_code == 403
    assert fresh(job).output == {"n": 1}


def test_the_first_attempts_url_is_refused_once_the_job_moved_to_a_second(cloud, endpoint):
    job = services.spawn_job(endpoint, {})
    assert report(cloud.spawned[0], {"error": "CUDA OOM", "kind": "oom"}).status_code == 200
    run_until_idle()
    assert len(cloud.spawned) == 2  # escalated at once
    assert report(cloud.spawned[0], {"output": "stale"}).status_code == 403
    assert report(cloud.spawned[1], {"output": "fresh"}).status_code == 200
    assert fresh(job).output == "fresh"


def test_a_callback_after_the_poll_found_the_result_is_refused(cloud, endpoint):
    job = services.spawn_job(endpoint, {})
    cloud.finish(job.function_call_id, {"via": "poll"})
    poll_now()
    assert report(cloud.spawned[0], {"output": {"via": "callback"}}).status_code == 403
    assert fresh(job).output == {"via": "poll"}


def test_remote_report_posts_the_output_to_the_callback(cloud, endpoint, live_server, settings):
    settings.AUTOMATE_MODAL = {**settings.AUTOMATE_MODAL, "CALLBACK_BASE_URL": live_server.url}
    job = services.spawn_job(endpoint, {})
    url = cloud.spawned[0].automate["callback_url"]
    assert url.startswith(live_server.url)
    assert remote_report(url, output={"text": "from the container"}) == 200
    assert fresh(job).output == {"text": "from the container"}
