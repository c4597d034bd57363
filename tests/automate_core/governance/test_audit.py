"""The audit log: append-only rows in one hash chain that raw-SQL tampering cannot hide."""

from __future__ import annotations

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from automate_core.governance import audit
from automate_core.governance.audit import verify_chain
from automate_core.governance.models import AuditLog, AuditLogAppendOnly
from automate_core.tenancy.models import APIKey
from automate_core.workflows.models import Automation

pytestmark = pytest.mark.django_db

TABLE = AuditLog._meta.db_table


def _raw_sql(statement: str, params: list) -> None:
    """Tamper behind the ORM's back, as someone with database access could."""
    with connection.cursor() as cursor:
        cursor.execute(statement.replace("{table}", TABLE), params)


def _three_rows(tenant=None) -> list[AuditLog]:
    return [
        audit.record("workflow.publish", actor="system", tenant=tenant, target="wf:1"),
        audit.record("budget.change", actor="user:1", tenant=tenant, data={"limit": 10}),
        audit.record("api_key.create", actor="api_key:dak_abc", target="api_key:dak_x"),
    ]


def test_appended_rows_form_a_valid_chain(tenant):
    rows = _three_rows(tenant)

    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    result = verify_chain()
    assert result.ok and result.checked == 3 and result.broken_id is None


def test_row_changed_with_raw_sql_is_detected_and_named():
    rows = _three_rows()
    _raw_sql("UPDATE {table} SET actor = %s WHERE id = %s", ["user:666", rows[1].pk])

    result = verify_chain()

    assert not result.ok
    assert result.broken_id == rows[1].pk
    assert result.checked == 1
    assert str(rows[1].pk) in str(result)


def test_middle_row_deleted_with_raw_sql_is_detected():
    rows = _three_rows()
    _raw_sql("DELETE FROM {table} WHERE id = %s", [rows[1].pk])

    result = verify_chain()

    assert not result.ok and result.broken_id == rows[2].pk


def test_orm_updates_and_deletes_are_refused():
    row = audit.record("secret.write", actor="system", target="secret:X")

    with pytest.raises(AuditLogAppendOnly):
        AuditLog.objects.filter(pk=row.pk).update(actor="someone else")
    with pytest.raises(AuditLogAppendOnly):
        AuditLog.objects.all().delete()
    with pytest.raises(AuditLogAppendOnly):
        row.delete()
    row.actor = "someone else"
    with pytest.raises(AuditLogAppendOnly):
        row.save()
    assert verify_chain().ok


def test_secrets_in_data_are_redacted_before_storing():
    row = audit.record(
        "ai.call",
        actor="system",
        data={"api_key": "sk-live-0123456789abcdef", "note": "password=hunter2hunter2", "n": 3},
    )

    stored = AuditLog.objects.get(pk=row.pk).data
    assert stored["api_key"] == "[REDACTED]"
    assert "hunter2hunter2" not in stored["note"]
    assert stored["n"] == 3
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_a_single_valid_chain():
    threads_n, per_thread = 8, 10
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                audit.record("budget.change", actor=f"user:{n}", target=f"budget:{i}")
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    result = verify_chain()
    assert result.ok and result.checked == threads_n * per_thread


def test_verify_command_exits_non_zero_on_a_broken_chain(capsys):
    rows = _three_rows()
    call_command("automate_audit_verify")
    assert "OK: 3 row(s)" in capsys.readouterr().out

    _raw_sql("UPDATE {table} SET target = 'x' WHERE id = %s", [rows[0].pk])
    with pytest.raises(CommandError, match=str(rows[0].pk)):
        call_command("automate_audit_verify")


# -- config changes that are audited --------------------------------------------------------


def test_api_key_created_and_revoked_through_the_api_are_audited(api_client, api_key, tenant):
    created = api_client.post("/api/v1/api-keys", {"name": "ci"}, format="json")
    assert created.status_code == 201, created.content
    api_client.delete(f"/api/v1/api-keys/{created.json()['id']}")

    actor = f"api_key:{api_key[0].prefix}"
    rows = list(AuditLog.objects.order_by("seq").values_list("action", "actor", "tenant_id"))
    assert rows == [("api_key.create", actor, tenant.pk), ("api_key.revoke", actor, tenant.pk)]
    assert created.json()["key"] not in str(list(AuditLog.objects.values("data", "target")))


def test_publishing_a_workflow_is_audited(tenant):
    automation = Automation.objects.create(tenant=tenant, name="Welcome")
    version = automation.new_version(
        {"start": "done", "steps": {"done": {"type": "complete", "result": {}}}}
    )

    version.publish(actor="user:7")

    row = AuditLog.objects.get(action="workflow.publish")
    assert (row.actor, row.tenant_id, row.data["version"]) == ("user:7", tenant.pk, 1)


