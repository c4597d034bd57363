"""``/api/v1/modal/``: jobs of endpoints, and the completion callback."""

from django.urls import URLPattern, URLResolver, path

from automate_modal.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("callback/<uuid:job>", views.CallbackView.as_view(), name="modal-callback"),
    path("jobs/<uuid:job>", views.JobDetailView.as_view(), name="modal-job"),
    path("jobs/<uuid:job>/cancel", views.JobCancelView.as_view(), name="modal-job-cancel"),
    path("jobs/<uuid:job>/logs", views.JobLogsView.as_view(), name="modal-job-logs"),
    path("<slug:endpoint>/jobs", views.EndpointJobsView.as_view(), name="modal-jobs"),
]
