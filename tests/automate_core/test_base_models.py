"""The abstract base models, through concrete models in tests.testapp."""

import threading
import uuid

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.db import connection

from automate_core.base import InvalidTransition
from tests.testapp.models import Article, Document, Note, Task

pytestmark = pytest.mark.django_db


def test_timestamps_are_set_on_create_and_updated_on_save(tenant):
    note = Note.objects.create(tenant=tenant, title="a")
    created, updated = note.created_at, note.updated_at
    note.title = "b"
    note.save()
    note.refresh_from_db()
    assert note.created_at == created
    assert note.updated_at > updated


def test_uuid_primary_key_is_random(tenant):
    first = Note.objects.create(tenant=tenant, title="a")
    second = Note.objects.create(tenant=tenant, title="b")
    assert isinstance(first.pk, uuid.UUID)
    assert first.pk != second.pk


def test_for_tenant_returns_only_that_tenants_rows(tenant, other_tenant):
    Note.objects.create(tenant=tenant, title="mine")
    Note.objects.create(tenant=other_tenant, title="theirs")
    assert [n.title for n in Note.objects.for_tenant(tenant)] == ["mine"]
    assert [n.title for n in Note.objects.for_tenant(other_tenant.pk)] == ["theirs"]


def test_for_tenant_refuses_none():
    with pytest.raises(ValueError, match="needs a tenant"):
        Note.objects.for_tenant(None)


def test_auditable_stamp_records_creator_and_last_editor(tenant):
    alice = User.objects.create_user("alice")
    bob = User.objects.create_user("bob")
    note = Note(tenant=tenant, title="a")
    note.stamp(alice)
    note.save()
    note.stamp(bob)
    note.save()
    assert (note.created_by, note.updated_by) == (alice, bob)


def test_auditable_stamp_ignores_anonymous_users(tenant):
    note = Note(tenant=tenant, title="a")
    note.stamp(AnonymousUser())
    assert note.created_by is None and note.updated_by is None


def test_soft_delete_hides_the_row_but_keeps_it(tenant):
    doc = Document.objects.create(tenant=tenant, name="Spec")
    doc.delete()
    assert doc.is_deleted
    assert not Document.objects.filter(pk=doc.pk).exists()
    assert Document.all_objects.filter(pk=doc.pk).exists()


def test_soft_deleted_row_can_be_restored(tenant):
    doc = Document.objects.create(tenant=tenant, name="Spec")
    doc.delete()
    doc.restore()
    assert Document.objects.filter(pk=doc.pk).exists()


def test_hard_delete_removes_the_row(tenant):
    doc = Document.objects.create(tenant=tenant, name="Spec")
    doc.hard_delete()
    assert not Document.all_objects.filter(pk=doc.pk).exists()


def test_queryset_delete_is_soft_and_restore_brings_rows_back(tenant):
    Document.objects.create(tenant=tenant, name="A")
    Document.objects.create(tenant=tenant, name="B")
    Document.objects.for_tenant(tenant).delete()
    assert Document.objects.count() == 0
    assert Document.all_objects.count() == 2
    Document.all_objects.restore()
    assert Document.objects.count() == 2


def test_soft_delete_manager_is_tenant_scoped_too(tenant, other_tenant):
    Document.objects.create(tenant=tenant, name="A")
    Document.objects.create(tenant=other_tenant, name="B")
    assert [d.name for d in Document.objects.for_tenant(tenant)] == ["A"]


def test_slug_is_derived_from_name_and_made_unique_within_tenant(tenant, other_tenant):
    first = Document.objects.create(tenant=tenant, name="Refund Policy")
    second = Document.objects.create(tenant=tenant, name="Refund policy")
    elsewhere = Document.objects.create(tenant=other_tenant, name="Refund Policy")
    assert first.slug == "refund-policy"
    assert second.slug == "refund-policy-2"
    assert elsewhere.slug == "refund-policy"


