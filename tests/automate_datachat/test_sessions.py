"""Sessions: found only within their tenant, extended by each turn, deleted once expired."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from automate_core.outbox import maintenance
from automate_datachat import sessions
from automate_datachat.models import DataChatMessage, DataChatSession


def test_a_session_of_another_tenant_is_not_found(tenant, other_tenant):
    theirs = sessions.open_session(tenant=other_tenant, dataset="shop")
    with pytest.raises(sessions.SessionNotFound):
        sessions.open_session(tenant=tenant, dataset="shop", session=theirs.pk)


def test_a_session_opened_by_one_api_key_is_not_found_by_another(tenant):
    import uuid

    mine = sessions.open_session(tenant=tenant, dataset="shop", api_key_id=uuid.uuid4())
    with pytest.raises(sessions.SessionNotFound):
        sessions.get_session(tenant=tenant, session_id=mine.pk, api_key_id=uuid.uuid4())


def test_a_turn_extends_the_session(tenant):
    session = sessions.open_session(tenant=tenant, dataset="shop")
    DataChatSession.objects.filter(pk=session.pk).update(
        expires_at=timezone.now() + dt.timedelta(minutes=1)
    )
    session.refresh_from_db()
    sessions.add_turn(session, "how many?", {"content": "40", "sql": "SELECT 40"})
    session.refresh_from_db()
    assert session.expires_at > timezone.now() + dt.timedelta(days=6)
    assert [m.role for m in sessions.history(session, turns=5)] == ["user", "assistant"]


def test_history_keeps_the_last_turns_oldest_first(tenant):
    session = sessions.open_session(tenant=tenant, dataset="shop")
    for n in range(4):
        sessions.add_turn(session, f"q{n}", {"content": f"a{n}"})
    assert [m.content for m in sessions.history(session, turns=2)] == ["q2", "a2", "q3", "a3"]


def test_expired_sessions_are_deleted_in_batches_with_their_messages(tenant):
    past = timezone.now() - dt.timedelta(seconds=1)
    for _ in range(3):
        session = sessions.open_session(tenant=tenant, dataset="shop")
        sessions.add_turn(session, "q", {"content": "a"})
        DataChatSession.objects.filter(pk=session.pk).update(expires_at=past)
    live = sessions.open_session(tenant=tenant, dataset="shop")
    assert sessions.expire_sessions(batch=2) is True
    assert sessions.expire_sessions(batch=2) is False
    assert list(DataChatSession.objects.all()) == [live]
    assert not DataChatMessage.objects.exists()


def test_an_expired_session_cannot_be_continued(tenant):
    session = sessions.open_session(tenant=tenant, dataset="shop")
    DataChatSession.objects.filter(pk=session.pk).update(expires_at=timezone.now())
    with pytest.raises(sessions.SessionNotFound):
        sessions.open_session(tenant=tenant, dataset="shop", session=session.pk)


def test_session_expiry_is_a_registered_maintenance_task():
    task = next(t for t in maintenance.tasks() if t.name == "datachat.expire_sessions")
    assert task.run is sessions.expire_sessions
