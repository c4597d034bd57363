"""``/widgets/v1/embed.js``: the built widget script, served from the app's static file.

It is public (any page may load it; the server decides where it may run), cached for an hour,
and readable cross-origin so the widget can tell a refused origin from a lost network.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

SCRIPT = Path(__file__).parent / "static" / "widgets" / "v1" / "embed.js"


@cache
def _script() -> bytes:
    return SCRIPT.read_bytes()


@require_safe
def embed_js(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(_script(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=3600"
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    response["X-Content-Type-Options"] = "nosniff"
    return response
