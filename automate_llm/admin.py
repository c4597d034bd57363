"""Admin of the LLM gateway: providers, model configs, prompts and their versions, labels, and
the read-only record of calls and usage.

Every page is tenant-scoped (``TenantScopedAdmin``). Provider configs hold SecretRefs only: a
config the governance redactor would hide anything in is refused. Every configuration change
(provider, model config, prompt publication and labels) appends an audit row. A prompt version
has a diff against any other version of its prompt and a test console that renders it with
given variables and, where a provider is configured, runs it.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Max, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from automate_core import plugins
from automate_core.admin_base import ImmutableAdmin, RedactedPayloadAdmin, TenantScopedAdmin
from automate_core.errors import AutomateError
from automate_core.governance import audit
from automate_core.governance.credentials import credentials_in_clear
from automate_core.governance.redaction import redact
from automate_core.governance.secrets import InvalidSecretRefError, find_secret_refs
from automate_llm import prompts
from automate_llm.configs import other_default, unknown_fallbacks
from automate_llm.models import (
    LLMModelConfig,
    LLMProvider,
    LLMRequest,
    LLMUsage,
    Prompt,
    PromptLabel,
    PromptVersion,
)
from automate_llm.providers.base import PLUGIN_KIND


def _pretty_json(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(redact(value), indent=2, default=str))


def _audit_config(
    request: HttpRequest, action: str, obj: LLMProvider | LLMModelConfig, data: dict[str, Any]
) -> None:
    kind = "llm_provider" if isinstance(obj, LLMProvider) else "llm_model"
    audit.record(
        f"{kind}.{action}",
        actor=audit.actor_for_request(request),
        tenant=obj.tenant,
        target=f"{kind}:{obj.pk}",
        data={"slug": obj.slug, **data},
    )


class _AuditedConfigAdmin(TenantScopedAdmin):
    """Creates, changes and deletes append ``<kind>.create|change|delete`` audit rows."""

    def audit_data(self, obj: Any) -> dict[str, Any]:
        return {}

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            _audit_config(
                request,
                "change" if change else "create",
                obj,
                {"changed": form.changed_data if change else [], **self.audit_data(obj)},
            )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            _audit_config(request, "delete", obj, self.audit_data(obj))
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        with transaction.atomic():
            for obj in queryset:
                _audit_config(request, "delete", obj, self.audit_data(obj))
            super().delete_queryset(request, queryset)


# -- providers -----------------------------------------------------------------------------------


class LLMProviderForm(forms.ModelForm):
    """Offers the installed provider plugins and refuses raw credentials in the config."""

    provider_type = forms.ChoiceField(choices=())

    class Meta:
        model = LLMProvider
        fields = ["tenant", "name", "slug", "provider_type", "config", "is_default", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = plugins.available(PLUGIN_KIND)
        current = self.instance.provider_type
        if current and current not in names:
            names = [*names, current]
        provider_type = self.fields["provider_type"]
        assert isinstance(provider_type, forms.ChoiceField)
        provider_type.choices = [(n, n) for n in names]
        if self.instance.pk:
            # What the form shows goes through the redactor too: a row written around this
            # form with a raw key does not display it, and must be fixed with a SecretRef.
            self.initial["config"] = redact(self.instance.config or {})
        self.fields["config"].help_text = (
            'Secrets as SecretRefs only, e.g. {"api_key": {"$secret": "OPENAI_KEY"}, '
            '"base_url": "http://localhost:8000/v1"}. Store the value under Governance > '
            "Stored secrets or in the environment."
        )

    def clean_config(self) -> Any:
        config = self.cleaned_data.get("config")
        if config in (None, ""):
            return {}
        if not isinstance(config, dict):
            raise forms.ValidationError("The config is a JSON object.")
        try:
            find_secret_refs(config)
        except InvalidSecretRefError as exc:
            raise forms.ValidationError(exc.message) from None
        raw = credentials_in_clear(config)
        if raw:
            raise forms.ValidationError(
                f"{', '.join(raw)} holds a credential in clear (or redacted): store it as a "
                'secret and write {"$secret": "NAME"} instead.'
            )
        return config

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        tenant = data.get("tenant") or getattr(self.instance, "tenant", None)
        if data.get("is_default") and tenant is not None:
            other = other_default(LLMProvider, tenant.pk, self.instance.pk)
            if other is not None:
                self.add_error(
                    "is_default", f"{other} is already this tenant's default; untick it first."
                )
        return data


@admin.register(LLMProvider)
class LLMProviderAdmin(_AuditedConfigAdmin):
    form = LLMProviderForm
    list_display = [
        "name", "slug", "provider_type", "secret_refs", "is_default", "is_active", "tenant",
    ]  # fmt: skip
    list_filter = ["provider_type", "is_active", "is_default"]
    list_select_related = ["tenant"]
    search_fields = ["name", "slug"]
    readonly_fields = ["secret_refs", "created_at", "updated_at"]

    @admin.display(description="secrets referenced")
    def secret_refs(self, obj: LLMProvider) -> str:
        try:
            return ", ".join(find_secret_refs(obj.config or {})) or "-"
        except InvalidSecretRefError as exc:
            return exc.message

    def audit_data(self, obj: LLMProvider) -> dict[str, Any]:
        return {
            "provider_type": obj.provider_type,
            "config": obj.config,  # SecretRefs only; the audit log redacts it again
            "is_default": obj.is_default,
            "is_active": obj.is_active,
        }


# -- model configs -------------------------------------------------------------------------------


class LLMModelConfigForm(forms.ModelForm):
    class Meta:
        model = LLMModelConfig
        fields = [
            "tenant", "name", "slug", "provider", "model_id", "max_tokens", "temperature",
            "params", "fallbacks", "is_default",
        ]  # fmt: skip

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        tenant = data.get("tenant") or getattr(self.instance, "tenant", None)
        if tenant is None:
            return data
        if data.get("is_default"):
            other = other_default(LLMModelConfig, tenant.pk, self.instance.pk)
            if other is not None:
                self.add_error(
                    "is_default", f"{other} is already this tenant's default; untick it first."
                )
        fallbacks = data.get("fallbacks")
        if isinstance(fallbacks, list) and all(isinstance(s, str) for s in fallbacks):
            unknown = unknown_fallbacks(tenant, fallbacks)
            if unknown:
                self.add_error("fallbacks", f"No model config with slug {', '.join(unknown)}.")
        return data


@admin.register(LLMModelConfig)
class LLMModelConfigAdmin(_AuditedConfigAdmin):
    form = LLMModelConfigForm
    list_display = [
        "name", "slug", "provider", "model_id", "max_tokens", "temperature", "is_default",
        "tenant",
    ]  # fmt: skip
    list_filter = ["is_default", "provider__provider_type"]
    list_select_related = ["provider", "tenant"]
    search_fields = ["name", "slug", "model_id"]

    def audit_data(self, obj: LLMModelConfig) -> dict[str, Any]:
        return {
            "provider": obj.provider.slug,
            "model_id": obj.model_id,
            "max_tokens": obj.max_tokens,
            "temperature": obj.temperature,
            "params": obj.params,
            "fallbacks": obj.fallbacks,
            "is_default": obj.is_default,
        }


# -- prompts -------------------------------------------------------------------------------------


def _version_url(version: PromptVersion, view: str = "change") -> str:
    return reverse(f"admin:automate_llm_promptversion_{view}", args=[version.pk])


def _version_tools(version: PromptVersion) -> str:
    return format_html(
        '<a href="{}">diff</a> · <a href="{}">test console</a>',
        _version_url(version, "diff"),
        _version_url(version, "console"),
    )


class PromptVersionInline(admin.TabularInline):
    """The prompt's versions, newest first; drafts are edited and published on their own page."""

    model = PromptVersion
    extra = 0
    can_delete = False
    ordering = ["-version"]
    fields = ("open", "status", "model", "label_names", "tools", "created_at")
    readonly_fields = fields

    @admin.display(description="version")
    def open(self, obj: PromptVersion) -> str:
        return format_html('<a href="{}">v{}</a>', _version_url(obj), obj.version)

    @admin.display(description="status")
    def status(self, obj: PromptVersion) -> str:
        return f"published {obj.published_at:%Y-%m-%d %H:%M}" if obj.published_at else "draft"

    @admin.display(description="labels")
    def label_names(self, obj: PromptVersion) -> str:
        return ", ".join(sorted(label.name for label in obj.labels.all())) or "-"

    @admin.display(description="")
    def tools(self, obj: PromptVersion) -> str:
        return _version_tools(obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Prompt)
