"""``manage.py datachat_eval DIR``: execution accuracy of NL→SQL on a Spider-format set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from automate_core.errors import AutomateError
from automate_core.management.base import DatabaseCommand
from automate_core.tenancy.models import Tenant
from automate_datachat import evaluation


class Command(DatabaseCommand):
    help = (
        "Ask each question of a Spider-format set (questions.json or dev.json: question, "
        "query, db_id) of a data chat dataset through the tenant's model, and print whether "
        "its result rows equal the gold query's (in order only when the gold query has ORDER "
        "BY) and the execution accuracy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument("--tenant", default="demo", help="tenant slug (default: demo)")
        parser.add_argument(
            "--dataset",
            help="dataset slug for every db_id (default: DIR/datasets.json maps db_id to slug)",
        )
        parser.add_argument("--model", help="model config slug or model id (default: the tenant's)")
        parser.add_argument("--limit", type=int, help="evaluate the first N questions")

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["directory"]
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['tenant']!r}.")
        try:
            questions = evaluation.load_questions(directory)[: options["limit"]]
        except AutomateError as exc:
            raise CommandError(exc.message) from exc
        mapping = evaluation.load_dataset_map(directory)
        unmapped = {q.db_id for q in questions} - set(mapping)
        if options["dataset"] is None and unmapped:
            raise CommandError(
                f"No dataset for db_id {', '.join(sorted(unmapped))}: "
                "add DIR/datasets.json or pass --dataset."
            )
        outcomes = []
        bar = tqdm(questions, desc="questions", unit="q", file=self.stderr, mininterval=0.5)
        for number, question in enumerate(bar, start=1):
            try:
                outcome = evaluation.evaluate(
                    tenant=tenant,
                    dataset=options["dataset"] or mapping[question.db_id],
                    question=question,
                    model=options["model"],
                )
            except AutomateError as exc:
                raise CommandError(
                    f"Question {number}: the gold query failed: {exc.code}: {exc.message}"
                ) from exc
            outcomes.append(outcome)
            mark = "ok" if outcome.correct else "--"
            note = f"  ({outcome.error})" if outcome.error else ""
            self.stdout.write(f"{mark} {number:>3}  {question.question}{note}")
        correct = sum(outcome.correct for outcome in outcomes)
        total = len(outcomes)
        share = 100 * correct / total if total else 0.0
        self.stdout.write(f"Execution accuracy: {correct}/{total} ({share:.1f}%)")
