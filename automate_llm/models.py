"""State of the LLM gateway: configured providers and models, prompts and their versions, and
the record of every call (LLMRequest) with what it used and cost (LLMUsage).

Provider configs hold SecretRefs, never values; they are resolved only for the call that needs
them (:meth:`LLMProvider.get_client`). Call records keep content through the governance redactor.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from automate_core.base import SluggedModel, TenantScopedModel, TimeStampedModel, UUIDModel
from automate_core.errors import ConflictError
from automate_core.governance.models import DECIMAL_PLACES, MAX_DIGITS


class LLMProvider(UUIDModel, TimeStampedModel, TenantScopedModel, SluggedModel):
    """A tenant's account with one provider (``openai``, ``anthropic`` or any installed plugin)."""

    provider_type = models.CharField(
        max_length=100, help_text="The provider plugin's name, e.g. openai or anthropic."
    )
    config = models.JSONField(
        default=dict,
        blank=True,
        help_text='Provider config, e.g. {"api_key": {"$secret": "OPENAI_KEY"}, "base_url": ...}.',
    )
    is_default = models.BooleanField(default=False, help_text="Used when a call names none.")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "LLM provider"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="llm_provider_slug_per_tenant"),
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(is_default=True), name="one_default_llm_provider"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider_type})"

    def validate_config(self) -> list[str]:
        """Problems with the stored config, from the provider plugin (PluginNotFound if absent)."""
        from automate_llm.providers.base import provider_class

        return provider_class(self.provider_type).validate_config(self.config or {})

    def clean(self) -> None:
        from automate_core.plugins import PluginNotFound

        try:
            problems = self.validate_config()
        except PluginNotFound as exc:
            raise ValidationError({"provider_type": str(exc)}) from None
        if problems:
            raise ValidationError({"config": problems})

    def get_client(self) -> Any:
        """A provider instance with this row's SecretRefs resolved, for one call only.

        Register the resolved values with the redactor (``secret_scope``) around the call so
        they cannot leak into logs or records.
        """
        from automate_core.governance.secrets import resolve_secrets
        from automate_llm.providers.base import provider_class

        cls = provider_class(self.provider_type)
        return cls(resolve_secrets(self.config or {}, self.tenant), tenant=self.tenant)


class LLMModelConfig(UUIDModel, TimeStampedModel, TenantScopedModel, SluggedModel):
    """A named model on a provider with its defaults; steps and calls refer to it by slug."""

    provider = models.ForeignKey(LLMProvider, on_delete=models.CASCADE, related_name="models")
    model_id = models.CharField(max_length=200, help_text="The provider's model name.")
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    temperature = models.FloatField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True, help_text="Extra provider parameters.")
    fallbacks = models.JSONField(
        default=list,
        blank=True,
        help_text="Slugs of model configs tried in order when this one keeps failing.",
    )
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "LLM model config"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="llm_model_slug_per_tenant"),
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(is_default=True), name="one_default_llm_model"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.model_id})"

    def clean(self) -> None:
        if self.provider_id and self.tenant_id and self.provider.tenant_id != self.tenant_id:
            raise ValidationError({"provider": "The provider belongs to another tenant."})
        if not isinstance(self.fallbacks, list) or not all(
            isinstance(s, str) for s in self.fallbacks
        ):
            raise ValidationError({"fallbacks": "A list of model config slugs."})
        if self.slug and self.slug in self.fallbacks:
            raise ValidationError({"fallbacks": "A model cannot fall back to itself."})


class Prompt(UUIDModel, TimeStampedModel, TenantScopedModel, SluggedModel):
    """A named prompt; its text lives in numbered, immutable-once-published versions."""

    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="prompt_slug_per_tenant")
        ]

    def __str__(self) -> str:
        return self.name


# What a published PromptVersion freezes (with its prompt, tenant and publication).
PROMPT_VERSION_CONTENT = (
    "version", "system_template", "user_template", "variables", "model", "params",
)  # fmt: skip


