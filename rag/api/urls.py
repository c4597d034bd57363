"""``/api/v1/rag/``: query, answer and health of endpoints; documents and syncs of sources."""

from django.urls import URLPattern, URLResolver, path

from rag.api import views

urlpatterns: list[URLPattern | URLResolver] = [
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
