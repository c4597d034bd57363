"""Delete finished executions (and their step runs) past retention, with a progress bar."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from django.core.management.base import CommandError, OutputWrapper
from django.db.models import Count

from automate_core.conf import automate_settings
from automate_core.executions import retention
from automate_core.executions.models import StepRun
from automate_core.management.base import DatabaseCommand


class ProgressBar:
    """``[#####.....]  50%  500/1,000 runs`` redrawn in place on a terminal; elsewhere (logs,
    CI) one line per tenth done, so the output stays readable."""

    WIDTH = 30

    def __init__(self, out: OutputWrapper, total: int, unit: str) -> None:
        self.out, self.total, self.unit = out, total, unit
        self.tty = out.isatty()
        self._last_tenth = -1

    def update(self, done: int) -> None:
        fraction = min(1.0, done / self.total) if self.total else 1.0
        tenth = int(fraction * 10)
        if not self.tty and tenth == self._last_tenth:
            return
        self._last_tenth = tenth
        filled = round(fraction * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        line = f"[{bar}] {fraction:4.0%}  {done:,}/{self.total:,} {self.unit}"
        if self.tty:
            self.out.write(f"\r{line}", ending="")
            self.out.flush()
        else:
            self.out.write(line)

    def finish(self) -> None:
        if self.tty:
            self.out.write("")


class Command(DatabaseCommand):
    help = (
        "Delete completed, failed and cancelled executions (with their step runs) that finished "
        'more than AUTOMATE["EXECUTION_RETENTION_DAYS"] days ago. Never touches queued, running '
        "or waiting runs."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )
        parser.add_argument(
            "--days",
            type=float,
            help="Retention in days for this run, instead of EXECUTION_RETENTION_DAYS.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            help="Runs deleted per transaction (default EXECUTION_PRUNE_BATCH_SIZE).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days is not None and days < 0:
            raise CommandError("--days must be 0 or more")
        if options["batch_size"] is not None and options["batch_size"] < 1:
            raise CommandError("--batch-size must be 1 or more")
        older_than = timedelta(days=days) if days is not None else retention.retention()
        if older_than is None:
            self.stdout.write(
                'AUTOMATE["EXECUTION_RETENTION_DAYS"] is None: executions are kept forever. '
                "Pass --days to prune anyway."
            )
            return
        doomed = retention.prunable(older_than)
        label = f"finished more than {_days(older_than)} ago"
        if options["dry_run"]:
            by_status = Counter(
                dict(doomed.order_by().values_list("status").annotate(n=Count("id")))
            )
            steps = StepRun.objects.filter(execution__in=doomed.order_by().values("id")).count()
            detail = ", ".join(f"{status} {n:,}" for status, n in sorted(by_status.items()))
            self.stdout.write(
                f"Dry run: would delete {by_status.total():,} execution(s) and {steps:,} step "
                f"run(s) {label}" + (f" ({detail})." if detail else ".")
            )
            return

        total = doomed.count()
        bar = ProgressBar(self.stderr, total, "runs") if options["verbosity"] >= 1 else None
        pruned = retention.prune(
            older_than,
            batch_size=options["batch_size"] or automate_settings.EXECUTION_PRUNE_BATCH_SIZE,
            progress=bar.update if bar else None,
        )
        if bar is not None:
            bar.finish()
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted {pruned.executions:,} execution(s) and {pruned.step_runs:,} step "
                f"run(s) {label}."
            )
        )


def _days(age: timedelta) -> str:
    days = age.total_seconds() / 86400
    return f"{days:g} day" + ("" if days == 1 else "s")
