"""The browser tests' parts: Debian's chromium (installed with apt when missing and root),
Playwright driving it through ``executable_path``, and host pages served on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ARTIFACTS = Path(os.environ.get("AUTOMATE_ARTIFACTS", "var/artifacts")) / "widgets"


def chromium_path() -> str:
    """Debian's chromium; installed with apt-get when missing and root, else a skip."""
    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        install = ["apt-get", "install", "-y", "-qq", "chromium"]
        update = ["apt-get", "update", "-qq"]
        if subprocess.run(install, capture_output=True, timeout=900).returncode:  # noqa: S603
            subprocess.run(update, capture_output=True, timeout=600)  # noqa: S603
            subprocess.run(install, capture_output=True, timeout=900)  # noqa: S603
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("Debian's chromium is missing (apt-get install chromium, as root)")
    return found


class HostPage:
    """A site that embeds the widget: one page, served on 127.0.0.1 (reachable as
    ``http://127.0.0.1:<port>`` and, as another origin, ``http://localhost:<port>``)."""

    def __init__(self) -> None:
        self.html = "<!doctype html><title>empty</title>"
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = page.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    def embed(self, script_src: str, key: str, *, extra: str = "") -> None:
        self.html = (
            "<!doctype html><html><head><title>Shop</title></head><body>"
            "<h1>Welcome to the shop</h1>"
            f"{extra}<script src='{script_src}' data-embed='{key}' async></script>"
            "</body></html>"
        )

    @contextmanager
    def running(self) -> Iterator[HostPage]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
