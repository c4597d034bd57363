"""Verify the audit log's hash chain; exits 1 when a row was changed, inserted or deleted."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from automate_core.governance.audit import verify_chain
from automate_core.management.base import DatabaseCommand


class Command(DatabaseCommand):
    help = "Recompute the audit log's hash chain and report the first broken row, if any."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--chunk-size", type=int, default=2000)

    def handle(self, *args: Any, **options: Any) -> None:
        def progress(checked: int, total: int) -> None:
            if options["verbosity"] >= 1 and total:
                self.stderr.write(f"\rchecked {checked}/{total} rows", ending="")
                self.stderr.flush()

        result = verify_chain(progress=progress, chunk_size=options["chunk_size"])
        if options["verbosity"] >= 1:
            self.stderr.write("")
        if not result.ok:
            raise CommandError(str(result))
        self.stdout.write(self.style.SUCCESS(str(result)))
