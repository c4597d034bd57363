"""Attacks on the RAG app: tenant A (Acme) tries to read or change tenant B's (Globex) sources,
documents, chunks and endpoints, through the API (with forged tenant headers and parameters)
and through the services. Both tenants have an endpoint ``support`` over a source ``docs``
holding ``shared.md`` with each tenant's own launch code."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from automate_core.errors import InvalidInputError
from automate_core.testing.runtime import run_until_idle
from rag import services
from rag.errors import EndpointNotFound, SourceNotFound
from rag.models import Chunk, Document, KnowledgeSource

from .conftest import World
from .test_api_isolation import FORGERIES, _forged_client, _snapshot

pytestmark = pytest.mark.django_db


def _rag(world: World, side: str) -> dict[str, Any]:
    return getattr(world, side).extra["rag"]


def _b_rag_state(world: World) -> dict[str, Any]:
    tenant = world.b.tenant
    return {
        "sources": list(KnowledgeSource.objects.filter(tenant=tenant).values().order_by("pk")),
        "documents": list(
            Document.objects.filter(tenant=tenant)
            .values("pk", "content_hash", "status", "title")
            .order_by("pk")
        ),
        "chunks": sorted(
            str(pk) for pk in Chunk.objects.filter(tenant=tenant).values_list("pk", flat=True)
        ),
    }


def _b_markers(world: World) -> list[str]:
    b = _rag(world, "b")
    return [
        b["launch_code"],
        "globex",
        str(b["secret_doc"].pk),
        str(b["source"].pk),
        str(b["version"].pk),
        str(b["endpoint"].pk),
    ]


def _assert_no_b(world: World, text: str, *, typed: str = "") -> None:
    """None of B's secrets or ids in ``text`` (what the attacker typed may be echoed)."""
    lowered = text.lower()
    for marker in _b_markers(world):
        if marker.lower() in typed.lower():
            continue
        assert marker.lower() not in lowered, f"tenant B's {marker!r} leaked"


def _suffix(extra: dict[str, str]) -> str:
    return "?" + "&".join(f"{k}={v}" for k, v in extra.items()) if extra else ""


# -- query and health ----------------------------------------------------------------------------


@pytest.mark.parametrize("forgery", FORGERIES)
def test_query_with_a_key_of_a_sees_only_a_chunks(world, forgery):
    client, extra = _forged_client(world, forgery)
    a, b = _rag(world, "a"), _rag(world, "b")
    attempts = [
        {},
        {"source": "docs"},
        {"document_id": str(b["secret_doc"].pk)},
        {"external_id": "shared.md"},
        {"document_id": {"$in": [str(b["secret_doc"].pk), str(b["public_doc"].pk)]}},
    ]
    for filters in attempts:
        response = client.post(
            f"/api/v1/rag/support/query{_suffix(extra)}",
            {"query": "What is the launch code?", "top_k": 20, "filters": filters},
            format="json",
        )
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["index_version"]["id"] == str(a["version"].pk)
        _assert_no_b(world, response.content.decode())
        for result in body["results"]:
            assert result["document"]["id"] in {str(a["secret_doc"].pk), str(a["public_doc"].pk)}
    mine = client.post(
        f"/api/v1/rag/support/query{_suffix(extra)}",
        {"query": "What is the launch code?", "top_k": 1},
        format="json",
    )
    assert a["launch_code"] in mine.content.decode()  # the attack would have seen it


@pytest.mark.parametrize("forgery", FORGERIES)
def test_query_key_of_a_reaches_its_own_support_endpoint_only(world, forgery):
    a = _rag(world, "a")
    client = APIClient()
    headers = {
        k: v.replace("{b_pk}", str(world.b.tenant.pk))
        for k, v in FORGERIES[forgery]["headers"].items()
    }
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {a['query_key']}", **headers)
    ok = client.post("/api/v1/rag/support/query", {"query": "launch code"}, format="json")
    assert ok.status_code == 200
    _assert_no_b(world, ok.content.decode())
    theirs = _rag(world, "b")["private_endpoint"].slug
    paths = (
        f"/api/v1/rag/{theirs}/query",
        f"/api/v1/rag/{theirs}/answer",
        "/api/v1/rag/sources/docs/documents",
    )
    for path in paths:
        response = client.post(
            path, {"query": "x", "external_id": "x", "content": "x"}, format="json"
        )
        assert response.status_code == 403
        _assert_no_b(world, response.content.decode(), typed=path)


