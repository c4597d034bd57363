"""A trace id comes in (or is made), goes out in a header and onto every log record."""

import logging
import re

import pytest
from rest_framework.test import APIClient

from automate_core.tracing import current_trace_id, trace

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.testapp.urls")]


def test_traceparent_trace_id_is_reused():
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = APIClient().get("/healthz", HTTP_TRACEPARENT=traceparent)
    assert response["X-Trace-Id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_x_trace_id_header_is_reused_and_ends_up_in_error_bodies():
    response = APIClient().get("/api/v1/api-keys", HTTP_X_TRACE_ID="req-12345678")
    assert response["X-Trace-Id"] == "req-12345678"
    assert response.json()["trace_id"] == "req-12345678"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_X_TRACE_ID": "<script>alert(1)</script>"},
        {"HTTP_X_TRACE_ID": "x" * 500},
        {"HTTP_TRACEPARENT": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
        {"HTTP_TRACEPARENT": "garbage"},
    ],
)
def test_missing_or_malformed_trace_ids_are_replaced_by_a_new_one(headers):
    response = APIClient().get("/healthz", **headers)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Trace-Id"])


def test_each_request_gets_its_own_trace_id():
    client = APIClient()
    assert client.get("/healthz")["X-Trace-Id"] != client.get("/healthz")["X-Trace-Id"]


def test_log_records_carry_the_current_trace_id(caplog):
    caplog.set_level(logging.INFO)
    with trace("abc-trace-0001"):
        logging.getLogger("automate.test").info("inside")
        assert current_trace_id() == "abc-trace-0001"
    logging.getLogger("automate.test").info("outside")
    inside, outside = [r for r in caplog.records if r.name == "automate.test"]
    assert inside.trace_id == "abc-trace-0001"
    assert outside.trace_id == "-"
    assert current_trace_id() is None
