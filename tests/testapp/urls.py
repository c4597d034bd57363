"""The site's URLs plus views that exercise error paths."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from automate_core.errors import ConflictError
from automate_site.urls import urlpatterns as site_urlpatterns


class ExplodingView(APIView):
    def get(self, request):
        raise RuntimeError("database password is hunter2")  # must never reach the client


class AlwaysThrottled(BaseThrottle):
    def allow_request(self, request, view):
        return False

    def wait(self):
        return 41.2


class ThrottledView(APIView):
    throttle_classes = [AlwaysThrottled]

    def get(self, request):
        return Response({})


class DomainErrorView(APIView):
    def get(self, request):
        raise ConflictError("Already published.", details={"version": 3})


class OpenView(APIView):
    permission_classes = []
    authentication_classes = []

    def post(self, request):
        return Response({"echo": request.data})


urlpatterns = [
    path("api/v1/test/explode", ExplodingView.as_view()),
    path("api/v1/test/throttled", ThrottledView.as_view()),
    path("api/v1/test/conflict", DomainErrorView.as_view()),
    path("api/v1/test/open", OpenView.as_view()),
    *site_urlpatterns,
]

handler404 = "automate_core.api.errors.json_404_or_html"
handler500 = "automate_core.api.errors.json_500_or_html"
