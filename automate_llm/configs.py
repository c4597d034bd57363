"""Rules on provider and model-config rows that span more than one row, shared by the admin
forms and the management API: one default per tenant, fallbacks that exist."""

from __future__ import annotations

from typing import Any

from automate_core.tenancy.models import Tenant
from automate_llm.models import LLMModelConfig, LLMProvider


def other_default(
    model: type[LLMProvider] | type[LLMModelConfig], tenant_id: Any, pk: Any
) -> LLMProvider | LLMModelConfig | None:
    """The tenant's current default row of ``model``, other than row ``pk``."""
    rows = model.objects.filter(tenant_id=tenant_id, is_default=True).exclude(pk=pk)
    found: LLMProvider | LLMModelConfig | None = rows.first()
    return found


def unknown_fallbacks(tenant: Tenant, fallbacks: list[str]) -> list[str]:
    """The slugs of ``fallbacks`` that name no model config of ``tenant``, in order."""
    known = set(
        LLMModelConfig.objects.for_tenant(tenant)
        .filter(slug__in=fallbacks)
        .values_list("slug", flat=True)
    )
    return [slug for slug in fallbacks if slug not in known]
