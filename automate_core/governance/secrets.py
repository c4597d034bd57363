"""Secrets backends: where a ``{"$secret": "NAME"}`` reference is resolved at run time.

A backend is a small class with ``get_secret(key)``; backends are plugins in the entry-point
group ``django_automate.secrets.backends`` and are tried in the order of
``AUTOMATE["SECRETS_BACKENDS"]``.
"""

from __future__ import annotations

import os

from automate_core import plugins
from automate_core.conf import automate_settings


class SecretNotFoundError(LookupError):
    """No configured backend holds the secret. The message names the ref, never a value."""


class SecretsBackend:
    def get_secret(self, key: str) -> str:
        raise NotImplementedError


class EnvironmentSecretsBackend(SecretsBackend):
    """Reads ``NAME`` from the process environment."""

    def get_secret(self, key: str) -> str:
        try:
            return os.environ[key]
        except KeyError:
            raise SecretNotFoundError(key) from None


def get_secret(key: str) -> str:
    """Resolve ``key`` through the configured backends, first hit wins."""
    names = automate_settings.SECRETS_BACKENDS
    for name in names:
        backend = plugins.load("secrets.backends", name)()
        try:
            return str(backend.get_secret(key))
        except SecretNotFoundError:
            continue
    raise SecretNotFoundError(f"secret {key!r} not found in backends {', '.join(names)}")
