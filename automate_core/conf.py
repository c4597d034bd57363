"""Namespaced app settings with defaults, read like DRF's ``api_settings``.

Each app declares one :class:`AppSettings` over its own settings dict (``AUTOMATE``,
``AUTOMATE_LLM``, ...). Attribute access returns the user's value or the default; names listed
in ``import_strings`` hold dotted paths that are imported on first use. Values are re-read when
a test changes the setting with ``override_settings``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string


class AppSettings:
    def __init__(
        self,
        namespace: str,
        defaults: Mapping[str, Any],
        import_strings: Iterable[str] = (),
    ) -> None:
        self.namespace = namespace
        self.defaults = dict(defaults)
        self.import_strings = frozenset(import_strings)
        self._cache: dict[str, Any] = {}
        setting_changed.connect(self._on_setting_changed, weak=False)

    @property
    def user_settings(self) -> Mapping[str, Any]:
        return getattr(settings, self.namespace, None) or {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.defaults:
            raise AttributeError(f"Invalid {self.namespace} setting: {name!r}")
        if name not in self._cache:
            value = self.user_settings.get(name, self.defaults[name])
            if name in self.import_strings:
                value = self._import(name, value)
            self._cache[name] = value
        return self._cache[name]

    def unknown_keys(self) -> set[str]:
        """Keys in the user's dict that no default declares: almost always a typo."""
        return set(self.user_settings) - set(self.defaults)

    def reload(self) -> None:
        self._cache.clear()

    def _import(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, list | tuple):
            return [self._import(name, item) for item in value]
        try:
            return import_string(value)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"{self.namespace}[{name!r}] = {value!r} could not be imported: {exc}"
            ) from exc

    def _on_setting_changed(self, *, setting: str, **_: Any) -> None:
        if setting == self.namespace:
            self.reload()


automate_settings = AppSettings(
    "AUTOMATE",
    defaults={
        # Upper bound for ?limit= on every paginated list.
        "MAX_PAGE_SIZE": 200,
        "DEFAULT_PAGE_SIZE": 50,
        # Header used to return (and accept) the trace id.
        "TRACE_HEADER": "X-Trace-Id",
        # API keys: last_used_at is written at most this often, to keep reads cheap.
        "API_KEY_TOUCH_SECONDS": 60,
        # Secrets backends tried in order when a SecretRef is resolved.
        "SECRETS_BACKENDS": ["env"],
    },
)
