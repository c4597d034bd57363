"""ASGI entry point: served by uvicorn so SSE streams do not hold a worker thread."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automate_site.settings")

application = get_asgi_application()
