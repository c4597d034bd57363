"""``/api/v1/rag/``: query and answer endpoints."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
