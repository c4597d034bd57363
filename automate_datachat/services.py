"""Data chat operations other apps call.

:func:`run_sql` is the one way SQL reaches the data: the guard first, then the read-only
executor, and an audit row for every attempt (refused, failed or run) that names the dataset,
the SHA-256 of the submitted SQL, the row count, duration, actor and trace id, never a value
(queued through the outbox, see :mod:`automate_datachat.auditing`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

from automate_core.errors import AutomateError
from automate_datachat import asking, auditing, charts, examples, executor, guard
from automate_datachat.asking import Answer, Event
from automate_datachat.definitions import DatasetDefinition
from automate_datachat.errors import DatasetNotFound, SQLExecutionFailed, SQLRejected
from automate_datachat.registry import resolve_dataset
from automate_datachat.results import QueryResult
from automate_datachat.sessions import SessionNotFound
from automate_llm.services import CallContext

if TYPE_CHECKING:
    from automate_core.tenancy.models import Tenant
    from automate_datachat.models import DataChatSession, Dataset, DatasetExample

__all__ = [
    "Answer",
    "CallContext",
    "add_example",
    "ask",
    "ask_events",
    "chart_svg",
    "dataset_for",
    "dataset_for_end_user",
    "run_sql",
]


def dataset_for(tenant: Tenant, dataset: Dataset | DatasetDefinition | str) -> DatasetDefinition:
    """``dataset`` (a slug, a ``Dataset`` row or a definition) bound to ``tenant``; a row or a
    bound definition of another tenant is not found."""
    if isinstance(dataset, str):
        return resolve_dataset(tenant, dataset)
    if isinstance(dataset, DatasetDefinition):
        if dataset.tenant_id is None:
            return dataset.bind(tenant.pk)
        definition = dataset
    else:
        definition = dataset.definition()
    if definition.tenant_id != str(tenant.pk):
        raise DatasetNotFound(details={"dataset": definition.slug})
    return definition


def run_sql(
    *,
    tenant: Tenant,
    dataset: Dataset | DatasetDefinition | str,
    sql: str,
    actor: str | Any = None,
    params: Mapping[str, Any] | None = None,
) -> QueryResult:
    """Guard ``sql`` against ``dataset`` for ``tenant`` and run it read-only as the data chat
    role. Raises :class:`SQLRejected` or :class:`SQLExecutionFailed` (after auditing it).

    ``params``: values for the ``:name`` placeholders of ``sql``, sent as bind parameters
    (never spliced into the SQL text)."""
    definition = dataset_for(tenant, dataset)
    entry: dict[str, Any] = {
        "dataset": definition.slug,
        "sql_sha256": hashlib.sha256(sql.encode()).hexdigest(),
    }
    try:
        guarded = guard.check(sql, definition, None if params is None else list(params))
        result = executor.execute(guarded, params)
    except (SQLRejected, SQLExecutionFailed) as exc:
        # The reason code or SQLSTATE only: a Postgres message can quote a row value.
        reason = exc.details.get("reason") or exc.details.get("sqlstate", "")
        _audit(tenant, actor, {**entry, "outcome": exc.code, "reason": reason})
        raise
    _audit(
        tenant,
        actor,
        {
            **entry,
            "outcome": "ok",
            "tables": list(guarded.tables),
            "row_count": result.row_count,
            "truncated": result.truncated,
            "duration_ms": result.duration_ms,
        },
    )
    return result


def ask(
    *,
    tenant: Tenant,
    dataset: Dataset | DatasetDefinition | str,
    question: str,
    session: DataChatSession | None = None,
    context: CallContext,
    actor: str | Any = None,
    model: str | None = None,
) -> Answer:
    """Answer ``question`` with guarded SQL, its rows and a chart, through the tenant's model
    (metered and budgeted by the gateway with ``context``); see :mod:`automate_datachat.asking`.
    With a ``session`` (of this tenant and dataset) its recent turns are the history and the
    new turn is stored."""
    return asking.ask(
        tenant=tenant,
        dataset=_session_dataset(tenant, dataset, session),
        question=question,
        session=session,
        context=context,
        actor=actor,
        model=model,
    )


def ask_events(
    *,
    tenant: Tenant,
    dataset: Dataset | DatasetDefinition | str,
    question: str,
    session: DataChatSession | None = None,
    context: CallContext,
    actor: str | Any = None,
    model: str | None = None,
) -> Generator[Event, None, Answer]:
    """:func:`ask` as it goes (``("sql", text)``, ``("rows", result)``), returning the
    :class:`Answer`; for streaming answers."""
    return asking.answer_events(
        tenant=tenant,
        dataset=_session_dataset(tenant, dataset, session),
        question=question,
        session=session,
        context=context,
        actor=actor,
        model=model,
    )


def _session_dataset(
    tenant: Tenant, dataset: Dataset | DatasetDefinition | str, session: DataChatSession | None
) -> DatasetDefinition:
    definition = dataset_for(tenant, dataset)
    if session is not None and (
        session.tenant_id != tenant.pk or session.dataset != definition.slug
    ):
        raise SessionNotFound(details={"session": str(session.pk)})
    return definition


def add_example(
    *, tenant: Tenant, dataset: Dataset | DatasetDefinition | str, question: str, sql: str
) -> DatasetExample:
    """Store a curated question → SQL example of ``dataset``; its SQL must pass the guard."""
    return examples.add_example(
        tenant=tenant, dataset=dataset_for(tenant, dataset), question=question, sql=sql
    )


def _audit(tenant: Tenant, actor: Any, data: dict[str, Any]) -> None:
    auditing.queue(tenant, _actor(actor), data)


def _actor(actor: Any) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    if getattr(actor, "is_authenticated", False):
        return f"user:{actor.pk}"
    return str(actor)


#: A row filter value ``"$claims.<name>"`` stands for the end user's claim ``<name>``.
CLAIM_PREFIX = "$claims."


class ClaimMissing(AutomateError):
    status_code = 403
    code = "datachat_claim_missing"
    default_message = "This data needs a signed-in visitor with the claims its filters name."


def dataset_for_end_user(
    tenant: Tenant, dataset: Dataset | DatasetDefinition | str, claims: Mapping[str, Any]
) -> DatasetDefinition:
    """:func:`dataset_for`, with each row filter value ``"$claims.<name>"`` replaced by the
    end user's claim ``<name>`` (a string, number or boolean, or a list of them), so a signed
    visitor only reads their own rows. A claim that is missing or of another type raises
    :class:`ClaimMissing`. Elsewhere (API, admin, steps) such a filter compares the column
    with its literal text, so it lets no row through."""
    definition = dataset_for(tenant, dataset)
    tables = []
    for table in definition.tables:
        filters = []
        for column, values in table.row_filters:
            bound: list[Any] = []
            for value in values:
                if isinstance(value, str) and value.startswith(CLAIM_PREFIX):
                    bound.extend(_claim_values(claims, value.removeprefix(CLAIM_PREFIX)))
                else:
                    bound.append(value)
            filters.append((column, tuple(bound)))
        tables.append(dataclasses.replace(table, row_filters=tuple(filters)))
    return dataclasses.replace(definition, tables=tuple(tables))


def _claim_values(claims: Mapping[str, Any], name: str) -> list[Any]:
    value = claims.get(name)
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str | int | float | bool) for v in values):
        raise ClaimMissing(details={"claim": name})
    return values


def chart_svg(spec: dict[str, Any]) -> bytes:
    """An answer's chart spec rendered on the server as SVG (offline: no URL is fetched)."""
    return charts.render(spec, format="svg")
