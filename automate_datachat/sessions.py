"""Data chat sessions: opening one, adding turns, the history follow-ups read, and retention.

A session belongs to one tenant and one dataset; it is found by id within the tenant only, and
when opened through an API key, only by that key. Each turn pushes ``expires_at`` to
``SESSION_TTL_SECONDS`` from now; :func:`expire_sessions` deletes the sessions past it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from automate_core.errors import NotFoundError
from automate_datachat.conf import datachat_settings
from automate_datachat.models import DataChatMessage, DataChatSession

if TYPE_CHECKING:
    from automate_core.tenancy.models import Tenant

#: Sessions deleted per maintenance pass (their messages go with them).
EXPIRE_BATCH = 500


class SessionNotFound(NotFoundError):
    code = "datachat_session_not_found"
    default_message = "No data chat session with this id in your tenant."


def expiry() -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=int(datachat_settings.SESSION_TTL_SECONDS))


def open_session(
    *,
    tenant: Tenant,
    dataset: str,
    session: DataChatSession | uuid.UUID | str | None = None,
    user: Any = None,
    end_user: str = "",
    api_key_id: uuid.UUID | None = None,
) -> DataChatSession:
    """The session to continue (by id, of this tenant, dataset and API key, not expired), or a
    new one when ``session`` is None."""
    if isinstance(session, DataChatSession):
        session = session.pk
    if session is None:
        return DataChatSession.objects.create(
            tenant=tenant,
            dataset=dataset,
            user=user if getattr(user, "is_authenticated", False) else None,
            end_user=end_user,
            api_key_id=api_key_id,
            expires_at=expiry(),
        )
    return get_session(tenant=tenant, session_id=session, api_key_id=api_key_id, dataset=dataset)


def sessions_for(tenant: Tenant, *, api_key_id: uuid.UUID | None = None) -> Any:
    """The tenant's live sessions, newest first (an API key's own only)."""
    rows = DataChatSession.objects.for_tenant(tenant).filter(expires_at__gt=timezone.now())
    if api_key_id is not None:
        rows = rows.filter(api_key_id=api_key_id)
    return rows


def get_session(
    *,
    tenant: Tenant,
    session_id: uuid.UUID | str,
    api_key_id: uuid.UUID | None = None,
    dataset: str | None = None,
) -> DataChatSession:
    try:
        pk = uuid.UUID(str(session_id))
    except ValueError:
        raise SessionNotFound(details={"session": str(session_id)}) from None
    rows = sessions_for(tenant, api_key_id=api_key_id).filter(pk=pk)
    if dataset is not None:
        rows = rows.filter(dataset=dataset)
    found = rows.first()
    if found is None:
        raise SessionNotFound(details={"session": str(session_id)})
    return found


def add_turn(
    session: DataChatSession, question: str, answer: dict[str, Any]
) -> tuple[DataChatMessage, DataChatMessage]:
    """Store a question and its answer (``content``, ``sql``, ``data``, ``chart``, ``usage``,
    ``error``) and extend the session's life, in one transaction."""
    with transaction.atomic():
        asked = DataChatMessage.objects.create(
            session=session, role=DataChatMessage.Role.USER, content=question
        )
        answered = DataChatMessage.objects.create(
            session=session, role=DataChatMessage.Role.ASSISTANT, **answer
        )
        session.expires_at = expiry()
        session.save(update_fields=["expires_at", "updated_at"])
    return asked, answered


def history(session: DataChatSession, *, turns: int) -> list[DataChatMessage]:
    """The last ``turns`` questions and answers, oldest first."""
    latest = list(session.messages.order_by("-created_at")[: turns * 2])
    return latest[::-1]


def expire_sessions(batch: int = EXPIRE_BATCH) -> bool:
    """Delete up to ``batch`` expired sessions and their messages; True if more are left."""
    ids = list(
        DataChatSession.objects.filter(expires_at__lte=timezone.now())
        .order_by("expires_at")
        .values_list("pk", flat=True)[: batch + 1]
    )
    with transaction.atomic():
        DataChatMessage.objects.filter(session_id__in=ids[:batch]).delete()
        DataChatSession.objects.filter(pk__in=ids[:batch]).delete()
    return len(ids) > batch
