"""Versioned prompts: drafts, publication, labels, resolution and rendering.

A :class:`~automate_llm.models.Prompt` has numbered versions. A draft can be edited; a published
version never changes again, so an execution that recorded "support-reply v3" can always say
what it sent. Labels (``production``, ``canary``) are movable names for published versions;
workflows name a prompt by slug and a version number or a label.

``variables`` on a version is a JSON schema (type object) of what the templates take. Rendering
checks the values against it before any template runs: a missing or undeclared variable, or a
value of the wrong type, is a :class:`PromptVariablesInvalid` naming it. Templates are rendered
by the same sandboxed Jinja2 environment as step inputs
(:func:`automate_core.workflows.templating.environment`).

Publishing and moving a label are configuration changes: each appends an audit row
(``prompt.publish``, ``prompt.label``) in the same transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from jinja2 import Template, TemplateError, TemplateSyntaxError, meta
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import ValidationError as PydanticValidationError

from automate_core.errors import ConflictError, InvalidInputError, NotFoundError
from automate_core.governance import audit
from automate_core.workflows.templating import (
    MAX_OUTPUT_CHARS,
    TemplateRenderError,
    environment,
)
from automate_llm.models import Prompt, PromptLabel, PromptVersion
from automate_llm.types import ChatMessage, ChatOptions

if TYPE_CHECKING:
    import uuid

    from automate_core.tenancy.models import Tenant

__all__ = [
    "DEFAULT_LABEL",
    "PromptNotFound",
    "PromptNotPublished",
    "PromptVariablesInvalid",
    "PromptVersionNotFound",
    "create_prompt",
    "create_version",
    "delete_prompt",
    "move_label",
    "normalize_variables",
    "publish",
    "remove_label",
    "render",
    "required_variables",
    "resolve",
    "save_draft",
    "version_problems",
]

#: The label :func:`resolve` uses when a caller names neither a version nor a label.
DEFAULT_LABEL = "production"
TEMPLATE_FIELDS = ("system_template", "user_template")
_LABEL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,49}")
_ROLES: dict[str, Literal["system", "user"]] = {
    "system_template": "system",
    "user_template": "user",
}


class PromptNotFound(NotFoundError):
    code = "prompt_not_found"
    default_message = "No such prompt."


class PromptVersionNotFound(NotFoundError):
    code = "prompt_version_not_found"
    default_message = "No such prompt version."


class PromptNotPublished(ConflictError):
    code = "prompt_not_published"
    default_message = "The prompt version is a draft; publish it first."


class PromptVariablesInvalid(InvalidInputError):
    """Values that do not fit the version's declared variables; ``details`` lists each one."""

    code = "prompt_variables_invalid"
    default_message = "The prompt's variables are invalid."


# -- prompts -------------------------------------------------------------------------------------


def create_prompt(tenant: Tenant, *, name: str, slug: str = "", description: str = "") -> Prompt:
    """A new prompt with no versions. A slug already used in the tenant is a ConflictError;
    with no slug, one is derived from ``name`` and made unique."""
    taken = ConflictError(f"A prompt with slug {slug!r} already exists", details={"slug": slug})
    if slug and Prompt.objects.for_tenant(tenant).filter(slug=slug).exists():
        raise taken
    try:
        with transaction.atomic():
            return Prompt.objects.create(
                tenant=tenant, name=name, slug=slug, description=description
            )
    except IntegrityError:  # the same slug created concurrently
        raise taken from None


def delete_prompt(prompt: Prompt, *, actor: str = "system") -> None:
    """Deletes the prompt, its versions and labels; audited as ``prompt.delete``.

    Call records keep the slug they used (``LLMRequest.prompt_slug``) after the versions go.
    """
    with transaction.atomic():
        audit.record(
            "prompt.delete",
            actor=actor,
            tenant=prompt.tenant,
            target=f"prompt:{prompt.pk}",
            data={
                "prompt": prompt.slug,
                "published": list(
                    prompt.versions.filter(published_at__isnull=False)
                    .order_by("version")
                    .values_list("version", flat=True)
                ),
            },
        )
        prompt.delete()


