"""The shapes of the widget endpoints, for the OpenAPI schema (the services check the values;
choice fields are plain strings so their enums do not clash with other apps' in the schema)."""

from __future__ import annotations

from rest_framework import serializers


class WidgetConfigSerializer(serializers.Serializer):
    embed = serializers.CharField(help_text="The publishable key.")
    name = serializers.CharField()
    identity_mode = serializers.CharField(help_text="anonymous or signed.")
    target = serializers.CharField(help_text="What answers: rag or datachat.")
    theme = serializers.JSONField()


class WidgetConversationStartSerializer(serializers.Serializer):
    end_user_token = serializers.CharField(
        required=False, help_text="An end-user token (required by signed embeds)."
    )


class WidgetConversationSerializer(serializers.Serializer):
    conversation = serializers.UUIDField()
    token = serializers.CharField(help_text="The conversation token: send it as Bearer.")
    expires_in = serializers.IntegerField(help_text="Seconds.")
    signed = serializers.BooleanField()


class WidgetQuestionSerializer(serializers.Serializer):
    text = serializers.CharField()


class WidgetMessageSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    role = serializers.CharField(help_text="user or assistant.")
    text = serializers.CharField()
    status = serializers.CharField(help_text="complete, stopped or failed.")
    citations = serializers.JSONField()
    table = serializers.JSONField(
        allow_null=True, help_text="A data-chat answer's columns, rows, row_count, truncated."
    )
    chart = serializers.JSONField(
        allow_null=True, help_text='A data-chat answer\'s chart: {"image": "data:image/svg+xml…"}.'
    )
    rating = serializers.CharField(help_text="up, down or empty.")
    created_at = serializers.DateTimeField()


class WidgetHistorySerializer(serializers.Serializer):
    messages = WidgetMessageSerializer(many=True)


class WidgetFeedbackSerializer(serializers.Serializer):
    rating = serializers.CharField(help_text="up or down.")
    comment = serializers.CharField(required=False, allow_blank=True)


class WidgetTokenRequestSerializer(serializers.Serializer):
    end_user_id = serializers.CharField()
    claims = serializers.DictField(required=False)
    ttl_seconds = serializers.IntegerField(required=False, help_text="At most 3600.")


class WidgetTokenSerializer(serializers.Serializer):
    token = serializers.CharField()
