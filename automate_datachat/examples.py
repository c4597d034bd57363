"""Curated question → SQL examples of a dataset, and finding the ones most like a question.

Similarity is by words: a question and an example score the number of content words they
share over the geometric mean of their sizes. The RAG app offers no public embedding entry
point, and a dataset's examples are few (tens, curated by hand), so they are scored in Python
over all of a dataset's examples (at most ``MAX_SCANNED``, newest first).
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from automate_datachat import guard
from automate_datachat.definitions import DatasetDefinition
from automate_datachat.models import DatasetExample

if TYPE_CHECKING:
    from automate_core.tenancy.models import Tenant

MAX_SCANNED = 1000
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    {
        *("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "i", "in"),
        *("is", "it", "many", "me", "of", "on", "or", "per", "show", "the", "to", "was"),
        *("were", "what", "which", "who", "with", "all", "each", "list", "give"),
    }
)


def add_example(
    *, tenant: Tenant, dataset: DatasetDefinition, question: str, sql: str
) -> DatasetExample:
    """Store an example after the guard accepted its SQL (``SQLRejected`` otherwise)."""
    guard.check(sql, dataset)
    return DatasetExample.objects.create(
        tenant=tenant, dataset=dataset.slug, question=question.strip(), sql=sql.strip()
    )


def update_example(
    example: DatasetExample, *, dataset: DatasetDefinition, question: str, sql: str
) -> DatasetExample:
    """Change an example; its new SQL must pass the guard too."""
    guard.check(sql, dataset)
    example.question, example.sql = question.strip(), sql.strip()
    example.save(update_fields=["question", "sql", "updated_at"])
    return example


def similar_examples(
    *, tenant: Tenant, dataset: str, question: str, limit: int
) -> list[DatasetExample]:
    """The ``limit`` examples of ``dataset`` sharing most words with ``question`` (best
    first; none that share no word)."""
    wanted = words(question)
    if not wanted or limit < 1:
        return []
    scored = []
    rows = DatasetExample.objects.for_tenant(tenant).filter(dataset=dataset)
    for example in rows.order_by("-created_at")[:MAX_SCANNED]:
        theirs = words(example.question)
        shared = len(wanted & theirs)
        if shared:
            scored.append((shared / math.sqrt(len(wanted) * len(theirs)), example))
    scored.sort(key=lambda pair: pair[0], reverse=True)
    return [example for _, example in scored[:limit]]


def words(text: str) -> set[str]:
    """Content words, lower-cased, with a plural ``s`` dropped."""
    found = set()
    for word in _WORD.findall(text.lower()):
        if word in _STOP:
            continue
        found.add(word[:-1] if len(word) > 3 and word.endswith("s") else word)
    return found
