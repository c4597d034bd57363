"""The caller's tenant, and its API keys (listed, issued once, revoked)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from automate_core.api.permissions import request_tenant
from automate_core.governance import audit
from automate_core.tenancy.models import APIKey, Tenant


class TenantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tenant
        fields = ["id", "name", "slug", "is_active", "created_at"]


class APIKeySerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = APIKey
        fields = [
            "id", "name", "prefix", "scopes", "is_active",
            "created_at", "last_used_at", "expires_at", "revoked_at",
        ]  # fmt: skip
        read_only_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]

    def validate_scopes(self, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
            raise serializers.ValidationError("A list of resource patterns like 'rag:support'.")
        return value


class IssuedAPIKeySerializer(APIKeySerializer):
    key = serializers.CharField(
        read_only=True, help_text="The secret. Shown only in this response."
    )

    class Meta(APIKeySerializer.Meta):
        fields = [*APIKeySerializer.Meta.fields, "key"]


class CurrentTenantView(APIView):
    @extend_schema(responses=TenantSerializer)
    def get(self, request: Request) -> Response:
        return Response(TenantSerializer(request_tenant(request)).data)


class APIKeyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """API keys of the caller's tenant. DELETE revokes: the row stays for the audit trail."""

    serializer_class = APIKeySerializer
    required_resource = "api_keys:manage"

    def get_queryset(self) -> QuerySet[APIKey]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no real request
            return APIKey.objects.none()
        return APIKey.objects.for_tenant(request_tenant(self.request))

    @extend_schema(request=APIKeySerializer, responses={201: IssuedAPIKeySerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = APIKeySerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        user = request.user if request.user.is_authenticated else None
        with transaction.atomic():
            key, raw = APIKey.issue(
                tenant=request_tenant(request),  # type: ignore[arg-type]
                name=incoming.validated_data["name"],
                scopes=incoming.validated_data.get("scopes", []),
                expires_at=incoming.validated_data.get("expires_at"),
                created_by=user,
            )
            audit.record(
                "api_key.create",
                actor=audit.actor_for_request(request),
                tenant=key.tenant,
                target=f"api_key:{key.prefix}",
                data={"name": key.name, "scopes": key.scopes},
            )
        key.key = raw  # type: ignore[attr-defined]
        return Response(IssuedAPIKeySerializer(key).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: APIKey) -> None:
        if instance.revoked_at is not None:
            return
        with transaction.atomic():
            instance.revoke()
            audit.record(
                "api_key.revoke",
                actor=audit.actor_for_request(self.request),
                tenant=instance.tenant,
                target=f"api_key:{instance.prefix}",
            )
