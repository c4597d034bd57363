"""Abstract models every app builds on.

Each base carries one invariant (timestamps, tenancy, soft deletion, guarded status moves, ...)
so concrete models compose what they need. Managers never return rows across tenants unless
asked to: tenant-owned querysets go through ``for_tenant()``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, cast

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.text import slugify

if TYPE_CHECKING:
    from automate_core.tenancy.models import Tenant


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class UUIDModel(models.Model):
    """A random UUID primary key: ids can be shown to users without leaking counts."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)

    class Meta:
        abstract = True


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant | uuid.UUID | str | None) -> TenantQuerySet:
        """Rows of one tenant. ``None`` is refused: an unscoped query must be written on purpose."""
        if tenant is None:
            raise ValueError("for_tenant() needs a tenant; refusing to return every tenant's rows")
        tenant_id = getattr(tenant, "pk", tenant)
        return self.filter(tenant_id=tenant_id)


TenantManager = models.Manager.from_queryset(TenantQuerySet)


class TenantScopedModel(models.Model):
    tenant = models.ForeignKey(
        "automate_core.Tenant", on_delete=models.CASCADE, related_name="+", db_index=True
    )

    objects = TenantManager()

    class Meta:
        abstract = True


class AuditableModel(models.Model):
    """Who created and who last changed the row (None for system actions)."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        abstract = True

    def stamp(self, user: Any) -> None:
        """Record ``user`` as the author of this change (and creator if the row is new)."""
        user = user if getattr(user, "is_authenticated", False) else None
        if self._state.adding and self.created_by_id is None:
            self.created_by = user
        self.updated_by = user


class SoftDeleteQuerySet(TenantQuerySet):
    def delete(self) -> tuple[int, dict[str, int]]:
        count = self.update(deleted_at=timezone.now())
        return count, {self.model._meta.label: count}

    def hard_delete(self) -> tuple[int, dict[str, int]]:
        return super().delete()

    def restore(self) -> int:
        return self.update(deleted_at=None)


class SoftDeleteManager(models.Manager.from_queryset(SoftDeleteQuerySet)):  # type: ignore[misc]
    """Hides deleted rows. Also offers ``for_tenant()`` for models that are tenant-scoped too."""

    def get_queryset(self) -> SoftDeleteQuerySet:
        return super().get_queryset().filter(deleted_at__isnull=True)


class SoftDeleteModel(models.Model):
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True, editable=False)

    objects = SoftDeleteManager()
    all_objects = models.Manager.from_queryset(SoftDeleteQuerySet)()

    class Meta:
        abstract = True

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def delete(self, using: Any = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        self.deleted_at = timezone.now()
        self.save(update_fields=["deleted_at"])
        return 1, {self._meta.label: 1}

    def restore(self) -> None:
        self.deleted_at = None
        self.save(update_fields=["deleted_at"])

    def hard_delete(self) -> tuple[int, dict[str, int]]:
        return super().delete()


class SluggedModel(models.Model):
    """A name and a URL-safe slug derived from it, made unique (within the tenant) on save."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, blank=True, db_index=True)

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.slug:
            self.slug = self._unique_slug(slugify(self.name)[:90] or "item")
        super().save(*args, **kwargs)

    def _unique_slug(self, base: str) -> str:
        siblings = type(self)._base_manager.exclude(pk=self.pk)
        if hasattr(self, "tenant_id"):
            siblings = siblings.filter(**{"tenant_id": self.tenant_id})
        taken = set(siblings.filter(slug__startswith=base).values_list("slug", flat=True))
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        return candidate


class InvalidTransition(Exception):
    """The status move is not allowed from the row's current status."""

    def __init__(self, model: str, current: str, target: str, allowed: Iterable[str]) -> None:
        self.current, self.target = current, target
        options = ", ".join(sorted(allowed)) or "none (final status)"
        super().__init__(f"{model} cannot move from {current!r} to {target!r}; allowed: {options}")


