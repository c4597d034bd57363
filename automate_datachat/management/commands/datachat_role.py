"""Create or update the data chat database role and its grants (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from automate_datachat.role import ensure_role


class Command(BaseCommand):
    help = (
        "Create (or update) the SELECT-only, read-only role that data chat queries run as, "
        "and grant it SELECT on the relations datasets may read."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--relation",
            action="append",
            dest="relations",
            help="Grant on this relation instead of the allowlists (repeatable).",
        )

    def handle(self, *args: Any, relations: list[str] | None, **options: Any) -> None:
        report = ensure_role(relations)
        verb = "Created" if report.created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} role {report.role!r}."))
        for relation in report.granted:
            self.stdout.write(f"  SELECT on {relation}")
        for relation in report.missing:
            self.stdout.write(self.style.WARNING(f"  {relation} does not exist (not granted)"))
