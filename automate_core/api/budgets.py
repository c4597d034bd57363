"""Budgets of the caller's tenant: limits, what is spent and what is held by calls in flight.

Read-only here; limits change in the admin, where every change is written to the audit log.
"""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import mixins, serializers, viewsets

from automate_core.api.permissions import request_tenant
from automate_core.governance.models import Budget


class BudgetSerializer(serializers.ModelSerializer):
    class Meta:
        model = Budget
        fields = [
            "id", "scope_type", "scope_id", "period", "period_start",
            "limit_tokens", "limit_cost", "spent_tokens", "spent_cost",
            "reserved_tokens", "reserved_cost", "created_at", "updated_at",
        ]  # fmt: skip


class BudgetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Filter with ``?scope_type=`` and ``?scope_id=``."""

    serializer_class = BudgetSerializer
    required_resource = "budgets:read"

    def get_queryset(self) -> QuerySet[Budget]:
        if getattr(self, "swagger_fake_view", False):
            return Budget.objects.none()
        budgets = Budget.objects.for_tenant(request_tenant(self.request))
        params = self.request.query_params
        if scope_type := params.get("scope_type"):
            budgets = budgets.filter(scope_type=scope_type)
        if scope_id := params.get("scope_id"):
            budgets = budgets.filter(scope_id=scope_id)
        return budgets
