import pytest
from django.core.exceptions import ValidationError

from automate_core.base import InvalidTransition
from automate_modal.models import ModalEndpoint, ModalJob


@pytest.fixture
def endpoint(tenant) -> ModalEndpoint:
    return ModalEndpoint.objects.create(
        tenant=tenant,
        name="Whisper",
        app_name="asr",
        function_name="transcribe",
        gpu="L4",
        gpu_fallbacks=["A100-40GB", "L4", "H100"],
    )


def test_gpu_ladder_starts_with_the_endpoint_gpu_and_lists_each_gpu_once(endpoint):
    assert endpoint.gpu_ladder == ["L4", "A100-40GB", "H100"]


def test_endpoint_config_with_an_inline_credential_is_refused(endpoint):
    endpoint.config = {"token_secret": "as-1234567890abcdef1234567890abcdef"}
    with pytest.raises(ValidationError):
        endpoint.full_clean()


def test_endpoint_config_with_secret_refs_is_accepted(endpoint):
    endpoint.config = {
        "token_id": {"$secret": "MODAL_TOKEN_ID"},
        "token_secret": {"$secret": "MODAL_TOKEN_SECRET"},
    }
    endpoint.full_clean()


def test_unknown_fallback_gpu_is_refused(endpoint):
    endpoint.gpu_fallbacks = ["TPU"]
    with pytest.raises(ValidationError):
        endpoint.full_clean()


def test_a_finished_job_cannot_move_again(endpoint, tenant):
    job = ModalJob.objects.create(tenant=tenant, endpoint=endpoint, idempotency_key="k1")
    assert job.status == ModalJob.Status.PENDING
    job.transition_to(ModalJob.Status.RUNNING)
    job.transition_to(ModalJob.Status.SUCCEEDED)
    with pytest.raises(InvalidTransition):
        job.transition_to(ModalJob.Status.FAILED)


def test_jobs_are_listed_per_tenant(endpoint, tenant, other_tenant):
    ModalJob.objects.create(tenant=tenant, endpoint=endpoint, idempotency_key="k2")
    assert ModalJob.objects.for_tenant(tenant).count() == 1
    assert ModalJob.objects.for_tenant(other_tenant).count() == 0


def test_invoke_spawns_a_job_of_the_endpoint(cloud, endpoint):
    cloud.deploy("asr", "transcribe")
    job = endpoint.invoke({"audio": "a.wav"})
    assert job.endpoint == endpoint
    assert [(c.args, c.object_id) for c in cloud.spawned] == [
        (({"audio": "a.wav"},), job.function_call_id)
    ]


def test_get_logs_lists_the_latest_jobs_timelines_newest_first(cloud, endpoint):
    cloud.deploy("asr", "transcribe")
    first, second = endpoint.invoke({}), endpoint.invoke({})
    logs = endpoint.get_logs()
    assert [log["job_id"] for log in logs] == [str(second.pk), str(first.pk)]
    assert logs[0]["attempts"][0]["gpu"] == "L4"