@pytest.mark.parametrize("forgery", FORGERIES)
def test_b_endpoints_are_404_for_a(world, forgery):
    client, extra = _forged_client(world, forgery)
    theirs = _rag(world, "b")["private_endpoint"].slug
    query = client.post(
        f"/api/v1/rag/{theirs}/query{_suffix(extra)}", {"query": "launch"}, format="json"
    )
    health = client.get(f"/api/v1/rag/{theirs}/health{_suffix(extra)}")
    answer = client.post(
        f"/api/v1/rag/{theirs}/answer{_suffix(extra)}", {"query": "launch"}, format="json"
    )
    for response in (query, health, answer):
        assert response.status_code == 404
        assert response.json()["code"] == "rag_endpoint_not_found"
        _assert_no_b(world, response.content.decode(), typed=theirs)


@pytest.mark.parametrize("forgery", FORGERIES)
def test_health_of_support_describes_a_endpoint(world, forgery):
    client, extra = _forged_client(world, forgery)
    response = client.get(f"/api/v1/rag/support/health{_suffix(extra)}")
    assert response.status_code == 200
    assert response.json()["live_version"]["id"] == str(_rag(world, "a")["version"].pk)
    _assert_no_b(world, response.content.decode())


@pytest.mark.parametrize("forgery", FORGERIES)
def test_answer_with_a_key_of_a_uses_only_a_passages_and_a_provider(
    world, forgery, settings, monkeypatch
):
    """Both tenants have provider ``main`` and endpoint ``support``, each provider on its own
    server: whatever A forges, only A's chunks reach only A's server, and every record is A's."""
    from automate_core.testing.fake_network import configure_egress
    from automate_llm.models import LLMProvider, LLMRequest
    from automate_llm.testing import OpenAIWire, Reply

    configure_egress(settings, EGRESS_ALLOW_PRIVATE=["127.0.0.1"])
    monkeypatch.setenv("AUTOMATE_SECRET_OPENAI_KEY", "sk-isolation-0123456789")
    client, extra = _forged_client(world, forgery)
    a, b = _rag(world, "a"), _rag(world, "b")
    attempts = [
        {},
        {"source": "docs"},
        {"document_id": str(b["secret_doc"].pk)},
        {"document_id": {"$in": [str(b["secret_doc"].pk), str(b["public_doc"].pk)]}},
    ]
    answered: list[bool] = []
    with OpenAIWire() as mine, OpenAIWire() as theirs:
        for state, server in ((world.a, mine), (world.b, theirs)):
            server.api_key = "sk-isolation-0123456789"
            server.script(*[Reply(text=f"from {state.tenant.slug} [1]")] * len(attempts))
            config = {**state.llm_provider.config, "base_url": server.base_url}
            LLMProvider.objects.filter(pk=state.llm_provider.pk).update(config=config)
        b_calls = LLMRequest.objects.filter(tenant=world.b.tenant).count()
        b_budget = _snapshot(world.b.budget)
        for filters in attempts:
            response = client.post(
                f"/api/v1/rag/support/answer{_suffix(extra)}",
                {
                    "query": "What is the launch code?",
                    "top_k": 20,
                    "filters": filters,
                    "end_user": str(world.b.tenant.pk),
                },
                format="json",
            )
            assert response.status_code == 200, response.json()
            body = response.json()
            assert body["index_version"]["id"] == str(a["version"].pk)
            for result in body["results"]:
                assert result["document"]["id"] in {
                    str(a["secret_doc"].pk),
                    str(a["public_doc"].pk),
                }
            _assert_no_b(world, response.content.decode(), typed=str(world.b.tenant.pk))
            answered.append(body["outcome"] == "answered")
        assert theirs.requests == []
        # B's document ids match none of A's chunks: nothing to answer from, no call.
        assert answered == [True, True, False, False]
        assert len(mine.requests) == 2
        for request in mine.requests:
            _assert_no_b(world, request.raw.decode())
        assert a["launch_code"] in mine.requests[0].raw.decode()  # the attack would have sent it
    run_until_idle()  # write the queued call records
    assert LLMRequest.objects.filter(tenant=world.a.tenant).count() == 3  # + the world's own
    assert LLMRequest.objects.filter(tenant=world.b.tenant).count() == b_calls
    assert _snapshot(world.b.budget) == b_budget


