"""Sources: uploads, pushes, URLs, sitemaps and Django models; incremental by content hash;
failures recorded on the document; everything fetched through the egress policy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from automate_core.testing.runtime import run_until_idle
from rag import services
from rag.errors import FetchError, InvalidSourceConfig
from rag.models import Chunk, Document, KnowledgeSource
from tests.testapp.models import Note

from .conftest import configure_rag
from .embedders import CountingEmbedder
from .factories import make_endpoint, make_source, push
from .sample_files import make_docx, make_pdf
from .site import Site, html, sitemap

pytestmark = pytest.mark.django_db


@pytest.fixture
def site() -> Iterator[Site]:
    with Site() as running:
        yield running


@pytest.fixture
def allow_loopback(settings) -> None:
    settings.AUTOMATE = {
        **(getattr(settings, "AUTOMATE", None) or {}),
        "EGRESS_ALLOW_PRIVATE": ["127.0.0.1"],
    }


def _chunk_texts(endpoint) -> list[str]:
    endpoint.refresh_from_db()
    return list(
        Chunk.objects.filter(index_version=endpoint.live_version).values_list("text", flat=True)
    )


# -- uploads and pushes --------------------------------------------------------------------------


def test_uploaded_pdf_and_docx_files_are_parsed_and_indexed(tenant):
    source = make_source(tenant, type="upload")
    endpoint = make_endpoint(tenant, source)
    services.push_document(
        source,
        external_id="policies.pdf",
        data=make_pdf([["Refunds take five business days."]], title="Policies"),
    )
    services.push_document(
        source,
        external_id="handbook.docx",
        data=make_docx(title="Handbook", sections=[("Leave", ["Paid leave is 25 days."])]),
    )
    run_until_idle()
    texts = _chunk_texts(endpoint)
    assert "Refunds take five business days." in texts
    assert "Paid leave is 25 days." in texts
    docx = Document.objects.get(external_id="handbook.docx")
    assert docx.title == "Handbook" and docx.raw is not None


def test_a_document_that_fails_to_parse_is_recorded_not_dropped(tenant):
    source = make_source(tenant, type="upload")
    endpoint = make_endpoint(tenant, source)
    document, outcome = services.push_document(
        source, external_id="broken.pdf", data=b"%PDF-1.7 garbage"
    )
    run_until_idle()
    assert outcome == "failed"
    stored = Document.objects.get(pk=document.pk)
    assert stored.status == "failed" and "could not be read" in stored.error
    health = services.health_check(endpoint)
    assert health["sources"][0]["failed_documents"] == 1


def test_pushing_the_same_content_again_changes_nothing(tenant):
    source = make_source(tenant)
    make_endpoint(tenant, source)
    push(source, "a.md", "# A\n\nSame text.", metadata={"lang": "en"})
    run_until_idle()
    CountingEmbedder.calls.clear()
    _, outcome = push(source, "a.md", "# A\n\nSame text.", metadata={"lang": "en"})
    assert outcome == "unchanged"
    assert run_until_idle() == 0 and CountingEmbedder.calls == []


def test_changed_metadata_alone_updates_the_chunks_without_embedding_again(tenant):
    source = make_source(tenant)
    endpoint = make_endpoint(tenant, source)
    push(source, "a.md", "# A\n\nSame text.", metadata={"lang": "en"})
    run_until_idle()
    CountingEmbedder.calls.clear()
    _, outcome = push(source, "a.md", "# A\n\nSame text.", metadata={"lang": "fr"})
    run_until_idle()
    endpoint.refresh_from_db()
    assert outcome == "updated" and CountingEmbedder.calls == []
    assert services.query(endpoint, "same", filters={"lang": "fr"}).results


def test_documents_cannot_be_pushed_to_a_fetched_source(tenant):
    source = make_source(tenant, type="url", config={"urls": ["https://example.com"]})
    with pytest.raises(services.InvalidInputError, match="'api' or 'upload'"):
        push(source, "a.md", "text")


# -- URLs ----------------------------------------------------------------------------------------


def test_url_pages_are_fetched_parsed_and_indexed(tenant, site, allow_loopback):
    faq = site.page("/faq", html("FAQ", "Refunds take five business days."))
    about = site.page("/about", html("About", "We are based in Lyon."))
    source = make_source(tenant, type="url", config={"urls": [faq, about]})
    endpoint = make_endpoint(tenant, source)
    report = source.sync()
    assert (report.created, report.failed) == (2, 0)
    assert report.builds == ["support v1: live"]
    assert "Refunds take five business days." in _chunk_texts(endpoint)
    assert Document.objects.get(external_id=faq).metadata == {"url": faq}


def test_an_unchanged_page_is_not_parsed_or_embedded_again(tenant, site, allow_loopback):
    faq = site.page("/faq", html("FAQ", "Refunds take five business days."))
    source = make_source(tenant, type="url", config={"urls": [faq]})
    make_endpoint(tenant, source)
    source.sync()
    CountingEmbedder.calls.clear()
    report = source.sync()
    assert (report.unchanged, report.updated) == (1, 0)
    assert CountingEmbedder.calls == []


def test_a_changed_page_is_reindexed_in_the_live_version(tenant, site, allow_loopback):
    faq = site.page("/faq", html("FAQ", "Refunds take five business days."))
    source = make_source(tenant, type="url", config={"urls": [faq]})
    endpoint = make_endpoint(tenant, source)
    source.sync()
    site.page("/faq", html("FAQ", "Refunds now take ten business days."))
    report = source.sync()
    assert report.updated == 1
    texts = _chunk_texts(endpoint)
    assert "Refunds now take ten business days." in texts
    assert "Refunds take five business days." not in texts
    assert endpoint.live_version.number == 1


def test_a_url_removed_from_the_source_removes_its_document(tenant, site, allow_loopback):
    faq = site.page("/faq", html("FAQ", "Refunds."))
    about = site.page("/about", html("About", "Lyon."))
    source = make_source(tenant, type="url", config={"urls": [faq, about]})
    endpoint = make_endpoint(tenant, source)
    source.sync()
    source.config = {"urls": [faq]}
    source.save()
    assert source.sync().deleted == 1
    assert "Lyon." not in _chunk_texts(endpoint)


def test_a_page_that_cannot_be_fetched_is_a_failed_document(tenant, site, allow_loopback):
    good = site.page("/faq", html("FAQ", "Refunds."))
    source = make_source(tenant, type="url", config={"urls": [good, site.url + "/gone"]})
    make_endpoint(tenant, source)
    report = source.sync()
    assert (report.created, report.failed) == (1, 1)
    failed = Document.objects.get(external_id=site.url + "/gone")
    assert failed.status == "failed" and "HTTP 404" in failed.error
    source.refresh_from_db()
    assert source.sync_status == "succeeded"
    assert source.sync_progress["report"]["failed"] == 1


def test_urls_go_through_the_egress_policy(tenant, site):
    """Loopback is refused by default, as in production: the page fails with the reason."""
    faq = site.page("/faq", html("FAQ", "Refunds."))
    source = make_source(tenant, type="url", config={"urls": [faq]})
    source.sync()
    failed = Document.objects.get(external_id=faq)
    assert failed.status == "failed" and failed.error.startswith("egress_denied")
    assert site.received == []


def test_a_credentials_ref_is_sent_as_the_authorization_header(
    tenant, site, allow_loopback, monkeypatch
):
    monkeypatch.setenv("AUTOMATE_SECRET_DOCS_TOKEN", "Bearer s3cret-docs")
    faq = site.page("/faq", html("FAQ", "Refunds."))
    source = make_source(tenant, type="url", config={"urls": [faq]}, credentials_ref="DOCS_TOKEN")
    source.sync()
    assert site.received[0].headers["authorization"] == "Bearer s3cret-docs"


def test_a_body_over_the_size_limit_fails_that_page(tenant, site, allow_loopback, settings):
    configure_rag(settings, FETCH_MAX_BYTES=100)
    big = site.page("/big", html("Big", "x" * 500))
    source = make_source(tenant, type="url", config={"urls": [big]})
    source.sync()
    assert "larger than 100 bytes" in Document.objects.get(external_id=big).error


def test_an_invalid_url_source_config_is_refused(tenant):
    source = make_source(tenant, type="url", config={"urls": "https://x"})
    with pytest.raises(InvalidSourceConfig, match="list of strings"):
        source.sync()


# -- sitemaps ------------------------------------------------------------------------------------


def test_a_sitemap_lists_the_pages_to_index_with_include_and_exclude(tenant, site, allow_loopback):
    docs = site.page("/docs/a", html("A", "Alpha docs."))
    legacy = site.page("/docs/legacy/b", html("B", "Old docs."))
    blog = site.page("/blog/c", html("C", "Blog post."))
    site.page(
        "/sitemap.xml",
        sitemap((docs, "2026-01-01"), (legacy, ""), (blog, "")),
        content_type="application/xml",
    )
    source = make_source(
        tenant,
        type="sitemap",
        config={
            "url": site.url + "/sitemap.xml",
            "include": ["*/docs/*"],
            "exclude": ["*/legacy/*"],
        },
    )
    make_endpoint(tenant, source)
    report = source.sync()
    assert report.created == 1
    assert list(source.get_documents().values_list("external_id", flat=True)) == [docs]


def test_pages_whose_lastmod_did_not_change_are_not_fetched_again(tenant, site, allow_loopback):
    a = site.page("/a", html("A", "Alpha."))
    b = site.page("/b", html("B", "Beta."))
    site.page("/sitemap.xml", sitemap((a, "2026-01-01"), (b, "2026-01-01")))
    source = make_source(tenant, type="sitemap", config={"url": site.url + "/sitemap.xml"})
    make_endpoint(tenant, source)
    source.sync()
    site.page("/sitemap.xml", sitemap((a, "2026-01-01"), (b, "2026-02-01")))
    report = source.sync()
    assert (report.unchanged, site.fetched("/a"), site.fetched("/b")) == (1, 1, 2)


def test_a_sitemap_index_is_followed(tenant, site, allow_loopback):
    a = site.page("/a", html("A", "Alpha."))
    site.page("/pages.xml", sitemap((a, "")))
    site.page(
        "/sitemap.xml",
        f"<sitemapindex><sitemap><loc>{site.url}/pages.xml</loc></sitemap></sitemapindex>",
    )
    source = make_source(tenant, type="sitemap", config={"url": site.url + "/sitemap.xml"})
    assert source.sync().created == 1


def test_a_sitemap_that_is_not_one_fails_the_sync_with_the_reason(tenant, site, allow_loopback):
    site.page("/sitemap.xml", "<html><body>Not found</body></html>")
    source = make_source(tenant, type="sitemap", config={"url": site.url + "/sitemap.xml"})
    with pytest.raises(FetchError, match="not a sitemap"):
        source.sync()
    source.refresh_from_db()
    assert source.sync_status == "failed" and "not a sitemap" in source.last_error


# -- Django models -------------------------------------------------------------------------------


@pytest.fixture
def note_source(tenant, settings):
    configure_rag(settings, MODEL_SOURCES=["testapp.Note"])
    source = make_source(
        tenant,
        name="Notes",
        type="model",
        config={"model": "testapp.Note", "fields": ["title"], "title_field": "title"},
    )
    return source, make_endpoint(tenant, source)


def test_model_rows_are_indexed_and_other_tenants_rows_are_not(tenant, other_tenant, note_source):
    source, endpoint = note_source
    Note.objects.create(tenant=tenant, title="Acme refund policy")
    Note.objects.create(tenant=other_tenant, title="Globex secret plan")
    source.sync()
    texts = _chunk_texts(endpoint)
    assert texts == ["Acme refund policy"]


def test_saving_a_model_row_updates_the_index(tenant, note_source):
    source, endpoint = note_source
    source.sync()  # empty: no version yet
    note = Note.objects.create(tenant=tenant, title="First note")
    run_until_idle()
    assert _chunk_texts(endpoint) == ["First note"]
    note.title = "Edited note"
    note.save()
    run_until_idle()
    assert _chunk_texts(endpoint) == ["Edited note"]


def test_deleting_a_model_row_removes_it_from_the_index(tenant, note_source):
    source, endpoint = note_source
    note = Note.objects.create(tenant=tenant, title="Short-lived")
    run_until_idle()
    assert _chunk_texts(endpoint) == ["Short-lived"]
    note.delete()
    run_until_idle()
    assert _chunk_texts(endpoint) == []
    assert not source.get_documents().exists()


def test_a_model_not_allowed_by_the_operator_is_refused(tenant):
    source = make_source(
        tenant, type="model", config={"model": "automate_core.APIKey", "fields": ["name"]}
    )
    with pytest.raises(InvalidSourceConfig, match="MODEL_SOURCES"):
        source.sync()


def test_a_model_filter_through_a_relation_is_refused(tenant, settings):
    configure_rag(settings, MODEL_SOURCES=["testapp.Note"])
    source = make_source(
        tenant,
        type="model",
        config={"model": "testapp.Note", "fields": ["title"], "filter": {"tenant__name": "x"}},
    )
    with pytest.raises(InvalidSourceConfig, match="tenant__name"):
        source.sync()


# -- as outbox jobs ------------------------------------------------------------------------------


def test_a_queued_sync_runs_as_an_outbox_job_and_records_progress(tenant, site, allow_loopback):
    faq = site.page("/faq", html("FAQ", "Refunds."))
    source = make_source(tenant, type="url", config={"urls": [faq]})
    endpoint = make_endpoint(tenant, source)
    services.queue_sync(source)
    assert KnowledgeSource.objects.get(pk=source.pk).sync_status == "queued"
    run_until_idle()
    source.refresh_from_db()
    assert source.sync_status == "succeeded"
    assert source.sync_progress["report"]["created"] == 1
    assert _chunk_texts(endpoint) == ["Refunds."]
