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
