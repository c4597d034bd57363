"""Migrate, load the demo data and serve the ASGI app with uvicorn (what ``make run`` does).

An outbox worker runs in the same process by default, so events, runs and timers progress
with nothing else started; ``--no-worker`` leaves that to ``manage.py automate_worker``.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Migrate, create the demo tenant, then serve with uvicorn (and a worker) until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="Skip the demo data.")
        parser.add_argument(
            "--no-worker", action="store_true", help="Do not run an outbox worker in-process."
        )

    def handle(
        self, *args: Any, host: str, port: int, no_demo: bool, no_worker: bool, **options: Any
    ) -> None:
        import uvicorn  # the 'server' extra

        from automate_core.outbox.handlers import autodiscover
        from automate_core.outbox.worker import Worker

        call_command("migrate", interactive=False, verbosity=1)
        if not no_demo:
            call_command("automate_demo")  # and each app's own *_demo command
        worker, thread = None, None
        if not no_worker:
            autodiscover()
            worker = Worker(concurrency=2)
            thread = threading.Thread(target=worker.run, name="outbox-worker", daemon=True)
            thread.start()
        base = f"http://{host}:{port}"
        self.stdout.write(
            self.style.SUCCESS(f"Serving {base}  admin: {base}/admin/  API docs: {base}/api/docs/")
        )
        module, _, attr = settings.ASGI_APPLICATION.rpartition(".")
        try:
            uvicorn.run(f"{module}:{attr}", host=host, port=port, log_level="info", lifespan="off")
        finally:
            if worker is not None and thread is not None:
                worker.stop()  # finishes the jobs in hand; unstarted ones go back to the queue
                thread.join(timeout=30)
