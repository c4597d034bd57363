"""Tenant-owned configuration rows over the API (automations, triggers, webhook sources, LLM
providers, RAG endpoints...): one base for list, create, read, update and delete.

Guarantees, for every viewset built on :class:`ConfigViewSet`:

* rows are read and written in the caller's tenant only; a row of another tenant, by id or by
  slug, is the same 404 as a row that does not exist (an id is never echoed back);
* API keys need ``<resource>:read`` for reads and ``<resource>:write`` for changes;
* a row is validated as the admin validates it (``Model.full_clean()``, so the model's
  ``clean()``) before it is saved; a slug or name already taken is a 409, and the slug is fixed
  once the row exists (keys, URLs and runs refer to it);
* every create, change and delete appends a ``<audit_kind>.create|change|delete`` audit row in
  the same transaction as the write.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from django.db import IntegrityError, models, transaction
from django.db.models import ProtectedError, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request

from automate_core.api.permissions import request_tenant
from automate_core.errors import ConflictError, NotFoundError
from automate_core.governance import audit
from automate_core.tenancy.models import Tenant

DETAIL_ACTIONS = ("retrieve", "update", "partial_update", "destroy")


def path_parameter(name: str, description: str, kind: Any = OpenApiTypes.STR) -> OpenApiParameter:
    return OpenApiParameter(name, kind, OpenApiParameter.PATH, description=description)


def with_parameters(
    actions: Iterable[str], *parameters: OpenApiParameter
) -> Callable[[type], type]:
    """Declares path parameters the schema cannot derive from a model field (``key`` is an id
    or a slug) on the named actions."""
    return extend_schema_view(
        **{name: extend_schema(parameters=list(parameters)) for name in actions}
    )


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def find_row(
    rows: QuerySet[Any], key: str, *, slug_field: str | None = "slug", noun: str = ""
) -> Any:
    """The row of ``rows`` with id or slug ``key``, else a NotFoundError that never echoes an
    id (the answer is the same for another tenant's id as for one that does not exist)."""
    noun = noun or str(rows.model._meta.verbose_name)
    if is_uuid(key):
        found = rows.filter(pk=key).first()
        if found is None:
            raise NotFoundError(f"No {noun} with this id")
        return found
    found = rows.filter(**{slug_field: key}).first() if slug_field else None
    if found is None:
        raise NotFoundError(f"No {noun} {key!r}")
    return found


class ConfigSerializer(serializers.ModelSerializer):
    """Saves through ``full_clean()`` (the model's own rules, as in the admin) and turns a
    unique slug or name already taken into a 409."""

    fixed_after_create: ClassVar[tuple[str, ...]] = ("slug",)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None:
            for name in self.fixed_after_create:
                if name in attrs and attrs[name] != getattr(self.instance, name):
                    raise serializers.ValidationError(
                        {name: "Cannot change once created: API keys, URLs and runs refer to it."}
                    )
        return attrs

    @property
    def model(self) -> type[models.Model]:
        model: type[models.Model] = self.Meta.model
        return model

    def create(self, validated_data: dict[str, Any]) -> Any:
        many = self._pop_many(validated_data)
        return self._store(self.model(**validated_data), many)

    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
        many = self._pop_many(validated_data)
        for name, value in validated_data.items():
            setattr(instance, name, value)
        return self._store(instance, many)

    def _pop_many(self, data: dict[str, Any]) -> dict[str, Any]:
        names = [f.name for f in self.model._meta.many_to_many]
        return {name: data.pop(name) for name in names if name in data}

    def _store(self, instance: models.Model, many: dict[str, Any]) -> Any:
        # Uniqueness is left to the database: a race then ends the same way (409).
        instance.full_clean(validate_unique=False, validate_constraints=False)
        try:
            with transaction.atomic():
                instance.save()
                for name, rows in many.items():
                    getattr(instance, name).set(rows)
        except IntegrityError as exc:
            raise ConflictError(
                f"A {instance._meta.verbose_name} with this name or slug already exists.",
                details={"constraint": str(exc).splitlines()[0][:200]},
            ) from None
        return instance


class ConfigViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Set ``model``, ``serializer_class``, ``resource`` (the key scope's prefix) and
    ``audit_kind``; override :meth:`filter_rows` for ``?`` filters."""

    model: ClassVar[type[models.Model]]
    resource: ClassVar[str]
    audit_kind: ClassVar[str]
    #: The field a row is also addressed by, besides its id (None: by id only).
    slug_field: ClassVar[str | None] = "slug"
    noun: ClassVar[str] = ""
    #: POST actions that only read (a validation, a preview) and need the read scope.
    read_actions: ClassVar[tuple[str, ...]] = ()
    #: Actions that need a scope of their own, e.g. ``{"publish": "automations:publish"}``.
    action_resources: ClassVar[dict[str, str]] = {}

    lookup_url_kwarg = "key"
    lookup_value_regex = "[^/]+"
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def required_resource(self, request: Request) -> str:
        action = getattr(self, "action", None) or ""
        if action in self.action_resources:
            return self.action_resources[action]
        reading = request.method in SAFE_METHODS or action in self.read_actions
        return f"{self.resource}:{'read' if reading else 'write'}"

    @property
    def tenant(self) -> Tenant:
        tenant = request_tenant(self.request)
        assert tenant is not None  # IsTenantMember let the request in
        return tenant

    def get_queryset(self) -> QuerySet[Any]:
        if getattr(self, "swagger_fake_view", False):
            return self.model._default_manager.none()
        return self.filter_rows(self.model._default_manager.for_tenant(self.tenant))  # type: ignore[attr-defined]

    def filter_rows(self, rows: QuerySet[Any]) -> QuerySet[Any]:
        return rows

    def find(self, key: str) -> Any:
        """The caller's row with id or slug ``key``; another tenant's is simply not found."""
        return find_row(self.get_queryset(), key, slug_field=self.slug_field, noun=self.noun)

    def get_object(self) -> Any:
        found = self.find(self.kwargs[self.lookup_url_kwarg])
        self.check_object_permissions(self.request, found)
        return found

    def audit_target(self, instance: Any) -> str:
        return f"{self.audit_kind}:{instance.pk}"

    def audit(self, action: str, instance: Any, data: dict[str, Any] | None = None) -> None:
        audit.record(
            f"{self.audit_kind}.{action}",
            actor=audit.actor_for_request(self.request),
            tenant=self.tenant,
            target=self.audit_target(instance),
            data=data if data is not None else {},
        )

    def perform_create(self, serializer: serializers.BaseSerializer) -> None:
        with transaction.atomic():
            instance = serializer.save(tenant=self.tenant)
            self.audit("create", instance, {"after": self.get_serializer(instance).data})

    def perform_update(self, serializer: serializers.BaseSerializer) -> None:
        changed = sorted(serializer.validated_data)
        with transaction.atomic():
            instance = serializer.save()
            after = self.get_serializer(instance).data
            self.audit("change", instance, {"changed": changed, "after": after})

    def perform_destroy(self, instance: Any) -> None:
        before = self.get_serializer(instance).data
        try:
            with transaction.atomic():
                self.audit("delete", instance, {"before": before})
                instance.delete()
        except ProtectedError as exc:
            raise ConflictError(
                f"This {instance._meta.verbose_name} is still used and cannot be deleted.",
                details={
                    "used_by": sorted({str(o._meta.verbose_name) for o in exc.protected_objects})
                },
            ) from None


class TenantSlugRelatedField(serializers.SlugRelatedField):
    """A related row named by slug, looked up in the caller's tenant only."""

    def get_queryset(self) -> QuerySet[Any]:
        request = self.context.get("request")
        tenant = request_tenant(request) if request is not None else None
        given = super().get_queryset()
        assert given is not None  # every field of this class is given a queryset
        model: Any = given.model
        if tenant is None:
            return model._default_manager.none()
        return model._default_manager.for_tenant(tenant)