# -- drafts --------------------------------------------------------------------------------------


def normalize_variables(variables: Any) -> Any:
    """The stored form of a variables declaration.

    A list of names is shorthand for an object schema whose properties are those names, each
    of any type and all required; ``None`` means no variables. Anything else is kept as given
    (and checked by :func:`version_problems`).
    """
    if variables is None:
        return {}
    if isinstance(variables, list | tuple) and all(isinstance(n, str) for n in variables):
        names = list(dict.fromkeys(variables))
        return {"type": "object", "properties": {n: {} for n in names}, "required": names}
    return variables


def version_problems(version: PromptVersion) -> dict[str, list[str]]:
    """What is wrong with a version's content, by field; empty when it can be saved.

    Checks that ``variables`` is a valid JSON schema of type object whose property names are
    template identifiers, that both templates parse, that they use no variable the schema does
    not declare, and that ``params`` are valid call options.
    """
    problems: dict[str, list[str]] = {}
    declared = _check_schema(normalize_variables(version.variables), problems)
    env = environment()
    for field in TEMPLATE_FIELDS:
        text = getattr(version, field) or ""
        try:
            parsed = env.parse(text)
        except TemplateSyntaxError as exc:
            problems.setdefault(field, []).append(f"line {exc.lineno}: {exc.message}")
            continue
        used = meta.find_undeclared_variables(parsed) - set(env.globals)
        unknown = sorted(used - declared) if declared is not None else []
        if unknown:
            problems.setdefault(field, []).append(
                f"uses undeclared variable(s) {_names(unknown)}; declare them in variables"
            )
    if not isinstance(version.params, dict):
        problems.setdefault("params", []).append("An object of call options (max_tokens, ...).")
    else:
        try:
            ChatOptions.model_validate({**version.params, "model": version.model or "-"})
        except PydanticValidationError as exc:
            for error in exc.errors():
                where = ".".join(str(p) for p in error["loc"])
                problems.setdefault("params", []).append(f"{where}: {error['msg']}")
    return problems


def _check_schema(schema: Any, problems: dict[str, list[str]]) -> set[str] | None:
    """The declared variable names, or None when the schema is too broken to tell."""

    def fail(message: str) -> None:
        problems.setdefault("variables", []).append(message)

    if not isinstance(schema, dict):
        fail("A JSON schema of type object, or a list of variable names.")
        return None
    if schema.get("type", "object") != "object":
        fail("The schema's type must be 'object': variables are named.")
        return None
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        fail(f"Not a valid JSON schema{f' at {where}' if where else ''}: {exc.message}")
        return None
    properties = schema.get("properties", {})
    bad = [name for name in properties if not name.isidentifier() or name.startswith("_")]
    if bad:
        fail(f"Variable names must be identifiers not starting with '_': {_names(bad)}")
    undeclared_required = [name for name in schema.get("required", []) if name not in properties]
    if undeclared_required:
        fail(f"Required but not declared in properties: {_names(undeclared_required)}")
    return set(properties)


def save_draft(version: PromptVersion) -> PromptVersion:
    """Validate and save a draft; a new one gets the prompt's next version number.

    Raises InvalidInputError (with the problems by field) for bad content, and ConflictError
    for a version that is already published.
    """
    version.variables = normalize_variables(version.variables)
    if version.params is None:
        version.params = {}
    problems = version_problems(version)
    if problems:
        raise InvalidInputError(
            f"{_label(version)}: {_listed(problems)}", details={"problems": problems}
        )
    with transaction.atomic():
        if version._state.adding:
            # Lock the prompt so two concurrent drafts cannot take the same number.
            Prompt.objects.select_for_update().filter(pk=version.prompt_id).first()
            last = version.prompt.versions.aggregate(m=Max("version"))["m"] or 0
            version.version = last + 1
            version.tenant_id = version.prompt.tenant_id
        elif version.is_published or _stored_published(version):
            raise ConflictError(f"{version} is published and cannot change; create a new version")
        version.save()
    return version


