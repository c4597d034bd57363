"""``/api/v1/llm/providers`` and ``/api/v1/llm/models``: the tenant's LLM providers and model
configs, with the admin's rules.

A provider config holds SecretRefs (``{"api_key": {"$secret": "OPENAI_KEY"}}``), never values:
responses show the references (and ``secret_refs``, their names), and a config with a
credential in clear is refused (``credential_in_clear``). Changes are audited as
``llm_provider.*`` and ``llm_model.*``, like the admin's.

API keys need ``llm-config:read`` to list and read, ``llm-config:write`` to change. (Not
``llm:*``: keys scoped for chat must not gain the power to reconfigure providers.)
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from automate_core.api.config_views import (
    DETAIL_ACTIONS,
    ConfigSerializer,
    ConfigViewSet,
    TenantSlugRelatedField,
    path_parameter,
    with_parameters,
)
from automate_core.api.permissions import request_tenant
from automate_core.governance.credentials import check_config
from automate_core.governance.redaction import redact
from automate_core.governance.secrets import find_secret_refs
from automate_llm.configs import other_default, unknown_fallbacks
from automate_llm.models import LLMModelConfig, LLMProvider

RESOURCE = "llm-config"


class _DefaultPerTenantSerializer(ConfigSerializer):
    def validate_is_default(self, value: bool) -> bool:
        tenant = request_tenant(self.context["request"])
        if value and tenant is not None:
            pk = self.instance.pk if self.instance is not None else None
            other = other_default(self.Meta.model, tenant.pk, pk)
            if other is not None:
                raise serializers.ValidationError(
                    f"{other.slug} is already this tenant's default; unset it first."
                )
        return value


class LLMProviderSerializer(_DefaultPerTenantSerializer):
    slug = serializers.SlugField(
        max_length=100, required=False, help_text="Derived from the name when left out."
    )
    config = serializers.JSONField(
        required=False,
        help_text='Secrets as SecretRefs only, e.g. {"api_key": {"$secret": "OPENAI_KEY"}}.',
    )
    secret_refs = serializers.SerializerMethodField(help_text="Names of the secrets referenced.")

    class Meta:
        model = LLMProvider
        fields = [
            "id", "name", "slug", "provider_type", "config", "secret_refs", "is_default",
            "is_active", "created_at", "updated_at",
        ]  # fmt: skip

    def validate_config(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise serializers.ValidationError("The config is a JSON object.")
        check_config(value)
        return value

    def to_representation(self, instance: LLMProvider) -> dict[str, Any]:
        data = super().to_representation(instance)
        # A row written around this API with a raw key still never shows it.
        data["config"] = redact(instance.config or {})
        return data

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_secret_refs(self, instance: LLMProvider) -> list[str]:
        return find_secret_refs(instance.config or {})


@with_parameters(DETAIL_ACTIONS, path_parameter("key", "The provider's id or slug."))
class LLMProviderViewSet(ConfigViewSet):
    """The tenant's LLM providers. DELETE removes its model configs too."""

    model = LLMProvider
    serializer_class = LLMProviderSerializer
    resource = RESOURCE
    audit_kind = "llm_provider"
    noun = "LLM provider"


class LLMModelConfigSerializer(_DefaultPerTenantSerializer):
    slug = serializers.SlugField(
        max_length=100, required=False, help_text="Derived from the name when left out."
    )
    provider = TenantSlugRelatedField(
        slug_field="slug", queryset=LLMProvider.objects.all(), help_text="The provider's slug."
    )
    params = serializers.JSONField(required=False, help_text="Extra provider parameters.")
    fallbacks = serializers.ListField(
        child=serializers.SlugField(),
        required=False,
        help_text="Slugs of model configs tried in order when this one keeps failing.",
    )

    class Meta:
        model = LLMModelConfig
        fields = [
            "id", "name", "slug", "provider", "model_id", "max_tokens", "temperature",
            "params", "fallbacks", "is_default", "created_at", "updated_at",
        ]  # fmt: skip

    def validate_params(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("The params are a JSON object.")
        check_config(value, "params")
        return value

    def validate_fallbacks(self, value: list[str]) -> list[str]:
        tenant = request_tenant(self.context["request"])
        unknown = unknown_fallbacks(tenant, value) if tenant is not None else value
        if unknown:
            raise serializers.ValidationError(f"No model config with slug {', '.join(unknown)}.")
        return value


@with_parameters(DETAIL_ACTIONS, path_parameter("key", "The model config's id or slug."))
class LLMModelConfigViewSet(ConfigViewSet):
    """The tenant's model configs: a model on a provider with its defaults, named by slug in
    steps and calls. Filter with ``?provider=<slug>``."""

    model = LLMModelConfig
    serializer_class = LLMModelConfigSerializer
    resource = RESOURCE
    audit_kind = "llm_model"
    noun = "model config"

    def filter_rows(self, rows: Any) -> Any:
        rows = rows.select_related("provider")
        if provider := self.request.query_params.get("provider"):
            rows = rows.filter(provider__slug=provider)
        return rows
