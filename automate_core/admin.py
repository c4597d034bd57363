from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from automate_core.tenancy.models import APIKey, Tenant, TenantMembership


class MembershipInline(admin.TabularInline):
    model = TenantMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(APIKey)
class APIKeyAdmin(admin.ModelAdmin):
    """The raw key is shown once, in the message after creation; only its hash is kept."""

    list_display = ["name", "tenant", "prefix", "scopes", "is_active", "last_used_at", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "last_used_at", "revoked_at", "created_at", "created_by"]
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: APIKey, form: Any, change: bool) -> None:
        if not change:
            raw = obj.assign_secret()
            if request.user.is_authenticated:
                obj.created_by = request.user
            super().save_model(request, obj, form, change)
            messages.warning(request, f"New API key (copy it now, it is not shown again): {raw}")
            return
        super().save_model(request, obj, form, change)

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for key in queryset:
            key.revoke()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: keys stay for the audit trail
