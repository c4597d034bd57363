"""``/api/v1/webhook-sources``: where signed webhooks come from (``/api/v1/webhooks/<source>``).

A source names its signing secret (``secret_ref``), never holds it: the value lives in a
secrets backend (the stored secrets of the governance app, or the environment). A secret value
given where the name belongs is refused (``credential_in_clear``).

API keys need ``webhook-sources:read`` to list and read, ``webhook-sources:write`` to change.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from automate_core.api.config_views import (
    DETAIL_ACTIONS,
    ConfigSerializer,
    ConfigViewSet,
    path_parameter,
    with_parameters,
)
from automate_core.events.models import WebhookSource
from automate_core.governance.credentials import secret_name


class WebhookSourceSerializer(ConfigSerializer):
    fixed_after_create = ("source",)
    secret_ref = serializers.JSONField(
        help_text='The signing secret\'s name: "NAME", "$secret:NAME" or {"$secret": "NAME"}.'
    )
    url = serializers.SerializerMethodField(help_text="Where the sender posts its webhooks.")

    class Meta:
        model = WebhookSource
        fields = [
            "id", "source", "secret_ref", "event_type_prefix", "is_enabled", "url",
            "created_at", "updated_at",
        ]  # fmt: skip
        # Taken names are a 409 from the database, as for every config row.
        extra_kwargs: dict[str, dict[str, Any]] = {"source": {"validators": []}}

    def validate_secret_ref(self, value: Any) -> str:
        return secret_name(value, "secret_ref")

    def to_representation(self, instance: WebhookSource) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["secret_ref"] = instance.secret_ref  # the name as stored
        return data

    def get_url(self, instance: WebhookSource) -> str:
        return reverse("webhook", kwargs={"source": instance.source})


@with_parameters(DETAIL_ACTIONS, path_parameter("key", "The source's id or name."))
class WebhookSourceViewSet(ConfigViewSet):
    """The tenant's webhook sources. Source names are unique across the installation (they
    are URLs): a name taken by any tenant is a 409."""

    model = WebhookSource
    serializer_class = WebhookSourceSerializer
    resource = "webhook-sources"
    audit_kind = "webhook_source"
    slug_field = "source"
    noun = "webhook source"
