"""Models of the core app; each lives in the subpackage that owns it."""

from automate_core.tenancy.models import APIKey, Tenant, TenantMembership

__all__ = ["APIKey", "Tenant", "TenantMembership"]
