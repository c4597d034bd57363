"""``/api/v1/rag/``: the query endpoint, key scopes, forced filters, rate limits and pushes."""

from __future__ import annotations

import base64

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from automate_core.tenancy.models import APIKey
from automate_core.testing.runtime import run_until_idle
from rag.models import Document

from .conftest import configure_rag
from .factories import handbook, make_endpoint, make_source
from .sample_files import make_pdf

pytestmark = pytest.mark.django_db


def _client(tenant, scopes=None) -> APIClient:
    _, raw = APIKey.issue(tenant=tenant, name="k", scopes=scopes or [])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_a_scoped_key_queries_its_endpoint(tenant):
    handbook(tenant)
    client = _client(tenant, ["rag:support"])
    response = client.post(
        "/api/v1/rag/support/query", {"query": "warehouse delivery", "top_k": 2}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["results"][0]["document"]["external_id"] == "shipping.md"
    assert body["results"][0]["highlights"]
    assert body["index_version"]["number"] == 1
    assert body["trace_id"] == response["X-Trace-Id"]
    assert body["timings"]["total_ms"] > 0
    assert set(body["results"][0]) >= {"text", "score", "metadata", "document", "highlights"}


def test_a_key_scoped_to_another_endpoint_is_refused(tenant):
    handbook(tenant)
    client = _client(tenant, ["rag:faq"])
    response = client.post("/api/v1/rag/support/query", {"query": "refunds"}, format="json")
    assert response.status_code == 403
    assert response.json()["message"] == "This API key is not scoped for rag:support."


def test_an_unknown_endpoint_is_a_404_in_the_error_shape(tenant):
    response = _client(tenant).post("/api/v1/rag/nope/query", {"query": "x"}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "rag_endpoint_not_found"


def test_an_endpoint_without_an_index_answers_409(tenant):
    make_endpoint(tenant, make_source(tenant))
    response = _client(tenant).post("/api/v1/rag/support/query", {"query": "x"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "rag_index_not_ready"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": "x", "filters": {"topic": {"$regex": "."}}}, "rag_invalid_filter"),
        ({"query": "x", "filters": ["a"]}, "validation_error"),
        ({"query": "x", "top_k": 1000}, "validation_error"),
        ({"query": ""}, "validation_error"),
        ({}, "validation_error"),
    ],
)
def test_bad_query_input_is_a_400_with_a_code(tenant, body, code):
    handbook(tenant)
    response = _client(tenant).post("/api/v1/rag/support/query", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_the_access_policy_forces_its_filters_on_every_query(tenant):
    handbook(tenant, access_policy={"forced_filters": {"topic": "shipping"}})
    client = _client(tenant, ["rag:support"])
    for filters in ({}, {"topic": "security"}, {"topic": {"$ne": "shipping"}}):
        response = client.post(
            "/api/v1/rag/support/query",
            {"query": "passwords refunds delivery", "filters": filters, "top_k": 10},
            format="json",
        )
        topics = {r["metadata"]["topic"] for r in response.json()["results"]}
        assert topics <= {"shipping"}, filters


def test_queries_are_rate_limited_per_key(tenant, settings):
    configure_rag(settings, QUERY_RATE_LIMIT="2/min")
    handbook(tenant)
    client = _client(tenant)
    codes = [
        client.post("/api/v1/rag/support/query", {"query": "x"}, format="json") for _ in range(3)
    ]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert codes[2].json()["code"] == "throttled" and int(codes[2]["Retry-After"]) > 0


def test_health_reports_the_live_version_and_sources(tenant):
    handbook(tenant)
    body = _client(tenant, ["rag:support"]).get("/api/v1/rag/support/health").json()
    assert body["ok"] is True
    assert body["live_version"]["number"] == 1 and body["live_version"]["stale_documents"] == 0
    assert body["sources"][0]["documents"] == 3


# -- documents and sources -------------------------------------------------------------------


def test_a_json_document_push_is_stored_and_indexed(tenant):
    endpoint = handbook(tenant)
    client = _client(tenant, ["rag-sources:docs"])
    response = client.post(
        "/api/v1/rag/sources/docs/documents",
        {
            "external_id": "warranty.md",
            "content": "# Warranty\n\nTwo years on every blender.",
            "content_type": "text/markdown",
            "metadata": {"topic": "warranty"},
        },
        format="json",
    )
    assert response.status_code == 202
    assert response.json()["outcome"] == "created"
    run_until_idle()
    result = client_query(tenant, "blender warranty")
    assert result["results"][0]["document"]["external_id"] == "warranty.md"
    assert endpoint.versions.count() == 1


def client_query(tenant, text: str) -> dict:
    return (
        _client(tenant)
        .post("/api/v1/rag/support/query", {"query": text, "top_k": 1}, format="json")
        .json()
    )


def test_a_file_upload_is_parsed_by_its_type(tenant):
    handbook(tenant)
    upload = SimpleUploadedFile(
        "policy.pdf", make_pdf([["Returns are free for members."]]), "application/pdf"
    )
    response = _client(tenant).post(
        "/api/v1/rag/sources/docs/documents", {"file": upload}, format="multipart"
    )
    assert response.status_code == 202, response.json()
    assert response.json()["external_id"] == "policy.pdf"
    assert Document.objects.get(external_id="policy.pdf").text == "Returns are free for members."


def test_a_base64_document_that_fails_to_parse_answers_with_the_reason(tenant):
    handbook(tenant)
    response = _client(tenant).post(
        "/api/v1/rag/sources/docs/documents",
        {
            "external_id": "scan.pdf",
            "content_base64": base64.b64encode(b"%PDF-1.4 nothing").decode(),
            "content_type": "application/pdf",
        },
        format="json",
    )
    body = response.json()
    assert response.status_code == 202
    assert (body["status"], body["outcome"]) == ("failed", "failed")
    assert "could not be read" in body["error"]


def test_a_query_key_cannot_push_documents(tenant):
    handbook(tenant)
    response = _client(tenant, ["rag:*"]).post(
        "/api/v1/rag/sources/docs/documents",
        {"external_id": "x", "content": "x"},
        format="json",
    )
    assert response.status_code == 403


def test_a_push_needs_exactly_one_kind_of_content(tenant):
    handbook(tenant)
    response = _client(tenant).post(
        "/api/v1/rag/sources/docs/documents",
        {"external_id": "x", "content": "a", "content_base64": "YQ=="},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_deleting_a_document_removes_it_and_a_second_delete_is_a_404(tenant):
    handbook(tenant)
    client = _client(tenant)
    assert client.delete("/api/v1/rag/sources/docs/documents/refunds.md").status_code == 204
    assert client.delete("/api/v1/rag/sources/docs/documents/refunds.md").status_code == 404
    assert not Document.objects.filter(external_id="refunds.md").exists()


def test_a_source_sync_is_queued_and_its_progress_is_shown(tenant):
    handbook(tenant)
    client = _client(tenant, ["rag-sources:docs"])
    response = client.post("/api/v1/rag/sources/docs/sync")
    assert response.status_code == 202 and response.json()["job_id"]
    run_until_idle()
    detail = client.get("/api/v1/rag/sources/docs").json()
    assert detail["sync_status"] == "succeeded"
    assert detail["documents"] == 3 and detail["sync_progress"]["phase"] == "done"


def test_the_schema_describes_the_rag_endpoints(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    assert {
        "/api/v1/rag/{endpoint}/query",
        "/api/v1/rag/{endpoint}/health",
        "/api/v1/rag/sources/{source}/documents",
        "/api/v1/rag/sources/{source}/sync",
    } <= set(paths)
    query = paths["/api/v1/rag/{endpoint}/query"]["post"]
    assert "200" in query["responses"] and "429" in query["responses"]
