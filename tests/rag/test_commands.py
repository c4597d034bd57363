"""``manage.py rag_sync``: runs syncs here with progress bars, or queues them."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from automate_core.outbox.models import OutboxJob
from rag.models import KnowledgeSource

from .factories import handbook, make_endpoint, make_source, push

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("rag_sync", *args, stdout=out)
    return out.getvalue()


def test_rag_sync_runs_a_source_here_and_draws_a_progress_bar(tenant):
    source = make_source(tenant)
    make_endpoint(tenant, source)
    for i in range(3):
        push(source, f"d{i}.md", f"# Doc {i}\n\nBody {i}.")
    output = _run("docs", "--progress")
    assert "acme/docs index" in output and "3/3" in output and "100%" in output
    assert "acme/docs: listed 0" in output
    assert KnowledgeSource.objects.get(pk=source.pk).sync_status == "succeeded"


def test_rag_sync_queue_enqueues_a_job(tenant):
    make_source(tenant)
    assert "acme/docs: queued" in _run("docs", "--queue")
    assert OutboxJob.objects.filter(kind="rag.sync").count() == 1


def test_an_ambiguous_source_slug_needs_the_tenant(tenant, other_tenant):
    make_source(tenant)
    make_source(other_tenant)
    with pytest.raises(CommandError, match="pass --tenant"):
        _run("docs")
    assert "globex/docs" in _run("docs", "--tenant", "globex")


def test_rag_sync_reindex_builds_a_new_version(tenant):
    handbook(tenant)
    output = _run("--reindex", "support", "--progress")
    assert "acme/support: version 2 live" in output


def test_rag_sync_without_sources_says_what_to_pass(tenant):
    with pytest.raises(CommandError, match="--all"):
        _run()
