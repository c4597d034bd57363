"""Retrieval-augmented generation: sources, embeddings, hybrid pgvector index, query API."""

from typing import Any

from django.apps import AppConfig


class RagConfig(AppConfig):
    name = "rag"
    verbose_name = "RAG"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import setting_changed

        from rag import steps, tasks  # noqa: F401  step types and outbox handlers
        from rag.sources import django_models

        django_models.connect()

        from django.db.models.signals import m2m_changed

        from rag.models import RAGEndpoint
        from rag.services import build_when_sources_added

        # An endpoint created over sources synced before it gets its first index built.
        m2m_changed.connect(
            build_when_sources_added,
            sender=RAGEndpoint.sources.through,
            dispatch_uid="rag.first_build",
        )

        def reconnect(*, setting: str, **_: Any) -> None:
            if setting == "AUTOMATE_RAG":
                django_models.connect()

        setting_changed.connect(reconnect, weak=False, dispatch_uid="rag.model_sources")
