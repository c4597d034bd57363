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

_declared: dict[str, AppSettings] = {}


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
        _declared[namespace] = self

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


def declared_settings() -> list[AppSettings]:
    """Every settings object declared so far (apps declare theirs in their ``conf`` module)."""
    return list(_declared.values())


automate_settings = AppSettings(
    "AUTOMATE",
    defaults={
        # Upper bound for ?limit= on every paginated list.
        "MAX_PAGE_SIZE": 200,
        "DEFAULT_PAGE_SIZE": 50,
        # Header used to return (and accept) the trace id.
        "TRACE_HEADER": "X-Trace-Id",
        # The tenant (slug or id) engine.signal(name) goes to when given no tenant or run; None:
        # the only tenant, if there is just one (with several, such a signal is refused).
        "DEFAULT_TENANT": None,
        # API keys: last_used_at is written at most this often, to keep reads cheap.
        "API_KEY_TOUCH_SECONDS": 60,
        # Secrets backends tried in order when a SecretRef is resolved: the environment first
        # (operators override), then secrets stored encrypted in the database (the admin's).
        "SECRETS_BACKENDS": ["env", "db"],
        # The env secrets backend reads {"$secret": "NAME"} from ${PREFIX}NAME only, so a
        # workflow can never read DATABASE_URL or SECRET_KEY. "" exposes the whole environment.
        "SECRETS_ENV_PREFIX": "AUTOMATE_SECRET_",
        # Fernet keys of the "db" secrets backend, newest first (docs/governance.md "Stored
        # secrets"). Empty: one key derived from SECRET_KEY (development only).
        "SECRET_KEYS": [],
        # Redaction: more sensitive key names (matched as a word suffix), key names never
        # hidden, and extra regular expressions whose matches are hidden in any string.
        "REDACTION_EXTRA_KEYS": [],
        "REDACTION_SAFE_KEYS": [],
        "REDACTION_EXTRA_PATTERNS": [],
        # Rate limits: scope -> "100/min", overriding a view's own rate_limit.
        "RATE_LIMITS": {},
        # Cache alias (a django RedisCache) whose Redis holds the rate-limit windows.
        "RATE_LIMIT_CACHE": "default",
        "RATE_LIMIT_KEY_PREFIX": "automate:ratelimit",
        # When Redis is unreachable: True lets requests through (logged), False refuses them.
        "RATE_LIMIT_FAIL_OPEN": True,
        # The runtime's per-job and per-step statements are prepared once per connection
        # (docs/runtime.md "Performance"). False for poolers that cannot carry protocol-level
        # prepared statements (PgBouncer transaction mode before 1.21).
        "PREPARED_STATEMENTS": True,
        # Outbox runtime (docs/runtime.md). Seconds unless the name says otherwise.
        "OUTBOX_LEASE_SECONDS": 60,
        "OUTBOX_BATCH_SIZE": 10,
        "OUTBOX_WORKER_CONCURRENCY": 4,
        # Idle workers re-check the table this often even without a NOTIFY.
        "OUTBOX_POLL_INTERVAL_MS": 1000,
        "OUTBOX_REAP_INTERVAL_SECONDS": 5,
        "OUTBOX_MAX_ATTEMPTS": 10,
        # Retry n waits min(BASE * 2**(n-1), MAX), shortened by up to JITTER (a fraction).
        "OUTBOX_BACKOFF_BASE_SECONDS": 1.0,
        "OUTBOX_BACKOFF_MAX_SECONDS": 3600.0,
        "OUTBOX_BACKOFF_JITTER": 0.25,
        # prune() deletes done jobs older than this; dead jobs too when set (None keeps them).
        "OUTBOX_DONE_RETENTION_SECONDS": 7 * 24 * 3600,
        "OUTBOX_DEAD_RETENTION_SECONDS": None,
        "OUTBOX_PRUNE_INTERVAL_SECONDS": 3600,
        # Finished executions (completed, failed, cancelled) and their step runs are deleted
        # this many days after they finished, by the worker every OUTBOX_PRUNE_INTERVAL_SECONDS
        # and by `manage.py automate_prune`. None keeps them forever.
        "EXECUTION_RETENTION_DAYS": 30,
        # Runs deleted per transaction when pruning.
        "EXECUTION_PRUNE_BATCH_SIZE": 500,
        "OUTBOX_NOTIFY_CHANNEL": "automate_outbox",
        # Celery relay: leases cover the broker queue time; tasks heartbeat once running.
        "OUTBOX_RELAY_LEASE_SECONDS": 300,
        "OUTBOX_CELERY_QUEUE": None,
        # Egress policy (automate_core.governance.egress, docs/governance.md "Egress policy").
        # URL schemes outbound requests may use.
        "EGRESS_SCHEMES": ["https", "http"],
        # Host patterns any tenant may call ("api.openai.com", "*.stripe.com" = subdomains,
        # not the apex); empty = any public host. A tenant's egress_allowlist narrows it further.
        "EGRESS_ALLOWLIST": [],
        # Allowed ports; None = any port except the Fetch standard's "bad ports" (22, 25, ...).
        "EGRESS_PORTS": None,
        # DANGEROUS: CIDRs ("10.1.2.0/24") or host patterns exempt from the refusal of private,
        # loopback and link-local addresses. Cloud metadata addresses stay refused. Keep empty
        # in production unless a connector must reach an internal service.
        "EGRESS_ALLOW_PRIVATE": [],
    },
)
