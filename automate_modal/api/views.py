"""``/api/v1/modal/``: spawn jobs on an endpoint, read, cancel and follow them, and the signed
completion callback the functions report to.

Access: an API key of the tenant scoped to ``modal:<endpoint>`` (or a tenant member). Endpoints
and jobs are found within the caller's tenant only: another tenant's is a 404, whatever the
key. The callback needs no key: its URL's signature is the credential (one report, one attempt,
until it expires).
"""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from automate_core.api.permissions import request_tenant
from automate_core.governance.audit import actor_for_request
from automate_core.tenancy.models import APIKey, Tenant
from automate_modal import services
from automate_modal.api.serializers import (
    CallbackAcceptedSerializer,
    CallbackSerializer,
    JobLogsSerializer,
    JobSerializer,
    SpawnRequestSerializer,
)
from automate_modal.backends.base import Done, Failed
from automate_modal.callbacks import CallbackRefused, verify
from automate_modal.models import ModalJob

#: Idempotency keys of jobs spawned through the API, within the tenant and endpoint.
API_KEY_PREFIX = "api-modal:"


def _tenant(request: Request) -> Tenant:
    tenant = request_tenant(request)
    assert tenant is not None  # IsTenantMember let the request in
    return tenant


class EndpointJobsView(APIView):
    """Spawn a job on the endpoint; it runs on its own and is followed at ``/jobs/<id>``."""

    def required_resource(self, request: Request) -> str:
        return f"modal:{self.kwargs['endpoint']}"

    @extend_schema(
        operation_id="modal_spawn",
        request=SpawnRequestSerializer,
        responses={
            202: JobSerializer,
            402: OpenApiResponse(description="A budget cannot hold the job's worst case."),
            404: OpenApiResponse(description="No such endpoint in your tenant."),
            503: OpenApiResponse(description="The function could not be spawned."),
        },
    )
    def post(self, request: Request, endpoint: str) -> Response:
        incoming = SpawnRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        tenant = _tenant(request)
        found = services.get_endpoint(tenant, endpoint)
        key = data.get("idempotency_key")
        job = services.spawn_job(
            found,
            data["input"],
            idempotency_key=f"{API_KEY_PREFIX}{tenant.pk}:{found.pk}:{key}" if key else "",
            api_key_id=request.auth.pk if isinstance(request.auth, APIKey) else None,
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class JobView(APIView):
    """A job of the tenant; a key must be scoped to the job's endpoint."""

    def required_resource(self, request: Request) -> str | None:
        tenant = request_tenant(request)
        if tenant is None:
            return None
        slug = (
            ModalJob.objects.for_tenant(tenant)
            .filter(pk=self.kwargs["job"])
            .values_list("endpoint__slug", flat=True)
            .first()
        )
        return f"modal:{slug}" if slug else None  # an unknown job is a 404 below

    def job(self, request: Request) -> ModalJob:
        return services.get_job(_tenant(request), self.kwargs["job"])


class JobDetailView(JobView):
    @extend_schema(operation_id="modal_job", responses={200: JobSerializer})
    def get(self, request: Request, job: uuid.UUID) -> Response:
        return Response(JobSerializer(self.job(request)).data)


class JobCancelView(JobView):
    @extend_schema(
        operation_id="modal_job_cancel",
        request=None,
        responses={
            200: JobSerializer,
            409: OpenApiResponse(description="The job has ended already."),
        },
    )
    def post(self, request: Request, job: uuid.UUID) -> Response:
        cancelled = services.cancel_job(self.job(request), actor=actor_for_request(request))
        return Response(JobSerializer(cancelled).data)


class JobLogsView(JobView):
    @extend_schema(operation_id="modal_job_logs", responses={200: JobLogsSerializer})
    def get(self, request: Request, job: uuid.UUID) -> Response:
        return Response(self.job(request).timeline())


class CallbackView(APIView):
    """Where a function reports its result (:func:`automate_modal.remote.report`)."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="modal_callback",
        request=CallbackSerializer,
        responses={
            200: CallbackAcceptedSerializer,
            403: OpenApiResponse(description="Forged, expired or already used URL."),
        },
    )
    def post(self, request: Request, job: uuid.UUID) -> Response:
        params = request.query_params
        attempt = verify(
            job, params.get("attempt", ""), params.get("exp", ""), params.get("sig", "")
        )
        incoming = CallbackSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        outcome: Done | Failed = (
            Failed(data.get("kind", "permanent"), data["error"])
            if "error" in data
            else Done(data.get("output"))
        )
        if not services.complete_job(job, attempt=attempt, outcome=outcome):
            raise CallbackRefused("This callback URL has been used already.")
        return Response({"accepted": True})
