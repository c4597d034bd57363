"""Settings for worker subprocesses of tests that call servers on 127.0.0.1.

A test process's settings overrides do not reach a ``manage.py automate_worker`` subprocess:
it gets this module (``DJANGO_SETTINGS_MODULE``) instead, which is the test settings with the
egress policy letting loopback through (the wire servers and the tool's HTTP server) and no
backoff between LLM retries.
"""

from tests.settings import *  # noqa: F403
from tests.settings import AUTOMATE

AUTOMATE = {**AUTOMATE, "EGRESS_ALLOW_PRIVATE": ["127.0.0.1"]}
AUTOMATE_LLM = {"RETRY_BASE_DELAY": 0, "RETRY_MAX_DELAY": 0}
