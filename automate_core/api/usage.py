"""The usage of metered AI calls as the API shows it: tokens, and what they were charged."""

from __future__ import annotations

from rest_framework import serializers

from automate_core.governance.models import DECIMAL_PLACES, MAX_DIGITS


class UsageSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField(help_text="Includes cached_tokens.")
    output_tokens = serializers.IntegerField()
    cached_tokens = serializers.IntegerField()
    cost = serializers.DecimalField(
        max_digits=MAX_DIGITS, decimal_places=DECIMAL_PLACES, help_text="USD, charged."
    )
