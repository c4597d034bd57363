"""make run can be configured without editing code: app settings from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def settings_seen_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        "print(json.dumps({'AUTOMATE': settings.AUTOMATE, 'LLM': settings.AUTOMATE_LLM}))"
    )
    return subprocess.run(  # noqa: S603  (our interpreter, a fixed script)
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "automate_site.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(
    (ROOT / "automate_site" / "local_settings.py").exists(),
    reason="a local_settings.py on this machine would change what the settings hold",
)
def test_app_settings_come_from_json_in_the_environment():
    done = settings_seen_with(
        {"AUTOMATE": '{"MAX_PAGE_SIZE": 7}', "AUTOMATE_LLM": '{"TIMEOUT": 30}'}
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"AUTOMATE": {"MAX_PAGE_SIZE": 7}, "LLM": {"TIMEOUT": 30}}


def test_a_setting_that_is_not_a_json_object_is_refused_by_name():
    done = settings_seen_with({"AUTOMATE_RAG": "[1, 2]"})
    assert done.returncode != 0
    assert "AUTOMATE_RAG environment variable must hold a JSON object" in done.stderr
