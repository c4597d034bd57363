"""Request and response shapes of the Modal API (also what the OpenAPI schema shows)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from automate_modal.backends.base import FAILURE_KINDS
from automate_modal.models import ModalArtifact, ModalEndpoint, ModalJob


class SpawnRequestSerializer(serializers.Serializer):
    input = serializers.JSONField(help_text="What the function is called with (JSON).")
    idempotency_key = serializers.CharField(
        required=False,
        max_length=200,
        help_text="Send the same key again to get the same job instead of a second spawn.",
    )


class AttemptSerializer(serializers.Serializer):
    n = serializers.IntegerField()
    gpu = serializers.CharField()
    function_call_id = serializers.CharField()
    outcome = serializers.CharField(allow_null=True)
    message = serializers.CharField()
    started = serializers.DateTimeField(allow_null=True)
    ended = serializers.DateTimeField(allow_null=True)
    seconds = serializers.FloatField()
    cost = serializers.DecimalField(max_digits=18, decimal_places=6)


class ArtifactSerializer(serializers.ModelSerializer):
    url = serializers.CharField(source="location", read_only=True)

    class Meta:
        model = ModalArtifact
        fields = ["id", "name", "content_type", "size", "url", "created_at"]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    endpoint: serializers.SlugRelatedField[ModalEndpoint] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    attempts = AttemptSerializer(many=True, read_only=True)
    artifacts = ArtifactSerializer(many=True, read_only=True)

    class Meta:
        model = ModalJob
        fields = [
            "id",
            "endpoint",
            "status",
            "input",
            "output",
            "error",
            "error_kind",
            "gpu",
            "function_call_id",
            "attempts",
            "artifacts",
            "created_at",
            "started_at",
            "ended_at",
            "gpu_seconds",
            "cost",
            "pricing_version",
            "trace_id",
        ]
        read_only_fields = fields


class JobLogsSerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    attempts = AttemptSerializer(many=True)
    error = serializers.CharField()
    gpu_seconds = serializers.FloatField()
    cost = serializers.DecimalField(max_digits=18, decimal_places=6)


class CallbackSerializer(serializers.Serializer):
    """What :func:`automate_modal.remote.report` posts: an output, or an error and its kind."""

    output = serializers.JSONField(required=False, allow_null=True)
    error = serializers.CharField(required=False, allow_blank=False, max_length=8000)
    kind = serializers.ChoiceField(choices=FAILURE_KINDS, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "error" in attrs and attrs.get("output") is not None:
            raise serializers.ValidationError("send an output or an error, not both")
        return attrs


class CallbackAcceptedSerializer(serializers.Serializer):
    accepted = serializers.BooleanField()
