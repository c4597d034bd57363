"""Markdown pushed through the API is parsed as Markdown when its type or file name says so."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from automate_core.tenancy.models import APIKey
from rag.models import Document
from rag.parsing import detect_format

from .factories import handbook

MARKDOWN = "# Warranty\n\nTwo years on **every** blender."


@pytest.mark.parametrize(
    ("content_type", "name", "expected"),
    [
        ("text/plain", "guide.md", "markdown"),
        ("text/plain; charset=utf-8", "guide.markdown", "markdown"),
        ("", "page.html", "html"),
        ("text/markdown", "notes.txt", "markdown"),  # a specific type wins over the name
        ("text/plain", "notes.txt", "text"),
        ("text/plain", "", "text"),
    ],
)
def test_a_generic_text_type_defers_to_the_file_name(content_type, name, expected):
    assert detect_format(b"# T\n\nbody", content_type=content_type, name=name) == expected


def _client(tenant) -> APIClient:
    _, raw = APIKey.issue(tenant=tenant, name="pusher")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _parsed_as_markdown(external_id: str) -> bool:
    text = Document.objects.get(external_id=external_id).text
    return "# Warranty" not in text and "**every**" not in text and "every blender" in text


def test_inline_content_named_md_is_markdown(tenant):
    handbook(tenant)
    response = _client(tenant).post(
        "/api/v1/rag/sources/docs/documents",
        {"external_id": "warranty.md", "content": MARKDOWN},
        format="json",
    )
    assert response.status_code == 202, response.json()
    assert _parsed_as_markdown("warranty.md")


def test_an_uploaded_md_file_sent_as_text_plain_is_markdown(tenant):
    handbook(tenant)
    upload = SimpleUploadedFile("guide.md", MARKDOWN.encode(), "text/plain")
    response = _client(tenant).post(
        "/api/v1/rag/sources/docs/documents", {"file": upload}, format="multipart"
    )
    assert response.status_code == 202, response.json()
    assert _parsed_as_markdown("guide.md")


def test_inline_content_with_a_plain_name_stays_plain_text(tenant):
    handbook(tenant)
    _client(tenant).post(
        "/api/v1/rag/sources/docs/documents",
        {"external_id": "notes", "content": MARKDOWN},
        format="json",
    )
    assert "# Warranty" in Document.objects.get(external_id="notes").text
