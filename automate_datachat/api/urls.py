"""``/api/v1/datachat/``: ask a dataset, run SQL on it, curate its examples; sessions, their
messages, chart images and result tables (CSV)."""

from django.urls import URLPattern, URLResolver, path

from automate_datachat.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("sessions", views.SessionListView.as_view(), name="datachat-sessions"),
    path(
        "sessions/<uuid:session>/messages",
        views.MessageListView.as_view(),
        name="datachat-messages",
    ),
    path(
        "sessions/<uuid:session>/messages/<uuid:message>/chart.<str:image_format>",
        views.ChartImageView.as_view(),
        name="datachat-chart",
    ),
    path(
        "sessions/<uuid:session>/messages/<uuid:message>/results.csv",
        views.ResultsCSVView.as_view(),
        name="datachat-results",
    ),
    path("<slug:dataset>/ask", views.AskView.as_view(), name="datachat-ask"),
    path("<slug:dataset>/sql", views.SQLView.as_view(), name="datachat-sql"),
    path("<slug:dataset>/examples", views.ExampleListView.as_view(), name="datachat-examples"),
    path(
        "<slug:dataset>/examples/<uuid:example>",
        views.ExampleDetailView.as_view(),
        name="datachat-example",
    ),
]