def test_admin_audits_key_creation_revocation_and_budget_changes(admin_client, admin_user, tenant):
    admin_client.post(
        reverse("admin:automate_core_apikey_add"),
        {"tenant": tenant.pk, "name": "k", "scopes": "[]"},
    )
    key = APIKey.objects.get(name="k")
    admin_client.post(
        reverse("admin:automate_core_apikey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
    )
    admin_client.post(
        reverse("admin:automate_core_budget_add"),
        {
            "tenant": tenant.pk,
            "scope_type": "tenant",
            "scope_id": str(tenant.pk),
            "period": "total",
            "limit_tokens": "1000",
        },
    )

    actions = list(AuditLog.objects.order_by("seq").values_list("action", "actor"))
    actor = f"user:{admin_user.pk}"
    assert actions == [
        ("api_key.create", actor),
        ("api_key.revoke", actor),
        ("budget.change", actor),
    ]


def test_admin_is_read_only(admin_client):
    row = audit.record("secret.write", actor="system", target="secret:X")

    assert admin_client.get(reverse("admin:automate_core_auditlog_add")).status_code == 403
    delete = admin_client.post(reverse("admin:automate_core_auditlog_delete", args=[row.pk]))
    assert delete.status_code == 403
    assert AuditLog.objects.count() == 1


def changelist(admin_client, **params) -> str:
    response = admin_client.get(reverse("admin:automate_core_auditlog_changelist"), params)
    assert response.status_code == 200
    return response.content.decode()


def test_verify_rows_checks_each_rows_hash_and_its_link_to_the_row_before():
    rows = [*_three_rows(), audit.record("ai.call", actor="system")]
    _raw_sql("UPDATE {table} SET actor = %s WHERE id = %s", ["user:666", rows[1].pk])
    _raw_sql("DELETE FROM {table} WHERE id = %s", [rows[2].pk])

    verdicts = audit.verify_rows(AuditLog.objects.all())

    assert {row.seq: str(verdicts[row.pk]) for row in AuditLog.objects.all()} == {
        1: "intact",
        2: "BROKEN: content does not match its hash",
        4: "BROKEN: the row before it (seq 3) is missing",
    }


def test_verify_rows_reads_the_row_before_even_when_it_is_not_given():
    rows = _three_rows()
    _raw_sql("UPDATE {table} SET prev_hash = %s WHERE id = %s", ["f" * 64, rows[2].pk])

    verdicts = audit.verify_rows([AuditLog.objects.get(pk=rows[2].pk)])

    assert str(verdicts[rows[2].pk]) == "BROKEN: does not follow the previous row"


def test_admin_page_verifies_the_rows_it_shows(admin_client):
    _three_rows()

    page = changelist(admin_client)

    assert "The 3 row(s) on this page match their hashes and follow the rows before them." in page
    assert "manage.py automate_audit_verify" in page
    assert page.count(">intact<") == 3


def test_admin_page_names_a_tampered_row_it_shows(admin_client):
    rows = _three_rows()
    _raw_sql("UPDATE {table} SET target = 'x' WHERE id = %s", [rows[1].pk])

    page = changelist(admin_client)

    assert "Audit chain BROKEN: 1 of 3 row(s) on this page fail verification" in page
    assert "seq 2: content does not match its hash" in page
    assert page.count(">intact<") == 2


def test_admin_page_does_not_verify_rows_it_does_not_show(admin_client):
    rows = _three_rows()
    _raw_sql("UPDATE {table} SET target = 'x' WHERE id = %s", [rows[0].pk])

    page = changelist(admin_client, action="api_key.create")

    assert "The 1 row(s) on this page match their hashes" in page
    assert "BROKEN" not in page


def test_admin_pages_never_walk_the_whole_chain(admin_client, monkeypatch):
    from automate_core.admin import AuditLogAdmin

    def walk_the_chain(**kwargs):
        raise AssertionError("the admin verified the whole chain")

    monkeypatch.setattr(AuditLogAdmin, "list_per_page", 5)
    monkeypatch.setattr(audit, "verify_chain", walk_the_chain)
    rows = [audit.record("ai.call", actor="system", target=f"call:{n}") for n in range(12)]
    _raw_sql("UPDATE {table} SET target = 'x' WHERE id = %s", [rows[0].pk])

    first = changelist(admin_client)  # seq 12..8: the tampered seq 1 is not shown
    last = changelist(admin_client, p=3)  # seq 2, 1

    assert "The 5 row(s) on this page match their hashes" in first and "BROKEN" not in first
    assert "1 of 2 row(s) on this page fail verification (seq 1: content does not" in last


def test_admin_change_page_shows_the_rows_verdict(admin_client):
    row = _three_rows()[1]

    page = admin_client.get(reverse("admin:automate_core_auditlog_change", args=[row.pk]))

    assert "intact" in page.content.decode()
