"""The widget's URLs: the script, its public endpoints, and the token endpoint of the API."""

from django.urls import URLPattern, URLResolver, path

from widgets import script
from widgets.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("widgets/v1/embed.js", script.embed_js, name="widget-script"),
    path("widgets/v1/<str:pk>/config", views.ConfigView.as_view(), name="widget-config"),
    path(
        "widgets/v1/<str:pk>/conversations",
        views.ConversationsView.as_view(),
        name="widget-conversations",
    ),
    path(
        "widgets/v1/<str:pk>/conversations/<uuid:conversation>/messages",
        views.MessagesView.as_view(),
        name="widget-messages",
    ),
    path(
        "widgets/v1/<str:pk>/messages/<uuid:message>/feedback",
        views.FeedbackView.as_view(),
        name="widget-feedback",
    ),
    path("api/v1/widgets/<str:pk>/tokens", views.TokensView.as_view(), name="widget-tokens"),
]
