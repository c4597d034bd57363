"""``url`` and ``sitemap``: pages fetched through the egress policy.

Every request goes through :func:`automate_core.governance.egress.http_client` for the source's
tenant (redirect hops included), so private, loopback and metadata addresses are refused like
any connector call. A page that cannot be fetched becomes a failed Document with the reason.
Bodies are read up to ``FETCH_MAX_BYTES``; larger ones fail rather than fill memory.
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from automate_core.errors import AutomateError
from automate_core.governance.egress import http_client
from automate_core.governance.redaction import register_secret_value
from automate_core.governance.secrets import get_secret
from rag.conf import rag_settings
from rag.errors import FetchError
from rag.sources import Listing, SourceAdapter
from rag.sync import Item, ItemFailure, ItemUnchanged


@dataclass(frozen=True)
class Fetched:
    url: str
    content_type: str
    data: bytes


class _Fetcher:
    """One egress-guarded client per sync, with the source's credentials if it has any."""

    def __init__(self, adapter: SourceAdapter) -> None:
        source = adapter.source
        headers = {"User-Agent": str(rag_settings.FETCH_USER_AGENT)}
        if source.credentials_ref:
            value = get_secret(source.credentials_ref, tenant=source.tenant)
            register_secret_value(value)
            headers["Authorization"] = value
        self.client = http_client(
            source.tenant,
            timeout=float(rag_settings.FETCH_TIMEOUT_SECONDS),
            follow_redirects=True,
            headers=headers,
        )

    def fetch(self, url: str) -> Fetched:
        limit = int(rag_settings.FETCH_MAX_BYTES)
        try:
            with self.client.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise FetchError(
                        f"HTTP {response.status_code} from {response.url.host}",
                        details={"status": response.status_code},
                    )
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise FetchError(f"larger than {limit} bytes")
                body = bytearray()
                for part in response.iter_bytes():
                    body.extend(part)
                    if len(body) > limit:
                        raise FetchError(f"larger than {limit} bytes")
                return Fetched(
                    str(response.url), response.headers.get("content-type", ""), bytes(body)
                )
        except httpx.HTTPError as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self.client.close()


def _item(fetched: Fetched, url: str, extra: dict[str, Any] | None = None) -> Item:
    return Item(
        external_id=url,
        data=fetched.data,
        content_type=fetched.content_type,
        metadata={"url": url, **(extra or {})},
    )


def _string_list(config: Mapping[str, Any], key: str) -> list[str]:
    value = config.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{key} must be a list of strings")
    return value


class URLSource(SourceAdapter):
    """``config = {"urls": ["https://example.com/faq", ...]}``; a URL removed from the list
    removes its document."""

    type = "url"

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        try:
            urls = _string_list(config, "urls")
        except ValueError as exc:
            return [str(exc)]
        problems = [] if urls else ["urls must list at least one URL"]
        return problems + [f"unknown key {k!r}" for k in set(config) - {"urls"}]

    def list_items(self) -> Listing:
        urls = list(dict.fromkeys(self.source.config["urls"]))
        return Listing(items=self._items(urls), total=len(urls))

    def _items(self, urls: list[str]) -> Iterator[Item | ItemFailure]:
        fetcher = _Fetcher(self)
        try:
            for url in urls:
                try:
                    yield _item(fetcher.fetch(url), url)
                except AutomateError as exc:  # FetchError, EgressDenied
                    yield ItemFailure(url, f"{exc.code}: {exc.message}")
        finally:
            fetcher.close()


class SitemapSource(SourceAdapter):
    """``config = {"url": "https://example.com/sitemap.xml", "include": ["*/docs/*"],
    "exclude": ["*/legacy/*"], "max_urls": 1000}``. Sitemap indexes are followed one level;
    a page whose ``<lastmod>`` is unchanged since the last sync is not fetched again."""

    type = "sitemap"
    _KEYS = frozenset({"url", "include", "exclude", "max_urls"})

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        problems = []
        if not isinstance(config.get("url"), str) or not config.get("url"):
            problems.append("url (of the sitemap) is required")
        for key in ("include", "exclude"):
            try:
                _string_list(config, key)
            except ValueError as exc:
                problems.append(str(exc))
        max_urls = config.get("max_urls", 1)
        if not isinstance(max_urls, int) or isinstance(max_urls, bool) or max_urls < 1:
            problems.append("max_urls must be a positive integer")
        return problems + [f"unknown key {k!r}" for k in set(config) - cls._KEYS]

    def list_items(self) -> Listing:
        config = self.source.config
        fetcher = _Fetcher(self)
        try:
            entries = self._entries(fetcher, config["url"])
        except Exception:
            fetcher.close()
            raise
        include, exclude = config.get("include") or ["*"], config.get("exclude") or []
        entries = [
            (url, lastmod)
            for url, lastmod in entries
            if any(fnmatch.fnmatchcase(url, p) for p in include)
            and not any(fnmatch.fnmatchcase(url, p) for p in exclude)
        ]
        limit = min(int(config.get("max_urls") or 10**9), int(rag_settings.SITEMAP_MAX_URLS))
        entries = entries[:limit]
        known = {
            external_id: (metadata or {}).get("lastmod")
            for external_id, metadata, status in self.source.get_documents().values_list(
                "external_id", "metadata", "status"
            )
            if status == "ok"
        }
        return Listing(items=self._items(fetcher, entries, known), total=len(entries))

    def _entries(self, fetcher: _Fetcher, url: str, depth: int = 0) -> list[tuple[str, str]]:
        from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

        fetched = fetcher.fetch(url)
        # html.parser on purpose: it never resolves entities or loads DTDs (an XML parser
        # would have to be hardened against both), and <loc>/<lastmod> is all that is read.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
            soup = BeautifulSoup(fetched.data.decode("utf-8", "replace"), "html.parser")
        entries: list[tuple[str, str]] = []
        for nested in soup.find_all("sitemap"):
            loc = nested.find("loc")
            if loc is not None and depth < 1:
                entries.extend(self._entries(fetcher, loc.get_text(strip=True), depth + 1))
        for node in soup.find_all("url"):
            loc, lastmod = node.find("loc"), node.find("lastmod")
            if loc is not None and loc.get_text(strip=True):
                entries.append(
                    (loc.get_text(strip=True), lastmod.get_text(strip=True) if lastmod else "")
                )
        if depth == 0 and not entries and not soup.find_all(["urlset", "sitemapindex"]):
            raise FetchError("not a sitemap (no <urlset> or <sitemapindex>)")
        return list(dict.fromkeys(entries))

    def _items(
        self, fetcher: _Fetcher, entries: list[tuple[str, str]], known: dict[str, Any]
    ) -> Iterator[Item | ItemFailure | ItemUnchanged]:
        try:
            for url, lastmod in entries:
                if lastmod and known.get(url) == lastmod:
                    yield ItemUnchanged(url)
                    continue
                try:
                    extra = {"lastmod": lastmod} if lastmod else {}
                    yield _item(fetcher.fetch(url), url, extra)
                except AutomateError as exc:
                    yield ItemFailure(url, f"{exc.code}: {exc.message}")
        finally:
            fetcher.close()