def test_explicit_slug_is_kept(tenant):
    doc = Document.objects.create(tenant=tenant, name="Anything", slug="custom")
    assert doc.slug == "custom"


def test_status_starts_at_initial_status():
    assert Article.objects.create().status == "draft"


def test_allowed_transition_moves_status_and_stamps_time():
    article = Article.objects.create()
    article.transition_to("review")
    article.refresh_from_db()
    assert article.status == "review"
    assert article.status_changed_at is not None


def test_illegal_transition_is_refused_and_names_the_options():
    article = Article.objects.create()
    with pytest.raises(InvalidTransition, match="allowed: review"):
        article.transition_to("published")
    article.refresh_from_db()
    assert article.status == "draft"


def test_stale_instance_cannot_transition_after_another_process_moved_the_row():
    article = Article.objects.create()
    stale = Article.objects.get(pk=article.pk)
    article.transition_to("review")
    article.transition_to("published")
    with pytest.raises(InvalidTransition, match="from 'published'"):
        stale.transition_to("review")


def test_by_status_and_active_filter_by_status():
    draft = Article.objects.create()
    archived = Article.objects.create()
    for target in ("review", "published", "archived"):
        archived.transition_to(target)
    assert list(Article.objects.by_status("archived")) == [archived]
    assert list(Article.objects.active()) == [draft]


def test_get_meta_reads_dotted_paths_with_default(tenant):
    doc = Document(tenant=tenant, name="x", metadata={"billing": {"plan": "pro"}})
    assert doc.get_meta("billing.plan") == "pro"
    assert doc.get_meta("billing.seats", 5) == 5
    assert doc.get_meta("billing.plan.tier") is None


def test_set_meta_creates_intermediate_objects_and_persists(tenant):
    doc = Document.objects.create(tenant=tenant, name="x", metadata={"a": 1})
    doc.set_meta("limits.daily.tokens", 1000)
    doc.save()
    doc.refresh_from_db()
    assert doc.metadata == {"a": 1, "limits": {"daily": {"tokens": 1000}}}


def test_new_ordered_rows_go_last_within_their_scope(tenant, other_tenant):
    a = Task.objects.create(tenant=tenant, title="a")
    b = Task.objects.create(tenant=tenant, title="b")
    c = Task.objects.create(tenant=other_tenant, title="c")
    assert (a.position, b.position, c.position) == (0, 1, 0)


def _titles(tenant):
    return list(
        Task.objects.for_tenant(tenant).order_by("position").values_list("title", flat=True)
    )


def test_move_up_and_move_down_swap_neighbours(tenant):
    tasks = [Task.objects.create(tenant=tenant, title=t) for t in "abc"]
    tasks[2].move_up()
    assert _titles(tenant) == ["a", "c", "b"]
    tasks[0].move_down()
    assert _titles(tenant) == ["c", "a", "b"]


def test_move_to_keeps_positions_dense_and_clamps(tenant):
    tasks = [Task.objects.create(tenant=tenant, title=t) for t in "abcd"]
    tasks[0].move_to(99)
    assert _titles(tenant) == ["b", "c", "d", "a"]
    assert sorted(Task.objects.values_list("position", flat=True)) == [0, 1, 2, 3]
    tasks[0].move_to(0)
    assert _titles(tenant) == ["a", "b", "c", "d"]


def test_move_up_at_top_does_nothing(tenant):
    first = Task.objects.create(tenant=tenant, title="a")
    Task.objects.create(tenant=tenant, title="b")
    first.move_up()
    assert _titles(tenant) == ["a", "b"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_transitions_only_one_wins():
    article = Article.objects.create()
    results: list[str] = []
    barrier = threading.Barrier(4)

    def move() -> None:
        mine = Article.objects.get(pk=article.pk)
        barrier.wait()
        try:
            mine.transition_to("review")
            results.append("moved")
        except InvalidTransition:
            results.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=move) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["moved", "refused", "refused", "refused"]
