"""Secrets: SecretRefs in configs, and the backends that resolve them at run time.

A config (step input, connector settings, a workflow graph) never holds a credential, only a
*SecretRef* naming one: ``{"$secret": "STRIPE_KEY"}`` or the string ``"$secret:STRIPE_KEY"``.
:func:`resolve_secrets` swaps refs for values just before use, in a new structure that is never
stored, and registers every value with the redactor so it cannot reach a log, an audit row or a
response. A string that must literally start with ``$secret:`` is written ``$$secret:...``.

A backend is a small class with ``get_secret(key, tenant=...)``; backends are plugins in the
entry-point group ``django_automate.secrets.backends`` and are tried in the order of
``AUTOMATE["SECRETS_BACKENDS"]``, first hit wins.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from automate_core import plugins
from automate_core.conf import automate_settings
from automate_core.errors import AutomateError
from automate_core.governance.redaction import register_secret_value

if TYPE_CHECKING:
    from automate_core.tenancy.models import Tenant

REF_KEY = "$secret"
REF_PREFIX = "$secret:"
_ESCAPED_PREFIX = "$" + REF_PREFIX
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,255}")


class SecretNotFoundError(AutomateError, LookupError):
    """No configured backend holds the secret. The message names the ref, never a value."""

    status_code = 400
    code = "secret_not_found"
    default_message = "A referenced secret is not configured."


class InvalidSecretRefError(AutomateError, ValueError):
    """A ``$secret`` ref is malformed (not a lone key, empty or odd name)."""

    status_code = 400
    code = "invalid_secret_ref"
    default_message = "Invalid secret reference."


class SecretsBackend:
    """Where secret values live. ``tenant`` lets a backend keep each tenant's secrets apart;
    a backend without per-tenant storage ignores it."""

    def get_secret(self, key: str, *, tenant: Tenant | None = None) -> str:
        """The value of ``key``; raises :class:`SecretNotFoundError` (naming ``key``) if absent."""
        raise NotImplementedError


class EnvironmentSecretsBackend(SecretsBackend):
    """Reads ``NAME`` from the environment variable ``AUTOMATE["SECRETS_ENV_PREFIX"] + NAME``.

    The prefix (``AUTOMATE_SECRET_`` by default) keeps the platform's own variables
    (``DATABASE_URL``, ``SECRET_KEY``) out of reach of workflows. The environment is shared by
    every tenant: put per-tenant secrets in a tenant-aware backend.
    """

    def get_secret(self, key: str, *, tenant: Tenant | None = None) -> str:
        name = f"{automate_settings.SECRETS_ENV_PREFIX}{key}"
        try:
            return os.environ[name]
        except KeyError:
            raise SecretNotFoundError(
                f"secret {key!r} not found (environment variable {name} is not set)"
            ) from None


def get_secret(key: str, *, tenant: Tenant | None = None) -> str:
    """Resolve ``key`` through the configured backends, first hit wins.

    The value is not registered with the redactor; :func:`resolve_secrets` does that.
    """
    return _resolve_name(key, tenant, _backends(tenant))


@dataclass(frozen=True)
class SecretRef:
    """A reference to a secret by name, as written in a config."""

    name: str

    @classmethod
    def parse(cls, value: Any, *, path: str = "$") -> SecretRef | None:
        """The ref ``value`` spells, None if it is not one; malformed refs raise."""
        if isinstance(value, str):
            if not value.startswith(REF_PREFIX):
                return None
            return cls(_valid_name(value[len(REF_PREFIX) :], path))
        if isinstance(value, Mapping) and REF_KEY in value:
            if len(value) != 1:
                raise InvalidSecretRefError(
                    f"{path}: a {{'$secret': NAME}} ref may have no other keys",
                    details={"path": path},
                )
            return cls(_valid_name(value[REF_KEY], path))
        return None

    def to_json(self) -> dict[str, str]:
        return {REF_KEY: self.name}


def find_secret_refs(obj: Any) -> list[str]:
    """Names of the secrets ``obj`` references, each once, in order of first use.

    Use it to validate a config when it is saved: it raises :class:`InvalidSecretRefError` for
    malformed refs, and the names can be checked against the backends without reading values.
    """
    names: dict[str, None] = {}
    for _, ref in _walk_refs(obj, "$"):
        names.setdefault(ref.name)
    return list(names)


def resolve_secrets(obj: Any, tenant: Tenant | None = None) -> Any:
    """A copy of ``obj`` with every SecretRef replaced by its value; ``obj`` is not touched.

    Every value is registered with the redactor (scoped by
    :func:`~automate_core.governance.redaction.secret_scope` when the caller opened one), so it
    is scrubbed from logs and stored data. All missing secrets are reported in one
    :class:`SecretNotFoundError` that names the refs, never a value.
    """
    names = find_secret_refs(obj)
    if not names:
        return _rebuild(obj, {})
    backends = _backends(tenant)
    values: dict[str, str] = {}
    missing: dict[str, SecretNotFoundError] = {}
    for name in names:
        try:
            values[name] = _resolve_name(name, tenant, backends)
        except SecretNotFoundError as exc:
            missing[name] = exc
    if missing:
        raise SecretNotFoundError(
            "; ".join(error.message for error in missing.values()),
            details={"refs": list(missing)},
        )
    for value in values.values():
        register_secret_value(value)
    return _rebuild(obj, values)


def _backends(tenant: Tenant | None = None) -> list[tuple[str, SecretsBackend]]:
    """The backends to try, in the tenant's own order when it set one, else the settings'."""
    names = getattr(tenant, "secrets_backends", None) or (automate_settings.SECRETS_BACKENDS)
    return [(name, plugins.load("secrets.backends", name)()) for name in names]


def _resolve_name(
    key: str, tenant: Tenant | None, backends: list[tuple[str, SecretsBackend]]
) -> str:
    errors: list[SecretNotFoundError] = []
    for _, backend in backends:
        try:
            return str(backend.get_secret(key, tenant=tenant))
        except SecretNotFoundError as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    # Each backend's own message says where it looked.
    looked = "; ".join(
        f"{name}: {error.message}" for (name, _), error in zip(backends, errors, strict=True)
    )
    raise SecretNotFoundError(f"secret {key!r} not found in any backend ({looked})")


def _valid_name(name: Any, path: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidSecretRefError(
            f"{path}: a secret name is 1-256 letters, digits, '_', '.', '-' or '/' "
            "and starts with a letter, digit or '_'",
            details={"path": path},
        )
    return name


def _walk_refs(obj: Any, path: str) -> Iterator[tuple[str, SecretRef]]:
    ref = SecretRef.parse(obj, path=path)
    if ref is not None:
        yield path, ref
    elif isinstance(obj, Mapping):
        for key, item in obj.items():
            yield from _walk_refs(item, f"{path}.{key}")
    elif isinstance(obj, list | tuple):
        for index, item in enumerate(obj):
            yield from _walk_refs(item, f"{path}[{index}]")


def _rebuild(obj: Any, values: Mapping[str, str]) -> Any:
    ref = SecretRef.parse(obj)
    if ref is not None:
        return values[ref.name]
    if isinstance(obj, str) and obj.startswith(_ESCAPED_PREFIX):
        return obj[1:]
    if isinstance(obj, Mapping):
        return {key: _rebuild(item, values) for key, item in obj.items()}
    if isinstance(obj, list):
        return [_rebuild(item, values) for item in obj]
    if isinstance(obj, tuple):
        return tuple(_rebuild(item, values) for item in obj)
    return obj
