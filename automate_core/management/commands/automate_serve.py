"""Migrate, load the demo data and serve the ASGI app with uvicorn (what ``make run`` does)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Migrate, create the demo tenant, then serve with uvicorn until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="Skip the demo data.")

    def handle(self, *args: Any, host: str, port: int, no_demo: bool, **options: Any) -> None:
        import uvicorn  # the 'server' extra

        call_command("migrate", interactive=False, verbosity=1)
        if not no_demo:
            call_command("automate_demo")
        base = f"http://{host}:{port}"
        self.stdout.write(
            self.style.SUCCESS(f"Serving {base}  admin: {base}/admin/  API docs: {base}/api/docs/")
        )
        module, _, attr = settings.ASGI_APPLICATION.rpartition(".")
        uvicorn.run(f"{module}:{attr}", host=host, port=port, log_level="info", lifespan="off")
