"""Who may call an endpoint: a tenant's API key (within its scopes) or a tenant member."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from automate_core.tenancy.models import APIKey, Tenant, TenantMembership

TENANT_HEADER = "X-Tenant"


def request_tenant(request: Request) -> Tenant | None:
    """The tenant the request acts for, resolved once per request.

    An API key acts for its own tenant. A logged-in user acts for the tenant named in the
    ``X-Tenant`` header (slug) if they are a member, else for their only tenant.
    """
    if hasattr(request, "_automate_tenant"):
        return request._automate_tenant
    tenant: Tenant | None = None
    if isinstance(request.auth, APIKey):
        tenant = request.auth.tenant
    elif request.user and request.user.is_authenticated:
        memberships = TenantMembership.objects.filter(user=request.user, tenant__is_active=True)
        wanted = request.headers.get(TENANT_HEADER)
        if wanted:
            memberships = memberships.filter(tenant__slug=wanted)
        found = list(memberships.select_related("tenant")[:2])
        tenant = found[0].tenant if len(found) == 1 else None
    request._automate_tenant = tenant  # type: ignore[attr-defined]
    return tenant


class IsTenantMember(permissions.BasePermission):
    """The request resolves to a tenant; for API keys, ``view.required_resource`` is in scope."""

    message = "This endpoint needs an API key or a tenant membership."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request_tenant(request) is None:
            return False
        resource = getattr(view, "required_resource", None)
        if callable(resource):
            resource = resource(request)
        if resource and isinstance(request.auth, APIKey) and not request.auth.allows(resource):
            self.message = f"This API key is not scoped for {resource}."
            return False
        return True
