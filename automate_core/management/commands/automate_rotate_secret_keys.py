"""Re-encrypt every stored secret with the newest key of AUTOMATE["SECRET_KEYS"]."""

from __future__ import annotations

from typing import Any

from automate_core.governance.stored_secrets import rotate_keys
from automate_core.management.base import DatabaseCommand


class Command(DatabaseCommand):
    help = (
        "Re-encrypt stored secrets with the first key of AUTOMATE['SECRET_KEYS']. Keep the old "
        "keys listed until this finishes; safe to re-run."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        def progress(done: int, total: int) -> None:
            if options["verbosity"] >= 1 and total:
                width = 30
                filled = width * done // total
                bar = "#" * filled + "-" * (width - filled)
                self.stderr.write(f"\r[{bar}] {done}/{total}", ending="")
                self.stderr.flush()

        rotated = rotate_keys(progress=progress, batch=options["batch"])
        if options["verbosity"] >= 1:
            self.stderr.write("")
        self.stdout.write(
            self.style.SUCCESS(f"Re-encrypted {rotated} secret(s) with the newest key.")
        )
