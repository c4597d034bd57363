"""Request and response shapes of ``/api/v1/datachat/`` (also the OpenAPI schema's)."""

from __future__ import annotations

from rest_framework import serializers

from automate_datachat.models import DataChatMessage, DataChatSession, DatasetExample


class AskRequestSerializer(serializers.Serializer):
    question = serializers.CharField(max_length=2000)
    session = serializers.UUIDField(
        required=False, allow_null=True, help_text="Continue this session; omit to start one."
    )
    end_user = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="Your end user's id."
    )
    stream = serializers.BooleanField(
        default=False, help_text="Answer as Server-Sent Events (also with Accept)."
    )


class ColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField(help_text="The Postgres type name.")


class ResultSerializer(serializers.Serializer):
    columns = ColumnSerializer(many=True)
    rows = serializers.ListField(child=serializers.ListField())
    row_count = serializers.IntegerField()
    truncated = serializers.BooleanField()
    sql = serializers.CharField(help_text="The SQL that ran: the guard's rewrite.")
    duration_ms = serializers.FloatField()


class AskUsageSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cached_tokens = serializers.IntegerField()
    cost = serializers.CharField()
    request_ids = serializers.ListField(child=serializers.UUIDField())


class DataChatAnswerSerializer(serializers.Serializer):
    session = serializers.UUIDField(allow_null=True)
    message = serializers.UUIDField(allow_null=True)
    question = serializers.CharField()
    explanation = serializers.CharField()
    sql = serializers.CharField()
    result = ResultSerializer(allow_null=True)
    chart = serializers.JSONField(allow_null=True, help_text="A Vega-Lite spec, rows inline.")
    repaired = serializers.BooleanField(help_text="The first SQL was refused and repaired.")
    usage = AskUsageSerializer()


class SQLRequestSerializer(serializers.Serializer):
    sql = serializers.CharField(max_length=20000)


class DataChatSessionSerializer(serializers.ModelSerializer):
    class Meta:
        model = DataChatSession
        fields = ["id", "dataset", "end_user", "context", "created_at", "expires_at"]
        read_only_fields = fields


class DataChatMessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = DataChatMessage
        fields = ["id", "role", "content", "sql", "data", "chart", "usage", "error", "created_at"]
        read_only_fields = fields


class ExampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetExample
        fields = ["id", "dataset", "question", "sql", "created_at", "updated_at"]
        read_only_fields = ["id", "dataset", "created_at", "updated_at"]
