"""ASGI entry point: served by uvicorn so SSE streams do not hold a worker thread.

``/mcp`` (the platform as an MCP server) is an SDK app mounted beside Django's; it also takes
the ASGI lifespan, which Django refuses (see :mod:`mcp_bridge.exposure.asgi`).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automate_site.settings")

django_application = get_asgi_application()

from mcp_bridge.exposure.asgi import MCPMount  # noqa: E402  needs Django set up first

application = MCPMount(django_application)
