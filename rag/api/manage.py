"""``/api/v1/rag/config/``: the tenant's knowledge sources, RAG endpoints and embedding models,
with the admin's rules (each model's ``clean()``) and audit rows (``rag.source.*``,
``rag.endpoint.*``, ``rag.embedding_model.*``).

Configs hold SecretRefs, never credentials (``credential_in_clear`` otherwise); a source's
``credentials_ref`` is the name of a secret. Documents, syncs, queries and answers stay on the
routes beside this one (``/api/v1/rag/sources/<slug>/...``, ``/api/v1/rag/<endpoint>/...``).

API keys need ``rag-config:read`` to list and read, ``rag-config:write`` to change and to queue
a re-index. (Not ``rag:*`` or ``rag-sources:*``: those scopes name endpoints and sources, and
a query key must never gain the power to reconfigure them.)
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from automate_core.api.config_views import (
    DETAIL_ACTIONS,
    ConfigSerializer,
    ConfigViewSet,
    TenantSlugRelatedField,
    path_parameter,
    with_parameters,
)
from automate_core.governance import audit
from automate_core.governance.credentials import check_config, secret_name
from automate_core.governance.redaction import redact
from rag import services
from rag.models import EmbeddingModel, KnowledgeSource, RAGEndpoint

RESOURCE = "rag-config"


class _SlugSerializer(ConfigSerializer):
    slug = serializers.SlugField(
        max_length=100, required=False, help_text="Derived from the name when left out."
    )

    def validate_config(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("The config is a JSON object.")
        check_config(value)
        return value

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        if "config" in data:
            data["config"] = redact(data["config"])
        return data


class _RAGConfigViewSet(ConfigViewSet):
    resource = RESOURCE

    def audit_target(self, instance: Any) -> str:
        return f"{self.audit_kind}:{instance.slug}"  # as the admin and the services write it


# -- embedding models ----------------------------------------------------------------------------


class EmbeddingModelSerializer(_SlugSerializer):
    config = serializers.JSONField(required=False)

    class Meta:
        model = EmbeddingModel
        fields = [
            "id", "name", "slug", "provider", "model_id", "dimensions", "config",
            "created_at", "updated_at",
        ]  # fmt: skip


@with_parameters(DETAIL_ACTIONS, path_parameter("key", "The embedding model's id or slug."))
class EmbeddingModelViewSet(_RAGConfigViewSet):
    """The tenant's embedding models. One used by an endpoint cannot be deleted (409)."""

    model = EmbeddingModel
    serializer_class = EmbeddingModelSerializer
    audit_kind = "rag.embedding_model"


# -- knowledge sources ---------------------------------------------------------------------------


class KnowledgeSourceSerializer(_SlugSerializer):
    config = serializers.JSONField(required=False)
    metadata = serializers.JSONField(required=False, help_text="Added to every chunk.")
    credentials_ref = serializers.JSONField(
        required=False,
        help_text="Name of a secret sent as the Authorization header when fetching: "
        '"NAME", "$secret:NAME" or {"$secret": "NAME"}; "" for none.',
    )

    class Meta:
        model = KnowledgeSource
        fields = [
            "id", "name", "slug", "type", "config", "credentials_ref", "metadata",
            "sync_status", "sync_progress", "last_synced_at", "last_error",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["sync_status", "sync_progress", "last_synced_at", "last_error"]

    def validate_credentials_ref(self, value: Any) -> str:
        return "" if value in (None, "") else secret_name(value, "credentials_ref")

    def validate_metadata(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("The metadata is a JSON object.")
        return value

    def to_representation(self, instance: KnowledgeSource) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["credentials_ref"] = instance.credentials_ref
        return data


@with_parameters(DETAIL_ACTIONS, path_parameter("key", "The source's id or slug."))
class KnowledgeSourceViewSet(_RAGConfigViewSet):
    """The tenant's knowledge sources. Sync one and push documents to it on
    ``/api/v1/rag/sources/<slug>/...``. DELETE removes its documents."""

    model = KnowledgeSource
    serializer_class = KnowledgeSourceSerializer
    audit_kind = "rag.source"
    noun = "source"


# -- endpoints -----------------------------------------------------------------------------------


class RAGEndpointSerializer(_SlugSerializer):
    sources = TenantSlugRelatedField(
        slug_field="slug",
        many=True,
        required=False,
        queryset=KnowledgeSource.objects.all(),
        help_text="Slugs of the sources the endpoint indexes.",
    )
    embedding_model = TenantSlugRelatedField(
        slug_field="slug",
        queryset=EmbeddingModel.objects.all(),
        help_text="The embedding model's slug.",
    )
    retrieval_config = serializers.JSONField(required=False)
    access_policy = serializers.JSONField(
        required=False, help_text='{"forced_filters": {...}} applied to every query.'
    )
    live_version = serializers.SerializerMethodField(help_text="The number of the live index.")

    class Meta:
        model = RAGEndpoint
        fields = [
            "id", "name", "slug", "description", "sources", "embedding_model",
            "retrieval_config", "access_policy", "chunk_tokens", "chunk_overlap", "is_active",
            "live_version", "created_at", "updated_at",
        ]  # fmt: skip

    def get_live_version(self, instance: RAGEndpoint) -> int | None:
        return instance.live_version.number if instance.live_version else None


class ReindexAcceptedSerializer(serializers.Serializer):
    index_version = serializers.UUIDField()
    number = serializers.IntegerField()
    status = serializers.CharField()


@with_parameters((*DETAIL_ACTIONS, "reindex"), path_parameter("key", "The endpoint's id or slug."))
class RAGEndpointViewSet(_RAGConfigViewSet):
    """The tenant's RAG endpoints; API keys query them with the scope ``rag:<slug>``."""

    model = RAGEndpoint
    serializer_class = RAGEndpointSerializer
    audit_kind = "rag.endpoint"
    noun = "endpoint"

    def filter_rows(self, rows: QuerySet[Any]) -> QuerySet[Any]:
        return rows.select_related("embedding_model", "live_version").prefetch_related("sources")

    @extend_schema(request=None, responses={202: ReindexAcceptedSerializer})
    @action(detail=True, methods=["post"])
    def reindex(self, request: Request, key: str | None = None) -> Response:
        """Queue a build of a new index version beside the live one (it switches when built);
        refused while another build runs."""
        version = services.queue_reindex(self.get_object(), actor=audit.actor_for_request(request))
        body = {
            "index_version": str(version.pk),
            "number": version.number,
            "status": version.status,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)
