"""The built-in knowledge sources keep the contract every source plugin is tested against."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rag.models import KnowledgeSource
from rag.sources.django_models import ModelSource
from rag.sources.stored import PushedSource, UploadSource
from rag.sources.web import SitemapSource, URLSource
from rag.testing.contracts import SourceContractTest
from tests.testapp.models import Note

from .conftest import configure_rag
from .factories import make_source, push
from .site import Site, html, sitemap


@pytest.fixture
def site(allow_loopback) -> Iterator[Site]:
    with Site() as running:
        yield running


class TestUploadSource(SourceContractTest):
    adapter_class = UploadSource
    invalid_configs = [{"folder": "docs"}]

    @pytest.fixture
    def source(self, tenant) -> KnowledgeSource:
        source = make_source(tenant, type="upload")
        push(source, "refunds.md", "# Refunds\n\nFive business days.")
        return source

    @pytest.fixture
    def expected_ids(self) -> set[str]:
        """Pushed documents are stored as they arrive: a sync lists nothing new."""
        return set()


class TestPushedSource(TestUploadSource):
    adapter_class = PushedSource

    @pytest.fixture
    def source(self, tenant) -> KnowledgeSource:
        source = make_source(tenant, type="api")
        push(source, "refunds.md", "# Refunds\n\nFive business days.")
        return source


class TestURLSource(SourceContractTest):
    adapter_class = URLSource
    invalid_configs = [{}, {"urls": []}, {"urls": ["https://example.com/"], "depth": 2}]

    @pytest.fixture
    def urls(self, site) -> list[str]:
        return [
            site.page("/faq", html("FAQ", "Refunds take five days.")),
            site.page("/about", html("About", "We are in Lyon.")),
        ]

    @pytest.fixture
    def source(self, tenant, urls) -> KnowledgeSource:
        return make_source(tenant, type="url", config={"urls": urls})

    @pytest.fixture
    def expected_ids(self, urls) -> set[str]:
        return set(urls)


class TestSitemapSource(SourceContractTest):
    adapter_class = SitemapSource
    invalid_configs = [{}, {"url": "https://example.com/sitemap.xml", "max_urls": 0}]

    @pytest.fixture
    def pages(self, site) -> dict[str, str]:
        return {
            "docs": site.page("/docs/start", html("Start", "Install it.")),
            "legacy": site.page("/docs/legacy/old", html("Old", "Do not read.")),
            "blog": site.page("/blog/news", html("News", "A new release.")),
        }

    @pytest.fixture
    def source(self, tenant, site, pages) -> KnowledgeSource:
        url = site.page(
            "/sitemap.xml",
            sitemap(*[(page, "2026-01-01") for page in pages.values()]),
            "application/xml",
        )
        config = {"url": url, "include": ["*/docs/*"], "exclude": ["*/legacy/*"]}
        return make_source(tenant, type="sitemap", config=config)

    @pytest.fixture
    def expected_ids(self, pages) -> set[str]:
        return {pages["docs"]}


class TestModelSource(SourceContractTest):
    adapter_class = ModelSource
    invalid_configs = [
        {"model": "auth.User", "fields": ["username"]},
        {"model": "testapp.Note", "fields": ["no_such_field"]},
    ]

    @pytest.fixture
    def source(self, tenant, other_tenant, settings) -> KnowledgeSource:
        configure_rag(settings, MODEL_SOURCES=["testapp.Note"])
        for title in ("Refund policy", "Office hours"):
            Note.objects.create(tenant=tenant, title=title)
        Note.objects.create(tenant=other_tenant, title="Globex plan")
        config = {"model": "testapp.Note", "fields": ["title"], "title_field": "title"}
        return make_source(tenant, type="model", config=config)

    @pytest.fixture
    def expected_ids(self, tenant) -> set[str]:
        """The tenant's own rows only."""
        return {str(pk) for pk in Note.objects.filter(tenant=tenant).values_list("pk", flat=True)}
