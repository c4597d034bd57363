import threading
import time

import modal.exception
import pytest

from automate_modal.backends import modal_sdk
from automate_modal.backends.base import Done, Failed, Pending, SpawnFailed, backend_for
from automate_modal.backends.local import LocalBackend


def spawn(backend, input=None, gpu="L4"):
    return backend.spawn(
        input or {"audio": "a.wav"},
        gpu=gpu,
        idempotency_key="run-1:gpu",
        callback_url="http://testserver/cb",
        job_id="job-1",
    )


def test_modal_backend_spawns_on_the_requested_gpu_with_the_automate_arguments(cloud, endpoint):
    call_id = spawn(backend_for(endpoint), gpu="A100-40GB")
    call = cloud.calls[call_id]
    assert call.gpu == "A100-40GB"
    assert call.options["timeout"] == 600
    assert call.args == ({"audio": "a.wav"},)
    assert call.automate == {
        "job_id": "job-1",
        "idempotency_key": "run-1:gpu",
        "callback_url": "http://testserver/cb",
    }


def test_modal_credentials_come_from_the_endpoint_secret_refs(cloud, endpoint):
    spawn(backend_for(endpoint))
    assert [(c.token_id, c.token_secret) for c in cloud.clients] == [
        ("ak-test-id", "as-test-secret")
    ]


def test_a_running_call_polls_as_pending_then_done(cloud, endpoint):
    backend = backend_for(endpoint)
    call_id = spawn(backend)
    assert backend.poll(call_id) == Pending()
    cloud.finish(call_id, {"text": "hello"})
    assert backend.poll(call_id) == Done({"text": "hello"})


def test_the_sdk_doubles_get_with_no_timeout_blocks_until_the_call_ends(cloud):
    call = modal_sdk.modal.Function.from_name("asr", "transcribe").spawn({})
    got = []
    waiter = threading.Thread(
        target=lambda: got.append(modal_sdk.modal.FunctionCall.from_id(call.object_id).get())
    )
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()
    cloud.finish(call.object_id, "done")
    waiter.join(5)
    assert got == ["done"]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (MemoryError("CUDA out of memory"), "oom"),
        (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), "oom"),
        (modal.exception.InternalFailure("worker preempted"), "preempted"),
        (modal.exception.FunctionTimeoutError("timed out after 600s"), "timeout"),
        (modal.exception.OutputExpiredError("expired"), "permanent"),
        (ValueError("bad audio"), "permanent"),
    ],
)
def test_a_failed_call_is_classified_by_what_the_sdk_raises(cloud, endpoint, error, kind):
    backend = backend_for(endpoint)
    call_id = spawn(backend)
    cloud.fail(call_id, error)
    outcome = backend.poll(call_id)
    assert isinstance(outcome, Failed)
    assert outcome.kind == kind


def test_an_undeployed_function_fails_to_spawn_for_good(cloud, endpoint):
    endpoint.function_name = "missing"
    with pytest.raises(SpawnFailed) as raised:
        spawn(backend_for(endpoint))
    assert raised.value.kind == "permanent"


def test_an_unreachable_modal_is_a_transient_spawn_failure(cloud, endpoint):
    cloud.unreachable = True
    with pytest.raises(SpawnFailed) as raised:
        spawn(backend_for(endpoint))
    assert raised.value.kind == "transient"


def test_cancel_reaches_the_call(cloud, endpoint):
    backend = backend_for(endpoint)
    call_id = spawn(backend)
    backend.cancel(call_id)
    assert cloud.calls[call_id].cancelled


def wait_for(backend, call_id, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        outcome = backend.poll(call_id)
        if not isinstance(outcome, Pending):
            return outcome
        time.sleep(0.05)
    raise AssertionError("the local call did not finish")


def test_local_backend_runs_the_function_in_a_subprocess(local_endpoint):
    backend = backend_for(local_endpoint)
    assert isinstance(backend, LocalBackend)
    call_id = backend.spawn(
        {"n": 1}, gpu="T4", idempotency_key="k", callback_url="", job_id="job-1"
    )
    assert wait_for(backend, call_id) == Done({"echo": {"n": 1}})


def test_local_backend_reports_memory_errors_as_oom(local_endpoint):
    local_endpoint.function_name = "automate_modal.demo.out_of_memory"
    backend = backend_for(local_endpoint)
    call_id = backend.spawn({}, gpu="T4", idempotency_key="k", callback_url="", job_id="j")
    outcome = wait_for(backend, call_id)
    assert isinstance(outcome, Failed)
    assert outcome.kind == "oom"


def test_local_backend_refuses_functions_outside_the_allowed_modules(local_endpoint):
    local_endpoint.function_name = "os.system"
    with pytest.raises(SpawnFailed):
        backend_for(local_endpoint).spawn(
            "rm -rf /", gpu="T4", idempotency_key="k", callback_url="", job_id="j"
        )


def test_a_cancelled_local_call_stops(local_endpoint):
    backend = backend_for(local_endpoint)
    call_id = backend.spawn(
        {"seconds": 30}, gpu="T4", idempotency_key="k", callback_url="", job_id="j"
    )
    backend.cancel(call_id)
    outcome = wait_for(backend, call_id, seconds=10)
    assert isinstance(outcome, Failed)
