"""``rag.services`` lists and reads an endpoint's documents for other apps (the MCP server's
resources): only what the endpoint could cite, never another tenant's."""

from __future__ import annotations

import pytest

from automate_core.errors import NotFoundError
from rag import services

from .factories import make_endpoint, make_source, push

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(tenant):
    source = make_source(tenant)
    push(source, "public.md", "# Public\n\nOpen to all.", metadata={"audience": "all"})
    push(source, "staff.md", "# Staff\n\nInternal only.", metadata={"audience": "staff"})
    return make_endpoint(tenant, source)


def test_an_endpoints_documents_are_listed_without_their_text(endpoint):
    listed = services.list_endpoint_documents(endpoint)

    assert sorted(d.external_id for d in listed) == ["public.md", "staff.md"]
    assert all(d.text == "" for d in listed)


def test_the_endpoints_forced_filters_hide_documents(endpoint):
    staff = next(d for d in services.list_endpoint_documents(endpoint) if d.title == "Staff")
    endpoint.access_policy = {"forced_filters": {"audience": "all"}}
    endpoint.save()

    assert [d.external_id for d in services.list_endpoint_documents(endpoint)] == ["public.md"]
    with pytest.raises(NotFoundError):
        services.get_endpoint_document(endpoint, staff.id)


def test_a_document_is_read_with_its_text(endpoint):
    first = services.list_endpoint_documents(endpoint, limit=1)[0]

    document = services.get_endpoint_document(endpoint, first.id)

    assert (document.id, document.external_id) == (first.id, first.external_id)
    assert "Open to all." in document.text or "Internal only." in document.text


def test_pages_follow_the_last_id(endpoint):
    first = services.list_endpoint_documents(endpoint, limit=1)

    rest = services.list_endpoint_documents(endpoint, limit=5, after=first[0].id)

    assert [d.id for d in first + rest] == sorted(d.id for d in first + rest)
    assert len(first + rest) == 2


def test_another_tenants_endpoint_never_reads_this_document(endpoint, other_tenant):
    theirs = make_endpoint(other_tenant, make_source(other_tenant))
    ours = services.list_endpoint_documents(endpoint)[0]

    with pytest.raises(NotFoundError):
        services.get_endpoint_document(theirs, ours.id)