def create_version(
    prompt: Prompt,
    *,
    system_template: str = "",
    user_template: str = "",
    variables: Any = None,
    model: str = "",
    params: dict[str, Any] | None = None,
) -> PromptVersion:
    """A new draft of ``prompt`` numbered after its last version (see :func:`save_draft`)."""
    return save_draft(
        PromptVersion(
            prompt=prompt,
            tenant_id=prompt.tenant_id,
            system_template=system_template,
            user_template=user_template,
            variables=variables,
            model=model,
            params=params if params is not None else {},
        )
    )


def _stored_published(version: PromptVersion) -> bool:
    return PromptVersion.objects.filter(pk=version.pk, published_at__isnull=False).exists()


# -- publication and labels ----------------------------------------------------------------------


def publish(
    version: PromptVersion, *, actor: str = "system", label: str | None = None
) -> PromptVersion:
    """Freeze ``version`` and append a ``prompt.publish`` audit row, in one transaction.

    Publishing a published version changes nothing (and writes no second row). With
    ``label``, the label is moved to this version in the same transaction.
    """
    with transaction.atomic():
        locked = (
            PromptVersion.objects.select_for_update().select_related("prompt").get(pk=version.pk)
        )
        if not locked.is_published:
            problems = version_problems(locked)
            if not any((getattr(locked, f) or "").strip() for f in TEMPLATE_FIELDS):
                problems.setdefault("user_template", []).append(
                    "A published version needs a system or a user template."
                )
            if problems:
                raise InvalidInputError(
                    f"{_label(locked)} cannot be published: {_listed(problems)}",
                    details={"problems": problems},
                )
            locked.published_at = timezone.now()
            PromptVersion.objects.filter(pk=locked.pk).update(published_at=locked.published_at)
            audit.record(
                "prompt.publish",
                actor=actor,
                tenant=locked.prompt.tenant,
                target=f"prompt_version:{locked.pk}",
                data={
                    "prompt": locked.prompt.slug,
                    "version": locked.version,
                    "digest": locked.content_digest,
                },
            )
        if label is not None:
            move_label(locked.prompt, label, locked, actor=actor)
    version.published_at = locked.published_at
    return version


def move_label(
    prompt: Prompt, name: str, version: PromptVersion | int, *, actor: str = "system"
) -> PromptLabel:
    """Point label ``name`` of ``prompt`` at a published version (creating the label if new).

    Appends a ``prompt.label`` audit row with the version it moved from and to; a move to the
    version it already points at changes nothing and writes no row.
    """
    if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name):
        raise InvalidInputError(
            "A label name is 1-50 lowercase letters, digits, '-' or '_', starting with a letter "
            "or digit",
            details={"label": name},
        )
    target = _version_of(prompt, version)
    if not target.is_published:
        raise PromptNotPublished(
            f"v{target.version} of prompt {prompt.slug!r} is a draft; publish it before "
            f"labelling it {name!r}"
        )
    with transaction.atomic():
        # One writer per prompt's labels: a concurrent first move cannot insert the label twice.
        Prompt.objects.select_for_update().filter(pk=prompt.pk).first()
        label = (
            PromptLabel.objects.select_related("version").filter(prompt=prompt, name=name).first()
        )
        previous = label.version.version if label else None
        if label is not None and label.version_id == target.pk:
            return label
        if label is None:
            label = PromptLabel.objects.create(
                tenant_id=prompt.tenant_id, prompt=prompt, name=name, version=target
            )
        else:
            label.version = target
            label.save(update_fields=["version", "updated_at"])
        _audit_label(prompt, name, previous, target.version, actor)
    return label


