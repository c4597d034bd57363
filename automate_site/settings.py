"""Settings read from the environment.

DATABASE_URL, REDIS_URL, SECRET_KEY, ALLOWED_HOSTS and DEBUG configure a deployment. With no
DATABASE_URL or REDIS_URL, an embedded Postgres + pgvector and redis-server are started under
AUTOMATE_VAR_DIR (default ``./var``), see :mod:`automate_site.embedded`.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import dj_database_url

from automate_site import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("AUTOMATE_VAR_DIR", BASE_DIR / "var")).resolve()


def _env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def _dev_secret_key() -> str:
    """A key generated once and kept in var/, so sessions survive restarts in development."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = _env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or _dev_secret_key()
ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "automate_core",
    "automate_llm",
    "rag",
    "automate_datachat",
    "automate_modal",
    "mcp_bridge",
    "widgets",
]

MIDDLEWARE = [
    "automate_core.tracing.TraceIdMiddleware",
    "automate_core.api.nul_bytes.refuse_nul_bytes",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "automate_site.urls"
ASGI_APPLICATION = "automate_site.asgi.application"
WSGI_APPLICATION = "automate_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL") or embedded.postgres_url(VAR_DIR)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
REDIS_URL = os.environ.get("REDIS_URL") or embedded.redis_url(VAR_DIR)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "automate",
    }
}

CELERY_BROKER_URL = REDIS_URL.replace("unix://", "redis+socket://", 1)
CELERY_TASK_DEFAULT_QUEUE = "automate"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Stored files (Modal job artifacts, uploads) under var/ in development; set MEDIA_ROOT and a
# storage backend (STORAGES) for production.
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media")).resolve()
# Serve app static files (admin, Swagger UI) straight from the apps: no collectstatic step.
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "automate_core.api.auth.APIKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["automate_core.api.permissions.IsTenantMember"],
    "DEFAULT_PAGINATION_CLASS": "automate_core.api.pagination.CreatedCursorPagination",
    "DEFAULT_SCHEMA_CLASS": "automate_core.api.schema.NormalizedErrorSchema",
    "EXCEPTION_HANDLER": "automate_core.api.errors.normalized_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "automate_core.api.parsers.JSONParser",
        "automate_core.api.parsers.FormParser",
        "automate_core.api.parsers.MultiPartParser",
    ],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Django Automate API",
    "DESCRIPTION": "Durable AI workflows: events, rules, executions, LLM, RAG and more.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["automate_core.api.schema.strip_optional_trailing_slash"],
    # Several models have a "status" field; name each choice set after its model.
    "ENUM_NAME_OVERRIDES": {
        "ExecutionStatusEnum": "automate_core.executions.models.Execution.Status",
        "StepRunStatusEnum": "automate_core.executions.models.StepRun.Status",
        "EventStatusEnum": "automate_core.events.models.Event.Status",
        "MCPServerStatusEnum": "mcp_bridge.models.MCPServer.Status",
        "MCPToolStatusEnum": "mcp_bridge.models.MCPTool.Status",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(trace_id)s] %(name)s: %(message)s"}
    },
    # Every record is scrubbed of credentials and resolved secret values before it is written.
    "filters": {
        # django.request logs a request's errors after its trace ended: take the id from it.
        "trace_id": {"()": "automate_core.tracing.TraceIdLogFilter"},
        "redact": {"()": "automate_core.governance.redaction.RedactingLogFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["trace_id", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"pgserver": {"level": "WARNING"}},
}

AUTOMATE: dict[str, object] = {}

# App settings without editing code (docs/foundation.md "Configuration"): each of these dicts
# may be given in the environment as JSON (AUTOMATE_LLM='{"TIMEOUT": 30}'), and
# automate_site/local_settings.py, when present (it is git-ignored), runs last and may change
# anything. The environment's keys are merged into the dict; the local module has the last word.
APP_SETTINGS = (
    "AUTOMATE",
    "AUTOMATE_LLM",
    "AUTOMATE_RAG",
    "AUTOMATE_DATACHAT",
    "AUTOMATE_MODAL",
    "AUTOMATE_MCP",
    "AUTOMATE_WIDGETS",
)
for _name in APP_SETTINGS:
    if os.environ.get(_name):
        _value = json.loads(os.environ[_name])
        if not isinstance(_value, dict):
            raise ValueError(f"the {_name} environment variable must hold a JSON object")
        globals().setdefault(_name, {})
        globals()[_name] = {**globals()[_name], **_value}

# Messages may carry a new API key once; keep them server-side, not in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

if (BASE_DIR / "automate_site" / "local_settings.py").exists():
    from automate_site.local_settings import *  # noqa: F403
