"""WSGI entry point, for servers without ASGI (streaming endpoints then hold a thread)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automate_site.settings")

application = get_wsgi_application()