# -- sources and documents -----------------------------------------------------------------------


@pytest.mark.parametrize("forgery", FORGERIES)
def test_source_routes_act_on_a_source_only(world, forgery):
    client, extra = _forged_client(world, forgery)
    a = _rag(world, "a")
    before = _b_rag_state(world)
    suffix = _suffix(extra)

    detail = client.get(f"/api/v1/rag/sources/docs{suffix}")
    assert detail.json()["id"] == str(a["source"].pk)
    pushed = client.post(
        f"/api/v1/rag/sources/docs/documents{suffix}",
        {"external_id": "shared.md", "content": "overwritten by a"},
        format="json",
    )
    assert pushed.status_code == 202
    assert pushed.json()["id"] == str(a["secret_doc"].pk)
    assert client.post(f"/api/v1/rag/sources/docs/sync{suffix}").status_code == 202
    deleted = client.delete(f"/api/v1/rag/sources/docs/documents/public.md{suffix}")
    assert deleted.status_code == 204
    run_until_idle()
    for response in (detail, pushed):
        _assert_no_b(world, response.content.decode())
    assert _b_rag_state(world) == before


@pytest.mark.parametrize("forgery", FORGERIES)
def test_b_private_source_is_404_for_every_method(world, forgery):
    client, extra = _forged_client(world, forgery)
    theirs = _rag(world, "b")["private_source"].slug
    before = _b_rag_state(world)
    suffix = _suffix(extra)
    attacks = [
        ("get", f"/api/v1/rag/sources/{theirs}", None),
        ("post", f"/api/v1/rag/sources/{theirs}/sync", None),
        ("post", f"/api/v1/rag/sources/{theirs}/documents", {"external_id": "x", "content": "x"}),
        ("delete", f"/api/v1/rag/sources/{theirs}/documents/notes.md", None),
    ]
    for method, path, body in attacks:
        response = getattr(client, method)(path + suffix, body, format="json")
        assert response.status_code == 404, (method, path, response.status_code)
        assert response.json()["code"] == "rag_source_not_found"
        _assert_no_b(world, response.content.decode(), typed=path)
    run_until_idle()
    assert _b_rag_state(world) == before


# -- services ------------------------------------------------------------------------------------


def test_lookups_for_a_never_find_b_slugs(world):
    b = _rag(world, "b")
    with pytest.raises(EndpointNotFound):
        services.get_endpoint(world.a.tenant, b["private_endpoint"].slug)
    with pytest.raises(SourceNotFound):
        services.get_source(world.a.tenant, b["private_source"].slug)
    assert services.get_endpoint(world.a.tenant, "support") == _rag(world, "a")["endpoint"]
    assert services.get_source(world.a.tenant.pk, "docs") == _rag(world, "a")["source"]


def test_an_endpoint_of_a_wrongly_given_b_source_never_indexes_b_documents(world):
    """Defence in depth: even a bad many-to-many row cannot pull B's text into A's index."""
    a, b = _rag(world, "a"), _rag(world, "b")
    a["endpoint"].sources.add(b["source"])
    version = services.reindex(a["endpoint"])
    assert version.status == "live"
    owners = set(
        Chunk.objects.filter(index_version=version).values_list("document__tenant_id", flat=True)
    )
    assert owners == {world.a.tenant.pk}
    result = services.query(a["endpoint"], "launch code", top_k=20)
    _assert_no_b(world, str(result.to_json()))


def test_a_query_of_a_endpoint_cannot_read_b_index_version(world):
    a, b = _rag(world, "a"), _rag(world, "b")
    with pytest.raises(InvalidInputError, match="another endpoint"):
        services.query(a["endpoint"], "launch code", version=b["version"])


def test_the_forced_filter_of_a_private_endpoint_cannot_be_widened(world):
    a = _rag(world, "a")
    result = services.query(
        a["private_endpoint"],
        "launch code notes",
        top_k=20,
        filters={"visibility": {"$in": ["internal", "public"]}},
    )
    assert {r.metadata.get("visibility") for r in result.results} <= {"public"}
    assert a["launch_code"] not in str(result.to_json())
