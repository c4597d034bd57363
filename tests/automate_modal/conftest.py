"""Fixtures of the Modal tests: the SDK double in place of Modal, endpoints on both backends."""

from __future__ import annotations

import pytest

from automate_modal.models import ModalEndpoint
from automate_modal.testing import fake_modal


@pytest.fixture(autouse=True)
def modal_settings(settings, tmp_path):
    settings.AUTOMATE_MODAL = {
        "CALLBACK_BASE_URL": "http://testserver",
        "LOCAL_WORK_DIR": str(tmp_path / "local-calls"),
    }
    return settings


@pytest.fixture
def cloud():
    with fake_modal() as cloud:
        cloud.deploy("asr", "transcribe")
        yield cloud


@pytest.fixture
def endpoint(tenant, monkeypatch) -> ModalEndpoint:
    monkeypatch.setenv("AUTOMATE_SECRET_MODAL_TOKEN_ID", "ak-test-id")
    monkeypatch.setenv("AUTOMATE_SECRET_MODAL_TOKEN_SECRET", "as-test-secret")
    return ModalEndpoint.objects.create(
        tenant=tenant,
        name="Whisper",
        app_name="asr",
        function_name="transcribe",
        gpu="L4",
        gpu_fallbacks=["A100-40GB", "H100"],
        timeout=600,
        config={
            "token_id": {"$secret": "MODAL_TOKEN_ID"},
            "token_secret": {"$secret": "MODAL_TOKEN_SECRET"},
        },
    )


@pytest.fixture
def local_endpoint(tenant) -> ModalEndpoint:
    return ModalEndpoint.objects.create(
        tenant=tenant,
        name="Echo",
        function_name="automate_modal.demo.echo",
        backend="local",
        gpu="T4",
        timeout=60,
    )
