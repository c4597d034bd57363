"""A new endpoint over sources synced before it existed builds its first index by itself."""

from __future__ import annotations

import pytest

from automate_core.outbox.models import OutboxJob
from automate_core.testing.runtime import run_until_idle
from rag import services

from .factories import make_endpoint, make_source, push

pytestmark = pytest.mark.django_db


def test_an_endpoint_created_over_synced_sources_builds_its_index(tenant):
    source = make_source(tenant)
    push(source, "a.md", "# Refunds\n\nRefunds take five days.")
    run_until_idle()  # the source is synced; no endpoint uses it yet
    endpoint = make_endpoint(tenant, source)
    run_until_idle()
    endpoint.refresh_from_db()
    assert endpoint.live_version.number == 1
    assert services.query(endpoint, "refunds").results


def test_an_endpoint_over_empty_sources_queues_no_build(tenant):
    make_endpoint(tenant, make_source(tenant))
    assert not OutboxJob.objects.filter(kind="rag.first_build").exists()


def test_a_first_build_does_nothing_once_the_endpoint_is_live(tenant):
    source = make_source(tenant)
    push(source, "a.md", "# Refunds\n\nRefunds take five days.")
    endpoint = make_endpoint(tenant, source)
    services.reindex(endpoint)
    run_until_idle()
    endpoint.refresh_from_db()
    assert list(endpoint.versions.values_list("number", flat=True)) == [1]
