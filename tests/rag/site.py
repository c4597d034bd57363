"""A small website on loopback for the url and sitemap sources: pages by path, editable."""

from __future__ import annotations

from automate_core.testing.loopback import Received, RecordingServer, Reply


class Site(RecordingServer):
    def __init__(self) -> None:
        self.pages: dict[str, Reply] = {}
        super().__init__(self._route)

    def _route(self, received: Received) -> Reply:
        return self.pages.get(received.path.split("?", 1)[0], Reply(status=404, body=b"missing"))

    def page(self, path: str, body: str, content_type: str = "text/html; charset=utf-8") -> str:
        self.pages[path] = Reply(headers={"Content-Type": content_type}, body=body.encode())
        return self.url + path

    def fetched(self, path: str) -> int:
        return sum(1 for r in self.received if r.path == path)


def html(title: str, *paragraphs: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return f"<html><head><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>"


def sitemap(*entries: tuple[str, str]) -> str:
    urls = "".join(
        f"<url><loc>{loc}</loc>{f'<lastmod>{mod}</lastmod>' if mod else ''}</url>"
        for loc, mod in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
    )
