"""``/api/v1/llm/``: chat, prompts and usage."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