class PromptAdmin(TenantScopedAdmin):
    list_display = ["name", "slug", "latest", "label_list", "tenant", "updated_at"]
    list_select_related = ["tenant"]
    search_fields = ["name", "slug", "description"]
    inlines = [PromptVersionInline]

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).annotate(latest_number=Max("versions__version"))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Workflows name the prompt by slug: it is fixed once the prompt exists.
        return ["slug", "new_version"] if obj else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["tenant", "name", "slug", "description"]
        return ["tenant", "name", "slug", "description", "new_version"]

    @admin.display(description="latest version", ordering="latest_number")
    def latest(self, obj: Prompt) -> Any:
        return getattr(obj, "latest_number", None) or "-"

    @admin.display(description="labels")
    def label_list(self, obj: Prompt) -> str:
        pairs = obj.labels.select_related("version").order_by("name")
        return ", ".join(f"{lb.name} → v{lb.version.version}" for lb in pairs) or "-"

    @admin.display(description="")
    def new_version(self, obj: Prompt) -> str:
        url = reverse("admin:automate_llm_promptversion_add")
        return format_html('<a class="addlink" href="{}?prompt={}">Add a version</a>', url, obj.pk)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # A prompt goes with all its versions and labels, published ones included (one audited
        # prompt.delete); on their own, published versions cannot be deleted.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        own = {str(PromptVersion._meta.verbose_name), str(PromptLabel._meta.verbose_name)}
        return deleted, counts, {p for p in perms_needed if str(p) not in own}, protected

    def delete_model(self, request: HttpRequest, obj: Prompt) -> None:
        prompts.delete_prompt(obj, actor=audit.actor_for_request(request))

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        with transaction.atomic():
            for prompt in queryset:
                prompts.delete_prompt(prompt, actor=audit.actor_for_request(request))


