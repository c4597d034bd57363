"""Configs hold SecretRefs, never credentials: the checks that refuse a credential written in
clear where a reference belongs, shared by the admin forms and the management API.

A value counts as a credential in clear when the governance redactor would hide it (by its key,
e.g. ``api_key``, or by its shape, e.g. ``sk-...``), or when it already is a redacted
placeholder sent back from a display.
"""

from __future__ import annotations

from typing import Any

from automate_core.errors import AutomateError
from automate_core.governance.redaction import REDACTED, redact, redact_text
from automate_core.governance.secrets import SecretRef, find_secret_refs


class CredentialInClearError(AutomateError):
    """A config or a secret name holds what looks like the secret itself."""

    status_code = 400
    code = "credential_in_clear"
    default_message = "Store the credential as a secret and reference it with a SecretRef."


def credentials_in_clear(config: Any, path: str = "config") -> list[str]:
    """Paths in ``config`` where the redactor would hide something (a raw credential) or has
    already hidden it (a redacted value shown by a display and sent back)."""
    cleaned = redact(config)
    found: list[str] = []

    def walk(original: Any, redacted: Any, where: str) -> None:
        if isinstance(original, dict) and isinstance(redacted, dict):
            for key, value in original.items():
                walk(value, redacted.get(key), f"{where}.{key}")
        elif isinstance(original, list) and isinstance(redacted, list):
            for index, (a, b) in enumerate(zip(original, redacted, strict=False)):
                walk(a, b, f"{where}[{index}]")
        elif original != redacted or (isinstance(original, str) and REDACTED in original):
            found.append(where)

    walk(config, cleaned, path)
    return found


def check_config(config: Any, path: str = "config") -> None:
    """Refuses malformed SecretRefs (InvalidSecretRefError) and credentials in clear
    (CredentialInClearError, naming each path, never the value)."""
    find_secret_refs(config)
    found = credentials_in_clear(config, path)
    if found:
        raise CredentialInClearError(
            f"{', '.join(found)} holds a credential in clear (or redacted): store it as a "
            'secret and write {"$secret": "NAME"} instead.',
            details={"paths": found},
        )


def secret_name(value: Any, path: str = "secret_ref") -> str:
    """The secret name in ``value``: ``NAME``, ``"$secret:NAME"`` or ``{"$secret": "NAME"}``.

    Refuses a malformed name (InvalidSecretRefError) and a value that looks like the secret
    itself rather than its name (CredentialInClearError).
    """
    ref = SecretRef.parse(value, path=path) or SecretRef.parse(f"$secret:{value}", path=path)
    assert ref is not None  # a "$secret:" string always parses or raises
    if redact_text(ref.name) != ref.name or REDACTED in ref.name:
        raise CredentialInClearError(
            f"{path} looks like a credential, not the name of one: store the value as a "
            "secret and give its name.",
            details={"path": path},
        )
    return ref.name
