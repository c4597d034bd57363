"""One redactor for everything that leaves the process or lands in storage.

Logs, audit rows, step inputs and outputs, API responses and the admin all pass values through
:func:`redact` (structures) or :func:`redact_text` (strings), so a credential is hidden the same
way everywhere. Three things are replaced with ``[REDACTED]``:

* the value under a *sensitive key* (``password``, ``api_key``, ``Authorization``...), see
  :func:`is_sensitive_key` for the exact rule;
* credential-shaped text anywhere in a string: bearer tokens, provider keys (OpenAI, Anthropic,
  GitHub, Slack, AWS, Stripe, Google), JWTs, PEM private keys, our own ``dak_`` API keys, the
  password in ``scheme://user:password@host`` URLs, and ``name=value`` pairs whose name is
  sensitive;
* every secret value resolved in the current context (:func:`register_secret_value`), wherever
  it appears, whatever it looks like.

Redaction never mutates its input: it returns new containers and leaves the caller's data alone.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from django.core.signals import setting_changed

REDACTED = "[REDACTED]"
# SecretRef spellings (see automate_core.governance.secrets), kept visible: they hold no value.
_REF_KEY = "$secret"
_REF_PREFIX = "$secret:"

# Deeper structures than this are replaced whole: redaction must terminate on cyclic input.
MAX_DEPTH = 64
# Shorter registered values would turn ordinary text into confetti; such "secrets" are not
# scrubbed from free text (they are still hidden under sensitive keys).
MIN_SECRET_LENGTH = 4

# -- sensitive keys ---------------------------------------------------------------------------

# The last word of a key name that marks its value as a credential.
SENSITIVE_WORDS = frozenset(
    {
        "password", "passwords", "passwd", "pwd", "passphrase",
        "secret", "secrets", "token", "key", "apikey", "auth", "authorization",
        "cookie", "cookies", "credential", "credentials", "bearer", "jwt",
    }
)  # fmt: skip
# Words written without a separator (``stripeapikey``, ``X-APIKEY``, ``accesstoken``): the last
# word *ending* in one of these is sensitive. Bare ``key``/``token``/``secret`` are deliberately
# not here, so ``monkey``, ``turkey`` or ``bitoken`` stay readable.
SENSITIVE_ENDINGS = (
    "apikey", "accesskey", "secretkey", "privatekey", "signingkey", "encryptionkey",
    "masterkey", "clientsecret", "accesstoken", "refreshtoken", "authtoken", "idtoken",
    "bearertoken", "sessiontoken", "password", "passwd", "passphrase", "setcookie",
    "authorization", "credential", "credentials",
)  # fmt: skip
# Trailing words that describe a representation of the credential, not a different thing:
# ``password_hash``, ``secret_value``, ``token_b64`` are as sensitive as their first word.
QUALIFIERS = frozenset(
    {
        "value", "val", "raw", "plain", "plaintext", "encoded", "b64", "base64", "hex", "hash",
        "confirm", "confirmation", "old", "new", "current",
    }
)  # fmt: skip
# Names ending in a sensitive word that hold no credential. They matter: idempotency keys are
# how operators trace side effects, and tokenizer configs are full of ``*_token``.
SAFE_KEYS = frozenset(
    {
        "idempotency_key", "cache_key", "sort_key", "primary_key", "foreign_key",
        "partition_key", "routing_key", "dedup_key", "dedupe_key", "deduplication_key",
        "lookup_key", "public_key", "object_key", "lock_key", "group_key", "natural_key",
        "page_token", "next_token", "continuation_token", "pagination_token",
        "bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token",
        "mask_token", "stop_token",
    }
)  # fmt: skip

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_TRAILING_DIGITS = re.compile(r"(?<=[a-z])[0-9]+$")


def _key_words(name: str) -> tuple[str, ...]:
    """``"X-Stripe-ApiKey"`` -> ``("x", "stripe", "api", "key")``."""
    spaced = _CAMEL_BOUNDARY.sub("_", name.strip())
    return tuple(word for word in _NON_WORD.split(spaced.lower()) if word)


def _ends_with(words: tuple[str, ...], phrases: Iterable[tuple[str, ...]]) -> bool:
    return any(phrase and words[-len(phrase) :] == phrase for phrase in phrases)


# -- credential patterns in text --------------------------------------------------------------

_BEARER_CHARS = r"A-Za-z0-9\-._~+/"
# Each pattern is (name, regex); a group named ``keep`` is put back in front of [REDACTED], so
# "Bearer abc..." reads "Bearer [REDACTED]" and a URL keeps its scheme.
CREDENTIAL_PATTERNS: tuple[tuple[str, str], ...] = (
    (
        "pem_private_key",
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
        r"(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|.*\Z)",
    ),
    # A token after "Bearer": at least 16 characters with a digit or punctuation, so "bearer of
    # bad news" is left alone.
    (
        "bearer",
        rf"(?P<keep>\b[Bb][Ee][Aa][Rr][Ee][Rr]\s+)"
        rf"(?=[A-Za-z]*[0-9\-._~+/])[{_BEARER_CHARS}]{{16,}}=*",
    ),
    # user:password in a URL; the password may hold unescaped "@", so up to the last one.
    ("url_userinfo", r"(?P<keep>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#@:]*:[^\s/?#]*(?=@)"),
    ("slack_webhook", r"(?P<keep>https://hooks\.slack\.com/services/)[A-Za-z0-9/_\-]+"),
    ("jwt", r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),
    ("openai_anthropic", r"\bsk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
    ("stripe", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|\bwhsec_[A-Za-z0-9]{20,}"),
    ("github", r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}"),
    ("slack", r"\bxox[baprs]-[A-Za-z0-9\-]{10,}|\bxapp-[0-9]-[A-Za-z0-9\-]{10,}"),
    ("aws_access_key_id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}"),
    ("automate_api_key", r"\bdak_[A-Za-z0-9_\-]{20,}"),
)

# Cheap test run first: text with none of these substrings matches no pattern above (keep the
# two in step). Scanning for the full alternation costs ten times more.
_CREDENTIAL_HINTS = re.compile(
    r"-----BEGIN|[Bb][Ee][Aa][Rr][Ee][Rr]|://|eyJ|sk-|[sr]k_|whsec_|gh[pousr]_|github_pat_"
    r"|xox|xapp-|AKIA|ASIA|AIza|dak_"
)

# HTTP headers whose whole value is a credential, up to the end of the line: a cookie header
# holds several name=value pairs, an authorization header a scheme and a token.
_HEADER_LINE = re.compile(
    r"(?P<keep>(?<![\w-])(?:proxy-)?(?:authorization|set-cookie|cookie|x-api-key)[ \t]*:[ \t]*)"
    r"[^\r\n\"']+",
    re.IGNORECASE,
)

# ``name=value`` / ``name: value`` / ``"name": "value"`` inside free text (log lines, query
# strings, JSON or reprs embedded in a message). Whether ``name`` is sensitive is decided by
# :meth:`Redactor.is_sensitive_key`, the same rule as for dict keys. ``$secret:NAME`` is a
# SecretRef, not a pair: ``$`` before the name rules it out.
_KEY_VALUE = re.compile(
    r"(?<![A-Za-z0-9_.\-$])(?P<name>[A-Za-z][A-Za-z0-9_.\-]{0,63})\\?[\"']?"
    r"(?P<sep>[ \t]*[:=][ \t]*)"
    r"(?P<value>"
    r"\[REDACTED\]"  # already hidden
    r"|\"(?:[^\"\\\r\n]|\\.)*\""  # "double quoted"
    r"|'(?:[^'\\\r\n]|\\.)*'"  # 'single quoted'
    r"|\\\"(?:(?!\\\").)*\\\""  # \"escaped quotes\" (JSON inside a string)
    r"|(?i:(?:bearer|basic|token|digest)[ \t]+)?[^\s\"'&,;}\])]+"  # bare, up to a delimiter
    r")"
)


def _compile_credentials(extra: Iterable[str]) -> re.Pattern[str]:
    # Group names must be unique in the combined pattern: ``keep`` becomes ``keep_<name>``.
    parts = [
        f"(?P<{name}>{regex.replace('(?P<keep>', f'(?P<keep_{name}>')})"
        for name, regex in CREDENTIAL_PATTERNS
    ]
    parts += [f"(?P<extra{i}>{regex})" for i, regex in enumerate(extra)]
    return re.compile("|".join(parts), re.DOTALL)


class Redactor:
    """Hides credentials in values and text. Use the shared one through :func:`redact`.

    ``extra_keys`` are more key names to treat as sensitive (matched as a suffix of words, so
    ``"ssn"`` also hides ``customer_ssn``); ``safe_keys`` are names never hidden;
    ``extra_patterns`` are regular expressions whose matches are hidden in any string.
    """

    def __init__(
        self,
        *,
        extra_keys: Iterable[str] = (),
        safe_keys: Iterable[str] = (),
        extra_patterns: Iterable[str] = (),
    ) -> None:
        self._extra = frozenset(_key_words(k) for k in extra_keys)
        self._safe = frozenset(_key_words(k) for k in (*SAFE_KEYS, *safe_keys))
        extra_patterns = list(extra_patterns)
        self._has_extra_patterns = bool(extra_patterns)
        self._credentials = _compile_credentials(extra_patterns)
        self._key_cache: dict[str, bool] = {}

    # -- keys

    def is_sensitive_key(self, name: str) -> bool:
        """Whether the value under ``name`` is a credential.

        The name is split into words at ``-``, ``_``, ``.``, spaces and camelCase humps
        (``X-Api-Key``, ``api_key``, ``apiKey`` are all ``api key``). It is sensitive when its
        last word is one of :data:`SENSITIVE_WORDS` (``stripe_api_key``, ``client_secret``,
        ``Set-Cookie``) or ends in one of :data:`SENSITIVE_ENDINGS` (``stripeapikey``), after
        dropping trailing :data:`QUALIFIERS` (``password_hash``) and digits (``password2``).
        Whole words are compared, so ``keyword``, ``monkey``, ``max_tokens`` and
        ``token_count`` are not sensitive; names in :data:`SAFE_KEYS` never are.
        """
        cached = self._key_cache.get(name)
        if cached is None:
            cached = self._key_cache[name] = self._classify_key(name)
            if len(self._key_cache) > 4096:
                self._key_cache.clear()
        return cached

    def _classify_key(self, name: str) -> bool:
        words = _key_words(name)
        while len(words) > 1 and words[-1] in QUALIFIERS:
            words = words[:-1]
        if not words or _ends_with(words, self._safe):
            return False
        if _ends_with(words, self._extra):
            return True
        last = _TRAILING_DIGITS.sub("", words[-1])
        return last in SENSITIVE_WORDS or last.endswith(SENSITIVE_ENDINGS)

    # -- values

    def redact(self, value: Any) -> Any:
        """A copy of ``value`` with credentials replaced; ``value`` itself is not touched.

        Walks dicts (any Mapping), lists, tuples (named ones keep their type), sets, dataclass
        instances, strings and bytes. Other objects are returned as they are: redact their
        serialized form (``model_dump()``, ``serializer.data``) instead.
        """
        return self._walk(value, _secret_pattern(current_secret_values()), 0)

    def redact_text(self, text: str) -> str:
        """``text`` with credential-shaped substrings and registered secret values hidden."""
        return self._text(text, _secret_pattern(current_secret_values()))

    def _walk(self, value: Any, secrets: re.Pattern[str] | None, depth: int) -> Any:
        if isinstance(value, str):
            return self._text(value, secrets)
        if value is None or isinstance(value, bool | int | float):
            return value
        if depth >= MAX_DEPTH:
            return REDACTED
        if isinstance(value, Mapping):
            if _is_secret_ref(value):
                return {_REF_KEY: self._text(value[_REF_KEY], secrets)}
            return {
                key: self._hide(item, secrets, depth)
                if isinstance(key, str) and self.is_sensitive_key(key) and _worth_hiding(item)
                else self._walk(item, secrets, depth + 1)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self._walk(item, secrets, depth + 1) for item in value]
        if isinstance(value, tuple):
            items = [self._walk(item, secrets, depth + 1) for item in value]
            return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
        if isinstance(value, set | frozenset):
            return type(value)(self._walk(item, secrets, depth + 1) for item in value)
        if isinstance(value, bytes | bytearray):
            text = bytes(value).decode("utf-8", "surrogateescape")
            redacted = self._text(text, secrets)
            return value if redacted == text else redacted.encode("utf-8", "surrogateescape")
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self._dataclass(value, secrets, depth)
        return value

    def _dataclass(self, value: Any, secrets: re.Pattern[str] | None, depth: int) -> Any:
        changes = {}
        for field in dataclasses.fields(value):
            if not field.init:
                continue
            item = getattr(value, field.name)
            if self.is_sensitive_key(field.name) and _worth_hiding(item):
                new = self._hide(item, secrets, depth)
            else:
                new = self._walk(item, secrets, depth + 1)
            if new is not item:
                changes[field.name] = new
        return dataclasses.replace(value, **changes) if changes else value

    def _hide(self, value: Any, secrets: re.Pattern[str] | None, depth: int) -> Any:
        # A SecretRef names a secret without holding it: keep it, it is what the user wrote
        # (its name still goes through the text rules, in case a value was pasted as a name).
        if _is_secret_ref(value):
            return self._walk(value, secrets, depth + 1)
        return REDACTED

    def _text(self, text: str, secrets: re.Pattern[str] | None) -> str:
        if not text:
            return text
        if secrets is not None:
            text = secrets.sub(REDACTED, text)
        if self._has_extra_patterns or _CREDENTIAL_HINTS.search(text):
            text = self._credentials.sub(_replace_credential, text)
        if ":" in text or "=" in text:
            text = _HEADER_LINE.sub(lambda match: f"{match['keep']}{REDACTED}", text)
            text = _KEY_VALUE.sub(self._key_value, text)
        return text

    def _key_value(self, match: re.Match[str]) -> str:
        value = match["value"]
        if value.strip("\"'\\") in ("", REDACTED) or not self.is_sensitive_key(match["name"]):
            return match[0]
        quote_char = value[0] if value[0] in "\"'" else ('\\"' if value[0] == "\\" else "")
        return (
            f"{match[0][: match.start('value') - match.start()]}{quote_char}{REDACTED}{quote_char}"
        )


def _replace_credential(match: re.Match[str]) -> str:
    # lastgroup is the outermost group that matched: the pattern's name.
    keep = match.groupdict().get(f"keep_{match.lastgroup}")
    return f"{keep}{REDACTED}" if keep else REDACTED


def _worth_hiding(value: Any) -> bool:
    """None, booleans and empty values reveal nothing; showing them helps debugging."""
    if value is None or isinstance(value, bool):
        return False
    return not (isinstance(value, str | bytes | list | tuple | dict) and len(value) == 0)


def _is_secret_ref(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith(_REF_PREFIX)
    return isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get(_REF_KEY), str)


# -- registry of resolved secret values -------------------------------------------------------


class _SecretValues:
    """Secret values known in one scope; a child scope sees its parent's values too.

    Copies of a context (asyncio tasks, ``sync_to_async``, ``copy_context().run`` in a thread
    pool) share the object, so a value registered in any of them is scrubbed in all of them.
    """

    def __init__(self, parent: _SecretValues | None = None) -> None:
        self.parent = parent
        self._own: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        with self._lock:
            self._own.add(value)

    def snapshot(self) -> frozenset[str]:
        with self._lock:
            own = frozenset(self._own)
        return own | self.parent.snapshot() if self.parent else own


_secret_values: contextvars.ContextVar[_SecretValues | None] = contextvars.ContextVar(
    "automate_secret_values", default=None
)


def register_secret_value(value: str) -> None:
    """Scrub ``value`` from everything redacted in this context from now on.

    Called by :func:`automate_core.governance.secrets.resolve_secrets` for every value it
    resolves. Inside :func:`secret_scope` the value is forgotten when the scope ends; outside
    any scope it stays for the life of the current context (thread or task).
    """
    if not isinstance(value, str) or not value:
        return
    values = _secret_values.get()
    if values is None:
        values = _SecretValues()
        _secret_values.set(values)
    for form in _encoded_forms(value):
        values.add(form)


@contextmanager
def secret_scope(*values: str) -> Iterator[None]:
    """Run a block (one step, one request) with its own secret values, forgotten on exit."""
    token = _secret_values.set(_SecretValues(parent=_secret_values.get()))
    try:
        for value in values:
            register_secret_value(value)
        yield
    finally:
        _secret_values.reset(token)


def current_secret_values() -> frozenset[str]:
    """The secret values scrubbed in this context (for tests and diagnostics)."""
    values = _secret_values.get()
    return values.snapshot() if values else frozenset()


def scrub_secret_values(value: Any) -> Any:
    """A copy of ``value`` with only the registered secret values hidden.

    For data that is stored and read back by later steps (step outputs, run context): other
    token-like data there may be legitimate input to the next step, but a resolved secret must
    never be persisted. Display paths use :func:`redact`, which hides everything.
    """
    pattern = _secret_pattern(current_secret_values())
    return value if pattern is None else _scrub(value, pattern)


def _scrub(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(REDACTED, value)
    if isinstance(value, Mapping):
        return {key: _scrub(item, pattern) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(item, pattern) for item in value]
    return value


def _encoded_forms(value: str) -> set[str]:
    """The value as written, URL-encoded and JSON-escaped: the forms it takes in logs."""
    forms = {value, quote(value, safe=""), quote(value, safe="/:")}
    forms.add(value.replace("\\", "\\\\").replace('"', '\\"'))
    return forms


@lru_cache(maxsize=128)
def _secret_pattern(values: frozenset[str]) -> re.Pattern[str] | None:
    usable = sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)
    if not usable:
        return None
    return re.compile("|".join(re.escape(v) for v in usable))


# -- the shared redactor ----------------------------------------------------------------------

_default: Redactor | None = None


def get_redactor() -> Redactor:
    """The redactor configured by ``AUTOMATE["REDACTION_*"]``; rebuilt when settings change."""
    global _default
    if _default is None:
        _default = _build_default()
    return _default


def _build_default() -> Redactor:
    from django.core.exceptions import ImproperlyConfigured

    try:
        from automate_core.conf import automate_settings

        return Redactor(
            extra_keys=automate_settings.REDACTION_EXTRA_KEYS,
            safe_keys=automate_settings.REDACTION_SAFE_KEYS,
            extra_patterns=automate_settings.REDACTION_EXTRA_PATTERNS,
        )
    except ImproperlyConfigured:  # used outside a configured Django project
        return Redactor()


def _reset_default(*, setting: str, **_: Any) -> None:
    global _default
    if setting == "AUTOMATE":
        _default = None


setting_changed.connect(_reset_default, weak=False)


def redact(value: Any) -> Any:
    """A copy of ``value`` with every credential replaced by ``[REDACTED]``."""
    return get_redactor().redact(value)


def redact_text(text: str) -> str:
    """``text`` with every credential replaced by ``[REDACTED]``."""
    return get_redactor().redact_text(text)


def is_sensitive_key(name: str) -> bool:
    """Whether values under the key ``name`` are hidden; see :meth:`Redactor.is_sensitive_key`."""
    return get_redactor().is_sensitive_key(name)


# -- logging ----------------------------------------------------------------------------------

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is redacted.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "trace_id",
}


class RedactingLogFilter(logging.Filter):
    """Scrubs a record's message, arguments, ``extra=`` fields and traceback text.

    Attach it to *handlers* (``"filters": ["redact"]``): a filter on a logger does not see
    records propagated from child loggers. It never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = get_redactor()
        secrets = _secret_pattern(current_secret_values())
        # The finished message is what leaks ("token=%s" % raw): scrub it, not the template.
        try:
            message = record.getMessage()
        except Exception:  # a broken format string; let the handler report it, scrubbed
            record.msg = redactor._walk(record.msg, secrets, 0)
            record.args = redactor._walk(record.args, secrets, 0)
        else:
            record.msg, record.args = redactor._text(message, secrets), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor._text(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = redactor._text(record.stack_info, secrets)
        for name, value in list(vars(record).items()):
            if name in _RECORD_ATTRS:
                continue
            if redactor.is_sensitive_key(name) and _worth_hiding(value):
                setattr(record, name, REDACTED)
            else:
                setattr(record, name, redactor._walk(value, secrets, 0))
        return True