class PromptVersionForm(forms.ModelForm):
    class Meta:
        model = PromptVersion
        fields = ["prompt", "system_template", "user_template", "variables", "model", "params"]
        help_texts = {
            "variables": 'A JSON schema, e.g. {"type": "object", "properties": {"name": '
            '{"type": "string"}}, "required": ["name"]}, or a list of names ["name", "topic"].',
        }


@admin.register(PromptVersion)
class PromptVersionAdmin(TenantScopedAdmin):
    """Drafts are edited here; published versions are read-only (publish is an action)."""

    form = PromptVersionForm
    list_display = ["__str__", "status", "model", "label_names", "tools", "tenant", "created_at"]
    list_filter = [("published_at", admin.EmptyFieldListFilter)]
    list_select_related = ["prompt", "tenant"]
    search_fields = ["prompt__name", "prompt__slug"]
    actions = ["publish_drafts", "copy_to_new_draft"]

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("labels")

    @admin.display(description="status", ordering="published_at")
    def status(self, obj: PromptVersion) -> str:
        return "published" if obj.is_published else "draft"

    @admin.display(description="labels")
    def label_names(self, obj: PromptVersion) -> str:
        return ", ".join(sorted(label.name for label in obj.labels.all())) or "-"

    @admin.display(description="")
    def tools(self, obj: PromptVersion) -> str:
        return _version_tools(obj) if obj.pk else "-"

    @admin.display(description="digest")
    def digest(self, obj: PromptVersion) -> str:
        return obj.content_digest if obj.pk else "-"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return list(PromptVersionForm.Meta.fields)
        return [
            "prompt", "version", "status", "published_at", "label_names", "tools",
            *PromptVersionForm.Meta.fields[1:], "digest",
        ]  # fmt: skip

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        frozen = ["prompt", "version", "status", "published_at", "label_names", "tools", "digest"]
        return [*frozen, *PromptVersionForm.Meta.fields[1:]] if obj.is_published else frozen

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_published:
            return False  # workflows may pin it
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        published = queryset.filter(published_at__isnull=False).count()
        if published:
            self.message_user(
                request, f"Kept {published} published version(s): they cannot be deleted.",
                messages.WARNING,
            )  # fmt: skip
        super().delete_queryset(request, queryset.filter(published_at__isnull=True))

    def save_model(self, request: HttpRequest, obj: PromptVersion, form: Any, change: bool) -> None:
        prompts.save_draft(obj)

    @admin.action(description="Publish selected drafts", permissions=["change"])
    def publish_drafts(self, request: HttpRequest, queryset: Any) -> None:
        actor = audit.actor_for_request(request)
        published = 0
        for version in queryset.filter(published_at__isnull=True).select_related("prompt"):
            try:
                prompts.publish(version, actor=actor)
            except AutomateError as exc:
                problems = exc.details.get("problems") if isinstance(exc.details, dict) else None
                self.message_user(
                    request, f"{exc.message} {json.dumps(problems) if problems else ''}",
                    messages.ERROR,
                )  # fmt: skip
            else:
                published += 1
        self.message_user(request, f"Published {published} version(s).", messages.SUCCESS)

    @admin.action(description="Copy into a new draft", permissions=["add"])
    def copy_to_new_draft(self, request: HttpRequest, queryset: Any) -> None:
        for version in queryset.select_related("prompt"):
            draft = prompts.create_version(
                version.prompt,
                system_template=version.system_template,
                user_template=version.user_template,
                variables=version.variables,
                model=version.model,
                params=version.params,
            )
            self.message_user(request, f"Created {draft} from v{version.version}.")

    # -- diff and test console ---------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/diff/",
                wrap(self.diff_view),
                name="automate_llm_promptversion_diff",
            ),
            path(
                "<path:object_id>/console/",
                wrap(self.console_view),
                name="automate_llm_promptversion_console",
            ),
            *super().get_urls(),
        ]

    def _visible_version(self, request: HttpRequest, object_id: str) -> PromptVersion | None:
        version = self.get_object(request, object_id)  # through the tenant-scoped queryset
        if version is None or not self.has_view_or_change_permission(request, version):
            return None
        return version

    def _page(self, request: HttpRequest, version: PromptVersion, **context: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "app_label": self.model._meta.app_label,
            "original": version,
            "has_view_permission": True,
            **context,
        }

    def diff_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Read-only: this version against another of the same prompt (default: the one before)."""
        version = self._visible_version(request, object_id)
        if version is None:
            return self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined]
                request, self.model._meta, object_id
            )
        siblings = version.prompt.versions.exclude(pk=version.pk).order_by("-version")
        wanted = request.GET.get("against")
        against = None
        if wanted and wanted.isdigit():
            against = siblings.filter(version=int(wanted)).first()
        if against is None:
            against = (
                siblings.filter(version__lt=version.version).first()
                or siblings.order_by("version").first()
            )
        return TemplateResponse(
            request,
            "admin/automate_llm/promptversion/diff.html",
            self._page(
                request,
                version,
                title=f"{version} compared",
                against=against,
                siblings=siblings,
                sections=diff_versions(against, version) if against else [],
            ),
        )

    def console_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Render with given variables; run the messages when a provider is configured."""
        version = self._visible_version(request, object_id)
        if version is None:
            return self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined]
                request, self.model._meta, object_id
            )
        can_run = self.has_change_permission(request) and _chat_available()
        has_provider = (
            LLMProvider.objects.for_tenant(version.tenant_id).filter(is_active=True).exists()
        )
        form = PromptConsoleForm(request.POST or None, version=version)
        outcome = ConsoleOutcome()
        if request.method == "POST" and form.is_valid():
            outcome = run_console(
                version,
                form.cleaned_data["variables"],
                run=bool(form.cleaned_data.get("run")) and can_run and has_provider,
                model=form.cleaned_data.get("model") or "",
            )
        return TemplateResponse(
            request,
            "admin/automate_llm/promptversion/console.html",
            self._page(
                request,
                version,
                title=f"Test console: {version}",
                form=form,
                outcome=outcome,
                can_run=can_run,
                chat_available=_chat_available(),
                has_provider=has_provider,
            ),
        )


