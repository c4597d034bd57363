"""The site's log handler writes the trace id and never a credential."""

import logging
import logging.config

from django.conf import settings


def test_console_log_lines_are_redacted_and_carry_the_trace_id(capsys):
    from automate_core.tracing import trace

    logging.config.dictConfig(settings.LOGGING)
    with trace("trace-log-0001"):
        logging.getLogger("automate.test").warning(
            "calling provider with Authorization: Bearer sk-abcdefghijklmnopqrstuvwxyz123456"
        )
    line = capsys.readouterr().err
    assert "[trace-log-0001]" in line
    assert "sk-abcdef" not in line and "[REDACTED]" in line


def test_django_request_error_lines_carry_the_request_trace_id(client, capsys, db):
    logging.config.dictConfig(settings.LOGGING)
    response = client.get("/api/v1/no-such-route", HTTP_X_TRACE_ID="trace-404-line-01")
    assert response.status_code == 404
    lines = [line for line in capsys.readouterr().err.splitlines() if "django.request" in line]
    assert lines and all("[trace-404-line-01]" in line for line in lines)
