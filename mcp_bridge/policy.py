"""Per-tool argument policy and the approved input schema: what a call may send.

Applied in this order, before anything reaches the server: forbidden keys are refused, fixed
values replace the caller's, allowed lists bound values, then the arguments are validated
against the *approved* definition's input schema (JSON Schema, draft 2020-12 unless the schema
names another).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
from django.core.exceptions import ValidationError

from mcp_bridge.errors import InvalidToolArguments

POLICY_KEYS = {"fixed", "allowed", "forbidden"}


def check_argument_policy(policy: Any) -> None:
    """Raise ValidationError unless ``policy`` has the documented shape."""
    if not isinstance(policy, Mapping):
        raise ValidationError("the argument policy must be an object")
    problems: list[str] = []
    unknown = set(policy) - POLICY_KEYS
    if unknown:
        problems.append(f"unknown keys: {', '.join(sorted(unknown))}")
    if not isinstance(policy.get("fixed", {}), Mapping):
        problems.append('"fixed" must be an object of argument -> value')
    allowed = policy.get("allowed", {})
    if not isinstance(allowed, Mapping) or not all(isinstance(v, list) for v in allowed.values()):
        problems.append('"allowed" must be an object of argument -> list of values')
    forbidden = policy.get("forbidden", [])
    if not isinstance(forbidden, list) or not all(isinstance(k, str) for k in forbidden):
        problems.append('"forbidden" must be a list of argument names')
    if problems:
        raise ValidationError(problems)


def apply_argument_policy(
    policy: Mapping[str, Any], arguments: Mapping[str, Any]
) -> dict[str, Any]:
    """The arguments to send under ``policy``, or InvalidToolArguments naming what broke it."""
    forbidden = sorted(set(policy.get("forbidden") or []) & set(arguments))
    if forbidden:
        raise InvalidToolArguments(
            f"argument(s) not allowed for this tool: {', '.join(forbidden)}",
            details={"forbidden": forbidden},
        )
    sent = {**arguments, **(policy.get("fixed") or {})}
    for name, values in (policy.get("allowed") or {}).items():
        if name in sent and sent[name] not in values:
            raise InvalidToolArguments(
                f"argument {name!r} must be one of the allowed values",
                details={"argument": name, "allowed": values},
            )
    return sent


#: Compiled validators by the pin of the approved definition (the pin covers its input
#: schema), so a tool's schema is compiled once rather than on every call.
_validators: dict[str, Any] = {}
VALIDATORS_KEPT = 1024


def _validator(schema: Mapping[str, Any], pin: str | None) -> Any:
    validator = _validators.get(pin) if pin else None
    if validator is None:
        validator_class = jsonschema.validators.validator_for(
            schema, default=jsonschema.Draft202012Validator
        )
        validator = validator_class(schema)
        if pin:
            if len(_validators) >= VALIDATORS_KEPT:
                _validators.clear()
            _validators[pin] = validator
    return validator


def validate_arguments(
    schema: Mapping[str, Any], arguments: Mapping[str, Any], *, pin: str | None = None
) -> None:
    """Raise InvalidToolArguments listing every way ``arguments`` break ``schema``; ``pin``
    (the pin of the definition ``schema`` comes from) keeps the compiled schema for reuse."""
    errors = sorted(_validator(schema, pin).iter_errors(dict(arguments)), key=lambda e: e.path)
    if errors:
        problems = [
            {"path": "/".join(str(p) for p in error.absolute_path), "message": error.message}
            for error in errors
        ]
        raise InvalidToolArguments(
            "; ".join(f"{p['path'] or '(root)'}: {p['message']}" for p in problems),
            details={"problems": problems},
        )