@dataclass
class DiffLine:
    kind: str  # "add", "remove", "hunk", "context"
    text: str


@dataclass
class DiffSection:
    name: str
    changed: bool
    lines: list[DiffLine] = field(default_factory=list)


DIFF_FIELDS = ("system_template", "user_template", "variables", "model", "params")


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def diff_versions(old: PromptVersion, new: PromptVersion) -> list[DiffSection]:
    """A unified diff per field, from ``old`` to ``new``."""
    sections = []
    for name in DIFF_FIELDS:
        before, after = _as_text(getattr(old, name)), _as_text(getattr(new, name))
        section = DiffSection(name=name, changed=before != after)
        if section.changed:
            lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=3)
            for line in lines:
                if line.startswith(("---", "+++")):
                    continue
                kind = {"+": "add", "-": "remove", "@": "hunk"}.get(line[:1], "context")
                section.lines.append(DiffLine(kind, line))
        sections.append(section)
    return sections


def _example_value(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return ""
    if "default" in spec:
        return spec["default"]
    if spec.get("examples"):
        return spec["examples"][0]
    if spec.get("enum"):
        return spec["enum"][0]
    kind = spec.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    return {"integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}.get(
        str(kind), ""
    )


def example_variables(version: PromptVersion) -> dict[str, Any]:
    """A starting point for the console: each declared variable with a plausible value."""
    schema = version.variables if isinstance(version.variables, dict) else {}
    return {name: _example_value(spec) for name, spec in (schema.get("properties") or {}).items()}


class PromptConsoleForm(forms.Form):
    variables = forms.JSONField(
        initial=dict, required=False, widget=forms.Textarea(attrs={"rows": 8, "cols": 80})
    )
    model = forms.CharField(
        required=False,
        help_text="Model config slug or model id; empty uses the version's model or the default.",
    )
    run = forms.BooleanField(required=False, label="Also run it through the model")

    def __init__(self, *args: Any, version: PromptVersion, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["variables"].initial = example_variables(version)
        self.fields["model"].initial = version.model

    def clean_variables(self) -> Any:
        value = self.cleaned_data.get("variables")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("An object of name: value.")
        return value


@dataclass
class ConsoleOutcome:
    messages: list[dict[str, str]] = field(default_factory=list)
    error: str = ""
    ran: bool = False
    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    request_url: str = ""


def _chat_available() -> bool:
    try:
        from automate_llm import services
    except ImportError:
        return False
    return callable(getattr(services, "chat", None))


#: Version params that are named options of ``services.chat``; the rest pass through.
_CHAT_OPTIONS = ("max_tokens", "temperature", "stop", "timeout")


def run_console(
    version: PromptVersion, variables: dict[str, Any], *, run: bool, model: str = ""
) -> ConsoleOutcome:
    """Render ``version``; with ``run``, send the messages through the gateway's chat service
    (so the call is metered, budgeted and recorded like any other). Errors are shown, not raised.
    """
    outcome = ConsoleOutcome()
    try:
        rendered = prompts.render(version, variables)
    except AutomateError as exc:
        outcome.error = exc.message
        return outcome
    outcome.messages = [{"role": m.role, "content": m.content} for m in rendered]
    if not run:
        return outcome
    from automate_llm import services

    params = dict(version.params or {})
    named = {name: params.pop(name) for name in _CHAT_OPTIONS if name in params}
    try:
        response = services.chat(
            tenant=version.tenant,
            messages=rendered,
            model=model or version.model or None,
            params=params,
            context=services.CallContext(prompt_version=version),
            **named,
        )
    except (AutomateError, ImproperlyConfigured) as exc:
        outcome.error = getattr(exc, "message", None) or str(exc)
        return outcome
    outcome.ran = True
    outcome.text = response.text
    outcome.tool_calls = [call.model_dump() for call in response.result.tool_calls]
    outcome.usage = response.usage.model_dump()
    outcome.model = f"{response.provider} / {response.model}"
    if response.request_id:
        outcome.request_url = reverse(
            "admin:automate_llm_llmrequest_change", args=[response.request_id]
        )
    return outcome


# -- labels --------------------------------------------------------------------------------------


class PromptLabelForm(forms.ModelForm):
    class Meta:
        model = PromptLabel
        fields = ["prompt", "name", "version"]


@admin.register(PromptLabel)
class PromptLabelAdmin(TenantScopedAdmin):
    """Labels move only to published versions of their prompt; every move is audited."""

    form = PromptLabelForm
    list_display = ["__str__", "version", "tenant", "updated_at"]
    list_select_related = ["prompt", "version", "tenant"]
    search_fields = ["name", "prompt__slug"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["prompt", "name"] if obj else []

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "version" and formfield is not None:
            published: QuerySet[PromptVersion] = formfield.queryset.filter(
                published_at__isnull=False
            ).select_related("prompt")
            formfield.queryset = published
        return formfield

    def save_model(self, request: HttpRequest, obj: PromptLabel, form: Any, change: bool) -> None:
        label = prompts.move_label(
            obj.prompt, obj.name, obj.version, actor=audit.actor_for_request(request)
        )
        # The service wrote the row; the admin goes on with it (log entry, redirect).
        obj.pk, obj.tenant_id = label.pk, label.tenant_id
        obj._state.adding, obj._state.db = False, label._state.db

    def delete_model(self, request: HttpRequest, obj: PromptLabel) -> None:
        prompts.remove_label(obj.prompt, obj.name, actor=audit.actor_for_request(request))

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        with transaction.atomic():
            for label in queryset.select_related("prompt"):
                prompts.remove_label(
                    label.prompt, label.name, actor=audit.actor_for_request(request)
                )


# -- call records --------------------------------------------------------------------------------


@admin.register(LLMRequest)
class LLMRequestAdmin(ImmutableAdmin, RedactedPayloadAdmin):
    """One row per gateway call; content is redacted for staff without the raw permission."""

    list_display = [
        "created_at", "model", "provider_type", "prompt_slug", "success", "error_code",
        "latency_ms", "attempts", "tenant",
    ]  # fmt: skip
    list_filter = ["success", "provider_type", "stream"]
    list_select_related = ["tenant"]
    search_fields = ["model", "prompt_slug", "=trace_id", "=idempotency_key", "=execution_id"]
    show_full_result_count = False
    readonly_fields = [f.name for f in LLMRequest._meta.fields]
    payload_fields = ("request", "response", "error_message")

    @admin.display(description="request")
    def redacted_request(self, obj: LLMRequest) -> str:
        return _pretty_json(obj.request)

    @admin.display(description="response")
    def redacted_response(self, obj: LLMRequest) -> str:
        return _pretty_json(obj.response)

    @admin.display(description="error message")
    def redacted_error_message(self, obj: LLMRequest) -> str:
        return format_html("<pre>{}</pre>", redact(obj.error_message))


@admin.register(LLMUsage)
class LLMUsageAdmin(ImmutableAdmin):
    """Tokens and cost per call, with the prices charged; written by metering only."""

    list_display = [
        "created_at", "model", "provider_type", "input_tokens", "output_tokens",
        "cached_tokens", "cost", "tokenizer_note", "tenant",
    ]  # fmt: skip
    list_filter = ["provider_type", "model", "tokenizer_fallback"]
    list_select_related = ["tenant"]
    search_fields = ["model", "workflow", "end_user"]
    show_full_result_count = False
    readonly_fields = [f.name for f in LLMUsage._meta.fields]

    @admin.display(description="tokenizer")
    def tokenizer_note(self, obj: LLMUsage) -> str:
        fallback = " (fallback)" if obj.tokenizer_fallback else ""
        return f"{obj.tokenizer or '-'}{fallback}"
