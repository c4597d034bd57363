"""The embedded services' bookkeeping of which processes use them."""

import json
import os
import subprocess
import sys

from automate_site.embedded import _forget_dead_postgres_users


def test_processes_killed_without_cleanup_do_not_keep_postgres_running(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    handles = tmp_path / ".handle_pids.json"
    handles.write_text(json.dumps([dead.pid, os.getpid()]))
    _forget_dead_postgres_users(tmp_path)
    assert json.loads(handles.read_text()) == [os.getpid()]
