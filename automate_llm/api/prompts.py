"""``/api/v1/llm/prompts``: prompts, their versions, publication, labels and a render preview.

A prompt is addressed by id or slug. Versions are addressed by number under their prompt;
drafts can be edited, published versions cannot. Every write is scoped to the caller's tenant
and publication and label moves are audited by the prompts service.

API keys need ``prompts:read`` to list, read and preview, and ``prompts:write`` to change.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from django.db.models import Max, Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

from automate_core.api.permissions import request_tenant
from automate_core.governance import audit
from automate_core.tenancy.models import Tenant
from automate_llm import prompts
from automate_llm.models import Prompt, PromptLabel, PromptVersion

PROMPT_PARAMETER = OpenApiParameter(
    "prompt", OpenApiTypes.STR, OpenApiParameter.PATH, description="The prompt's id or slug."
)
VERSION_PARAMETER = OpenApiParameter(
    "version", OpenApiTypes.INT, OpenApiParameter.PATH, description="The version number."
)


# -- serializers ---------------------------------------------------------------------------------


class PromptSerializer(serializers.ModelSerializer):
    slug = serializers.SlugField(
        max_length=100, required=False, help_text="Derived from the name when left out."
    )
    labels = serializers.SerializerMethodField(help_text="Label name -> version number.")
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = Prompt
        fields = [
            "id", "name", "slug", "description", "labels", "latest_version",
            "created_at", "updated_at",
        ]  # fmt: skip

    def get_labels(self, prompt: Prompt) -> dict[str, int]:
        return {label.name: label.version.version for label in prompt.labels.all()}

    def get_latest_version(self, prompt: Prompt) -> int | None:
        if hasattr(prompt, "latest"):  # annotated by the view's queryset
            latest: int | None = prompt.latest
            return latest
        found: int | None = prompt.versions.aggregate(m=Max("version"))["m"]
        return found

    def validate_slug(self, value: str) -> str:
        if self.instance is not None and value != self.instance.slug:
            raise serializers.ValidationError(
                "The slug cannot change: workflows refer to the prompt by it."
            )
        return value


class PromptVersionSerializer(serializers.ModelSerializer):
    prompt: serializers.SlugRelatedField[Prompt] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    variables = serializers.JSONField(
        required=False,
        help_text="A JSON schema (type object) of the variables, or a list of variable names.",
    )
    params = serializers.JSONField(required=False, help_text="Default call options.")
    is_published = serializers.BooleanField(read_only=True)
    labels = serializers.SerializerMethodField()

    class Meta:
        model = PromptVersion
        fields = [
            "id", "prompt", "version", "system_template", "user_template", "variables", "model",
            "params", "is_published", "published_at", "labels", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["version", "published_at"]

    def get_labels(self, version: PromptVersion) -> list[str]:
        return sorted(label.name for label in version.labels.all())


class PublishSerializer(serializers.Serializer):
    label = serializers.CharField(  # type: ignore[assignment]
        max_length=50, required=False, help_text="Also point this label at the version."
    )


class LabelMoveSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=50, help_text="e.g. production or canary.")
    version = serializers.IntegerField(
        min_value=1, allow_null=True, help_text="A published version; null removes the label."
    )


class RenderSerializer(serializers.Serializer):
    variables = serializers.DictField(default=dict)
    version = serializers.IntegerField(min_value=1, required=False)
    label = serializers.CharField(max_length=50, required=False)  # type: ignore[assignment]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "version" in attrs and "label" in attrs:
            raise serializers.ValidationError("Name a version or a label, not both.")
        return attrs


class MessageSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()


class RenderedPromptSerializer(serializers.Serializer):
    prompt = serializers.CharField()
    version = serializers.IntegerField()
    is_published = serializers.BooleanField()
    model = serializers.CharField()
    params = serializers.DictField()
    messages = MessageSerializer(many=True)


# -- views ---------------------------------------------------------------------------------------


class _PromptScopedViewSet(viewsets.GenericViewSet):
    """Read for safe methods and the render preview, write for the rest."""

    def required_resource(self, request: Request) -> str:
        reading = request.method in SAFE_METHODS or getattr(self, "action", None) == "render"
        return "prompts:read" if reading else "prompts:write"

    @property
    def tenant(self) -> Tenant:
        tenant = request_tenant(self.request)
        assert tenant is not None  # IsTenantMember let the request in
        return tenant

    def find_prompt(self, key: str) -> Prompt:
        """The caller's prompt with id or slug ``key``: another tenant's is simply not found."""
        rows = Prompt.objects.for_tenant(self.tenant)
        if _is_uuid(key):
            found = rows.filter(pk=key).first()
            if found is None:  # an id is not echoed: the answer is the same for any id
                raise prompts.PromptNotFound("No prompt with this id")
            return found
        found = rows.filter(slug=key).first()
        if found is None:
            raise prompts.PromptNotFound(f"No prompt {key!r}")
        return found


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@extend_schema_view(
    retrieve=extend_schema(parameters=[PROMPT_PARAMETER]),
    update=extend_schema(parameters=[PROMPT_PARAMETER]),
    partial_update=extend_schema(parameters=[PROMPT_PARAMETER]),
    destroy=extend_schema(parameters=[PROMPT_PARAMETER]),
)
class PromptViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
    _PromptScopedViewSet,
):
    """The tenant's prompts. DELETE removes every version and label (audited)."""

    serializer_class = PromptSerializer
    lookup_url_kwarg = "prompt"
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Prompt]:
        if getattr(self, "swagger_fake_view", False):
            return Prompt.objects.none()
        prompts_of_tenant = cast("QuerySet[Prompt]", Prompt.objects.for_tenant(self.tenant))
        return prompts_of_tenant.annotate(latest=Max("versions__version")).prefetch_related(
            Prefetch("labels", queryset=PromptLabel.objects.select_related("version"))
        )

    def get_object(self) -> Prompt:
        key = self.kwargs[self.lookup_url_kwarg]
        prompt = self.find_prompt(key)
        return self.get_queryset().get(pk=prompt.pk)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        incoming = self.get_serializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        created = prompts.create_prompt(
            self.tenant,
            name=data["name"],
            slug=data.get("slug", ""),
            description=data.get("description", ""),
        )
        prompt = self.get_queryset().get(pk=created.pk)
        return Response(self.get_serializer(prompt).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Prompt) -> None:
        prompts.delete_prompt(instance, actor=audit.actor_for_request(self.request))

    @extend_schema(
        request=LabelMoveSerializer, responses=PromptSerializer, parameters=[PROMPT_PARAMETER]
    )
    @action(detail=True, methods=["post"])
    def labels(self, request: Request, prompt: str | None = None) -> Response:
        """Point a label at a published version, or remove it with ``"version": null``."""
        found = self.get_object()
        incoming = LabelMoveSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        name, number = incoming.validated_data["name"], incoming.validated_data["version"]
        actor = audit.actor_for_request(request)
        if number is None:
            if not prompts.remove_label(found, name, actor=actor):
                raise prompts.PromptVersionNotFound(f"Prompt {found.slug!r} has no label {name!r}")
        else:
            prompts.move_label(found, name, number, actor=actor)
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(
        request=RenderSerializer,
        responses=RenderedPromptSerializer,
        parameters=[PROMPT_PARAMETER],
    )
    @action(detail=True, methods=["post"])
    def render(self, request: Request, prompt: str | None = None) -> Response:
        """Preview the messages a version renders to, without calling a model.

        The version is chosen as a workflow chooses it (a number, a label, or the default);
        a draft can be previewed by naming its number.
        """
        found = self.get_object()
        incoming = RenderSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        version = prompts.resolve(
            self.tenant,
            found.slug,
            version=data.get("version"),
            label=data.get("label"),
            allow_draft="version" in data,
        )
        messages = prompts.render(version, data["variables"])
        body = {
            "prompt": found.slug,
            "version": version.version,
            "is_published": version.is_published,
            "model": version.model,
            "params": version.params,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        return Response(RenderedPromptSerializer(body).data)


@extend_schema_view(
    list=extend_schema(parameters=[PROMPT_PARAMETER]),
    create=extend_schema(parameters=[PROMPT_PARAMETER]),
    retrieve=extend_schema(parameters=[PROMPT_PARAMETER, VERSION_PARAMETER]),
    partial_update=extend_schema(parameters=[PROMPT_PARAMETER, VERSION_PARAMETER]),
    update=extend_schema(parameters=[PROMPT_PARAMETER, VERSION_PARAMETER]),
)
class PromptVersionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    _PromptScopedViewSet,
):
    """Versions of one prompt, newest first. POST adds a draft; PUT/PATCH edit a draft only.

    Filter with ``?published=true`` or ``false``.
    """

    serializer_class = PromptVersionSerializer
    lookup_field = "version"
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[PromptVersion]:
        if getattr(self, "swagger_fake_view", False):
            return PromptVersion.objects.none()
        versions_of_tenant = cast(
            "QuerySet[PromptVersion]", PromptVersion.objects.for_tenant(self.tenant)
        )
        versions = (
            versions_of_tenant.filter(prompt=self.prompt)
            .select_related("prompt")
            .prefetch_related("labels")
        )
        published = self.request.query_params.get("published")
        if published in ("true", "false"):
            versions = versions.filter(published_at__isnull=published == "false")
        return versions

    @property
    def prompt(self) -> Prompt:
        if not hasattr(self, "_prompt"):
            self._prompt = self.find_prompt(self.kwargs["prompt"])
        return self._prompt

    def get_object(self) -> PromptVersion:
        found = self.get_queryset().filter(version=self.kwargs["version"]).first()
        if found is None:
            raise prompts.PromptVersionNotFound(
                f"Prompt {self.prompt.slug!r} has no version {self.kwargs['version']}"
            )
        return found

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        prompt = self.prompt  # an unknown prompt is a 404 before the body is looked at
        incoming = self.get_serializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        draft = prompts.create_version(prompt, **incoming.validated_data)
        return Response(self.get_serializer(draft).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        draft = self.get_object()
        incoming = self.get_serializer(
            draft, data=request.data, partial=kwargs.get("partial", False)
        )
        incoming.is_valid(raise_exception=True)
        for name, value in incoming.validated_data.items():
            setattr(draft, name, value)
        prompts.save_draft(draft)
        return Response(self.get_serializer(draft).data)

    @extend_schema(
        request=PublishSerializer,
        responses=PromptVersionSerializer,
        parameters=[PROMPT_PARAMETER, VERSION_PARAMETER],
    )
    @action(detail=True, methods=["post"])
    def publish(
        self, request: Request, prompt: str | None = None, version: str | None = None
    ) -> Response:
        """Freeze the version (audited); optionally point a label at it in the same step."""
        found = self.get_object()
        incoming = PublishSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        prompts.publish(
            found,
            actor=audit.actor_for_request(request),
            label=incoming.validated_data.get("label"),
        )
        return Response(self.get_serializer(self.get_object()).data)
