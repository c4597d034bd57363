"""``/api/v1/rag/``: query, answer and health of endpoints; documents and syncs of sources;
the sources, endpoints and embedding models themselves under ``config/``."""

from django.urls import URLPattern, URLResolver, path

from automate_core.api.routers import OptionalSlashRouter
from rag.api import manage, views

config = OptionalSlashRouter()
config.register("config/sources", manage.KnowledgeSourceViewSet, basename="rag-config-source")
config.register("config/endpoints", manage.RAGEndpointViewSet, basename="rag-config-endpoint")
config.register(
    "config/embedding-models", manage.EmbeddingModelViewSet, basename="rag-config-embedding-model"
)

urlpatterns: list[URLPattern | URLResolver] = [
    *config.urls,
    path("sources/<slug:source>", views.SourceDetailView.as_view(), name="rag-source-detail"),
    path("sources/<slug:source>/sync", views.SourceSyncView.as_view(), name="rag-source-sync"),
    path(
        "sources/<slug:source>/documents",
        views.DocumentPushView.as_view(),
        name="rag-document-push",
    ),
    path(
        "sources/<slug:source>/documents/<path:external_id>",
        views.DocumentDeleteView.as_view(),
        name="rag-document-delete",
    ),
    path("<slug:endpoint>/query", views.QueryView.as_view(), name="rag-query"),
    path("<slug:endpoint>/answer", views.AnswerView.as_view(), name="rag-answer"),
    path("<slug:endpoint>/health", views.HealthView.as_view(), name="rag-health"),
]