def remove_label(prompt: Prompt, name: str, *, actor: str = "system") -> bool:
    """Delete label ``name``; True if it existed (then a ``prompt.label`` row records it)."""
    with transaction.atomic():
        Prompt.objects.select_for_update().filter(pk=prompt.pk).first()
        label = (
            PromptLabel.objects.select_related("version").filter(prompt=prompt, name=name).first()
        )
        if label is None:
            return False
        previous = label.version.version
        label.delete()
        _audit_label(prompt, name, previous, None, actor)
    return True


def _audit_label(
    prompt: Prompt, name: str, previous: int | None, current: int | None, actor: str
) -> None:
    audit.record(
        "prompt.label",
        actor=actor,
        tenant=prompt.tenant,
        target=f"prompt:{prompt.pk}",
        data={"prompt": prompt.slug, "label": name, "from": previous, "to": current},
    )


def _version_of(prompt: Prompt, version: PromptVersion | int) -> PromptVersion:
    if isinstance(version, PromptVersion):
        if version.prompt_id != prompt.pk:
            raise InvalidInputError(f"{version} is not a version of prompt {prompt.slug!r}")
        return version
    found = prompt.versions.filter(version=_version_number(version)).first()
    if found is None:
        raise PromptVersionNotFound(f"Prompt {prompt.slug!r} has no version {version}")
    return found


# -- resolution ----------------------------------------------------------------------------------


def resolve(
    tenant: Tenant | uuid.UUID | str,
    slug: str,
    version: int | None = None,
    label: str | None = None,
    *,
    allow_draft: bool = False,
) -> PromptVersion:
    """The version a caller means by ``slug`` and a version number or a label.

    With neither, the ``production`` label if the prompt has one, else its newest published
    version. Only the tenant's own prompts are found. A draft is refused (PromptNotPublished)
    unless ``allow_draft``: what a workflow runs must not change under it.
    """
    if version is not None and label is not None:
        raise InvalidInputError("Name a prompt version or a label, not both")
    prompt = Prompt.objects.for_tenant(tenant).filter(slug=slug).first()
    if prompt is None:
        raise PromptNotFound(f"No prompt {slug!r}", details={"prompt": slug})
    base = prompt.versions.select_related("prompt")
    found: PromptVersion | None
    if version is not None:
        found = base.filter(version=_version_number(version)).first()
        if found is None:
            raise PromptVersionNotFound(
                f"Prompt {slug!r} has no version {version}",
                details={"prompt": slug, "version": version},
            )
    elif label is not None:
        found = base.filter(labels__name=label).first()
        if found is None:
            names = sorted(prompt.labels.values_list("name", flat=True))
            raise PromptVersionNotFound(
                f"Prompt {slug!r} has no label {label!r} (labels: {', '.join(names) or 'none'})",
                details={"prompt": slug, "label": label, "labels": names},
            )
    else:
        found = base.filter(labels__name=DEFAULT_LABEL).first() or (
            base.filter(published_at__isnull=False).order_by("-version").first()
        )
        if found is None:
            raise PromptVersionNotFound(
                f"Prompt {slug!r} has no published version", details={"prompt": slug}
            )
    if not found.is_published and not allow_draft:
        raise PromptNotPublished(
            f"v{found.version} of prompt {slug!r} is a draft; publish it before using it",
            details={"prompt": slug, "version": found.version},
        )
    return found


def _version_number(value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidInputError(f"A prompt version is a positive number, not {value!r}")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"A prompt version is a positive number, not {value!r}")
    return value


# -- rendering -----------------------------------------------------------------------------------


def required_variables(schema: Mapping[str, Any]) -> list[str]:
    """The schema's ``required`` list when it has one; else every property without a default."""
    properties = schema.get("properties", {}) or {}
    if "required" in schema:
        return list(schema["required"])
    return [name for name, spec in properties.items() if "default" not in (spec or {})]