class PromptVersion(UUIDModel, TimeStampedModel, TenantScopedModel):
    """One version of a prompt. ``variables`` is a JSON schema (type object) of what it takes."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    system_template = models.TextField(blank=True)
    user_template = models.TextField(blank=True)
    variables = models.JSONField(
        default=dict, blank=True, help_text="JSON schema of the variables the templates use."
    )
    model = models.CharField(
        max_length=100, blank=True, help_text="Default model config slug for this prompt."
    )
    params = models.JSONField(default=dict, blank=True, help_text="Default max_tokens etc.")
    published_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["prompt", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "version"], name="one_number_per_prompt")
        ]

    def __str__(self) -> str:
        return f"{self.prompt} v{self.version}"

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    @property
    def content_digest(self) -> str:
        """sha256 of everything a published version freezes: equal digests, equal prompts."""
        content = {name: getattr(self, name) for name in PROMPT_VERSION_CONTENT}
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def clean(self) -> None:
        from automate_llm.prompts import version_problems

        problems = version_problems(self)
        if problems:
            raise ValidationError(problems)

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Refuses any change to a published version (its content, number, prompt or state)."""
        if not self._state.adding:
            frozen = ("published_at", "prompt_id", "tenant_id", *PROMPT_VERSION_CONTENT)
            stored = PromptVersion._base_manager.filter(pk=self.pk).values(*frozen).first()
            if stored and stored["published_at"]:
                changed = [name for name in frozen if stored[name] != getattr(self, name)]
                if changed:
                    raise ConflictError(
                        f"{self} is published and cannot change; create a new version",
                        details={"changed": changed},
                    )
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        """Drafts can be deleted; a published version stays (workflows may pin it)."""
        if self.is_published:
            raise ConflictError(f"{self} is published and cannot be deleted")
        return super().delete(*args, **kwargs)


class PromptLabel(UUIDModel, TimeStampedModel, TenantScopedModel):
    """A movable name (``production``, ``canary``) pointing at one published version."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="labels")
    name = models.SlugField(max_length=50)
    # RESTRICT, not PROTECT: a labelled version cannot be deleted on its own, but deleting the
    # prompt or the tenant takes its labels and versions together.
    version = models.ForeignKey(PromptVersion, on_delete=models.RESTRICT, related_name="labels")

    class Meta:
        ordering = ["prompt", "name"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "name"], name="one_label_name_per_prompt")
        ]

    def __str__(self) -> str:
        return f"{self.prompt}@{self.name}"

    def clean(self) -> None:
        if self.version_id and self.prompt_id and self.version.prompt_id != self.prompt_id:
            raise ValidationError({"version": "The version belongs to another prompt."})
        if self.version_id and not self.version.is_published:
            raise ValidationError({"version": "Only a published version can carry a label."})


class LLMRequest(UUIDModel, TenantScopedModel):
    """One gateway call (all its attempts and fallbacks), content redacted."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    provider = models.ForeignKey(
        LLMProvider, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    provider_type = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200, blank=True)
    prompt_version = models.ForeignKey(
        PromptVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    prompt_slug = models.CharField(max_length=100, blank=True)
    execution_id = models.UUIDField(null=True, blank=True, db_index=True)
    step_id = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=300, blank=True, db_index=True)
    trace_id = models.CharField(max_length=64, blank=True, db_index=True)
    stream = models.BooleanField(default=False)
    success = models.BooleanField(default=False)
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    provider_request_id = models.CharField(max_length=200, blank=True)
    request = models.JSONField(
        default=dict, blank=True, help_text="Messages and options, redacted."
    )
    response = models.JSONField(default=dict, blank=True, help_text="The result, redacted.")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "LLM request"

    def __str__(self) -> str:
        return f"{self.model} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class LLMUsage(UUIDModel, TenantScopedModel):
    """Tokens and cost of one call, with the prices it was charged at (old rows keep theirs)."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    request = models.OneToOneField(LLMRequest, on_delete=models.CASCADE, related_name="usage")
    provider_type = models.CharField(max_length=100)
    model = models.CharField(max_length=200)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    estimated_input_tokens = models.PositiveIntegerField(default=0)
    tokenizer = models.CharField(
        max_length=50, blank=True, help_text="Encoding used for the estimate."
    )
    tokenizer_fallback = models.BooleanField(
        default=False, help_text="The model's own tokenizer was unknown; cl100k_base was used."
    )
    pricing_version = models.CharField(max_length=50, blank=True)
    price_input = models.DecimalField(
        max_digits=MAX_DIGITS,
        decimal_places=DECIMAL_PLACES,
        default=Decimal(0),
        help_text="Per million input tokens.",
    )
    price_output = models.DecimalField(
        max_digits=MAX_DIGITS,
        decimal_places=DECIMAL_PLACES,
        default=Decimal(0),
        help_text="Per million output tokens.",
    )
    price_cached = models.DecimalField(
        max_digits=MAX_DIGITS,
        decimal_places=DECIMAL_PLACES,
        default=Decimal(0),
        help_text="Per million cached input tokens.",
    )
    cost = models.DecimalField(
        max_digits=MAX_DIGITS, decimal_places=DECIMAL_PLACES, default=Decimal(0)
    )
    api_key_id = models.UUIDField(null=True, blank=True)
    end_user = models.CharField(max_length=200, blank=True)
    workflow = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "LLM usage"
        verbose_name_plural = "LLM usage"

    def __str__(self) -> str:
        return f"{self.model}: {self.input_tokens}+{self.output_tokens} tokens, {self.cost}"