class StatusQuerySet(models.QuerySet):
    def by_status(self, *statuses: str) -> StatusQuerySet:
        return self.filter(status__in=statuses)

    def active(self) -> StatusQuerySet:
        model = cast("type[StatusModel]", self.model)
        return self.filter(status__in=model.ACTIVE_STATUSES)


class StatusModel(models.Model):
    """A status that only moves along ``TRANSITIONS``.

    Subclasses declare ``INITIAL_STATUS``, ``TRANSITIONS = {status: {next, ...}}`` and
    ``ACTIVE_STATUSES``. :meth:`transition_to` is a compare-and-set in the database, so two
    processes racing to move the same row cannot both succeed.
    """

    INITIAL_STATUS: ClassVar[str] = "draft"
    TRANSITIONS: ClassVar[dict[str, set[str]]] = {}
    ACTIVE_STATUSES: ClassVar[set[str]] = set()

    status = models.CharField(max_length=32, db_index=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = models.Manager.from_queryset(StatusQuerySet)()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.status:
            self.status = self.INITIAL_STATUS
        super().save(*args, **kwargs)

    def can_transition_to(self, target: str) -> bool:
        return target in self.TRANSITIONS.get(self.status, set())

    def transition_to(self, target: str) -> None:
        current = self.status
        allowed = self.TRANSITIONS.get(current, set())
        if target not in allowed:
            raise InvalidTransition(type(self).__name__, current, target, allowed)
        now = timezone.now()
        moved = (
            type(self)
            ._base_manager.filter(pk=self.pk, status=current)
            .update(status=target, status_changed_at=now)
        )
        if not moved:
            fresh = type(self)._base_manager.values_list("status", flat=True).get(pk=self.pk)
            raise InvalidTransition(
                type(self).__name__, fresh, target, self.TRANSITIONS.get(fresh, set())
            )
        self.status, self.status_changed_at = target, now


class MetadataModel(models.Model):
    """Free-form JSON metadata with dotted-path access (``get_meta("billing.plan")``)."""

    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True

    def get_meta(self, path: str, default: Any = None) -> Any:
        node: Any = self.metadata
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def set_meta(self, path: str, value: Any) -> None:
        """Set a value, creating intermediate objects; does not save."""
        *parents, leaf = path.split(".")
        node = self.metadata
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value


class OrderedModel(models.Model):
    """A position within a scope (``ORDER_SCOPE`` field names, e.g. ``("tenant",)``).

    New rows go last; moves renumber neighbours inside one transaction so positions stay dense.
    """

    ORDER_SCOPE: ClassVar[tuple[str, ...]] = ()

    position = models.PositiveIntegerField(default=0, db_index=True, editable=False)

    class Meta:
        abstract = True
        ordering = ["position"]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding and not self.position:
            last = self._siblings().aggregate(m=Max("position"))["m"]
            self.position = 0 if last is None else last + 1
        super().save(*args, **kwargs)

    def _siblings(self) -> models.QuerySet:
        scope = {}
        for name in self.ORDER_SCOPE:
            attname = cast(models.Field, self._meta.get_field(name)).attname  # tenant -> tenant_id
            scope[attname] = getattr(self, attname)
        return type(self)._base_manager.filter(**scope)

    def move_to(self, position: int) -> None:
        with transaction.atomic():
            siblings = self._siblings().select_for_update()
            count = siblings.count()
            target = max(0, min(position, count - 1))
            current = type(self)._base_manager.values_list("position", flat=True).get(pk=self.pk)
            if target == current:
                self.position = current
                return
            others = siblings.exclude(pk=self.pk)
            if target < current:
                others.filter(position__gte=target, position__lt=current).update(
                    position=F("position") + 1
                )
            else:
                others.filter(position__gt=current, position__lte=target).update(
                    position=F("position") - 1
                )
            type(self)._base_manager.filter(pk=self.pk).update(position=target)
            self.position = target

    def move_up(self) -> None:
        if self.position > 0:
            self.move_to(self.position - 1)

    def move_down(self) -> None:
        self.move_to(self.position + 1)