def render(version: PromptVersion, variables: Mapping[str, Any] | None = None) -> list[ChatMessage]:
    """The version's messages (system, then user; blank templates are left out).

    ``variables`` are checked against the declared schema first: a missing or undeclared
    variable, or a value the schema refuses, raises PromptVariablesInvalid naming each one.
    Declared defaults fill absent optional variables. Template errors raise
    TemplateRenderError naming the prompt, the version and the template.
    """
    scope = _checked_variables(version, variables if variables is not None else {})
    messages = []
    for field in TEMPLATE_FIELDS:
        text = getattr(version, field) or ""
        if not text.strip():
            continue
        messages.append(
            ChatMessage(role=_ROLES[field], content=_render_text(version, field, scope))
        )
    return messages


def _checked_variables(version: PromptVersion, variables: Any) -> dict[str, Any]:
    where = _label(version)
    if not isinstance(variables, Mapping):
        raise PromptVariablesInvalid(
            f"Variables for {where} must be an object of name: value",
            details={"prompt": version.prompt.slug, "version": version.version},
        )
    schema = version.variables if isinstance(version.variables, dict) else {}
    properties: dict[str, Any] = schema.get("properties", {}) or {}
    extra = sorted(str(name) for name in variables if name not in properties)
    missing = [name for name in required_variables(schema) if name not in variables]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing variable(s) {_names(missing)}")
        if extra:
            parts.append(f"undeclared variable(s) {_names(extra)}")
        declared = ", ".join(properties) or "none"
        raise PromptVariablesInvalid(
            f"{where}: {' and '.join(parts)} (declared: {declared})",
            details={"missing": missing, "extra": extra, "declared": list(properties)},
        )
    values = {
        name: spec["default"]
        for name, spec in properties.items()
        if isinstance(spec, dict) and "default" in spec and name not in variables
    }
    values.update(variables)
    errors = sorted(
        _validator(json.dumps(schema, sort_keys=True)).iter_errors(values),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
    if errors:
        invalid = [
            {"variable": ".".join(str(p) for p in e.absolute_path), "message": e.message}
            for e in errors
        ]
        listed = "; ".join(f"{i['variable'] or '(all)'}: {i['message']}" for i in invalid)
        raise PromptVariablesInvalid(f"{where}: invalid variable(s): {listed}", details={
            "invalid": invalid
        })  # fmt: skip
    return values


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


@lru_cache(maxsize=512)
def _compiled(text: str) -> Template:
    """Compiled once per distinct text: the text alone decides the compiled template."""
    return environment().from_string(text)


def _render_text(version: PromptVersion, field: str, scope: Mapping[str, Any]) -> str:
    try:
        rendered = _compiled(getattr(version, field)).render(**scope)
    except Exception as exc:  # a template may raise anything; it must fail clearly, not crash
        message = exc.message if isinstance(exc, TemplateError) else str(exc)
        line = getattr(exc, "lineno", None)
        raise TemplateRenderError(
            f"{_label(version)} {field}{f' line {line}' if line else ''}: "
            f"{message or type(exc).__name__}",
            details={"prompt": version.prompt.slug, "version": version.version, "field": field},
        ) from None
    if len(rendered) > MAX_OUTPUT_CHARS:
        raise TemplateRenderError(
            f"{_label(version)} {field} rendered more than {MAX_OUTPUT_CHARS} characters"
        )
    return rendered


def _label(version: PromptVersion) -> str:
    slug = version.prompt.slug if version.prompt_id else "?"
    number = f"v{version.version}" if version.version else "(new draft)"
    return f"prompt {slug!r} {number}"


def _listed(problems: Mapping[str, list[str]]) -> str:
    return "; ".join(f"{name}: {message}" for name, found in problems.items() for message in found)


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)
