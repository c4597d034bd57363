"""Run the outbox worker (or the Celery relay) until SIGTERM/SIGINT."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from django.core.management.base import CommandParser

from automate_core.management.base import DatabaseCommand
from automate_core.outbox.handlers import autodiscover, registered_kinds


class Command(DatabaseCommand):
    help = (
        "Claim and run outbox jobs with N threads. The first SIGTERM/SIGINT finishes the jobs "
        "in hand and exits; a second exits at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", type=int, default=None, help="Executor threads.")
        parser.add_argument("--batch-size", type=int, default=None, help="Jobs per claim.")
        parser.add_argument("--lease-seconds", type=float, default=None)
        parser.add_argument(
            "--poll-ms", type=int, default=None, help="Idle re-check period without NOTIFY."
        )
        parser.add_argument("--reap-seconds", type=float, default=None, help="Reaper period.")
        parser.add_argument("--once", action="store_true", help="Exit when no job is due.")
        parser.add_argument("--max-jobs", type=int, default=None, help="Exit after N claims.")
        parser.add_argument("--worker-id", default=None, help="Lease owner name prefix.")
        parser.add_argument(
            "--include",
            action="append",
            default=[],
            metavar="MODULE",
            help="Also import this module for its handlers (repeatable).",
        )
        parser.add_argument(
            "--relay", action="store_true", help="Send claimed jobs to Celery instead of running."
        )
        parser.add_argument("--queue", default=None, help="Celery queue for --relay.")

    def handle(self, *args: Any, **options: Any) -> None:
        self.require_tables()  # the loop below would log and retry a missing table forever
        if options["verbosity"] >= 2:
            logging.getLogger("automate.outbox").setLevel(logging.DEBUG)
        poll = options["poll_ms"] / 1000 if options["poll_ms"] else None
        if options["relay"]:
            from automate_core.outbox.tasks import run_relay  # needs the 'celery' extra

            outcomes = run_relay(
                queue=options["queue"],
                once=options["once"],
                max_jobs=options["max_jobs"],
                batch_size=options["batch_size"],
                poll_interval=poll,
                worker_id=options["worker_id"],
                handle_signals=True,
            )
        else:
            from automate_core.outbox.worker import Worker

            autodiscover()
            for module in options["include"]:
                importlib.import_module(module)
            if options["verbosity"] >= 2:
                self.stderr.write(f"handlers: {', '.join(registered_kinds()) or 'none'}")
            outcomes = Worker(
                concurrency=options["concurrency"],
                batch_size=options["batch_size"],
                lease_seconds=options["lease_seconds"],
                poll_interval=poll,
                reap_interval=options["reap_seconds"],
                worker_id=options["worker_id"],
                once=options["once"],
                max_jobs=options["max_jobs"],
            ).run(handle_signals=True)
        if options["verbosity"] >= 1:
            summary = ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items())) or "no jobs"
            self.stdout.write(f"outbox worker stopped: {summary}")
