"""Step inputs rendered with a sandboxed Jinja2 environment.

Templates see ``event``, ``context`` and ``steps.<id>.output`` and nothing else: the sandbox
blocks attribute tricks (``__class__``, ``mro``...), undefined names are errors rather than empty
strings, and output size is bounded. Any problem is a :class:`TemplateRenderError` whose message
names the template path, so a bad input fails the step clearly instead of crashing a worker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from automate_core.errors import InvalidInputError

MAX_OUTPUT_CHARS = 1_000_000


class TemplateRenderError(InvalidInputError):
    code = "template_error"


class _StepInputEnvironment(ImmutableSandboxedEnvironment):
    """``payload.items`` means the key ``items``, not the dict method: inputs are JSON data."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


@cache
def environment() -> ImmutableSandboxedEnvironment:
    env = _StepInputEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters["tojson"] = lambda value: json.dumps(value, default=str)
    return env


def render_value(value: Any, scope: Mapping[str, Any], path: str = "input") -> Any:
    """Render every template string inside ``value`` (dicts and lists are walked).

    A string that is exactly one ``{{ expression }}`` keeps the expression's type (a list stays
    a list); other strings render to text.
    """
    if isinstance(value, str):
        return _render_string(value, scope, path)
    if isinstance(value, Mapping):
        return {k: render_value(v, scope, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(v, scope, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _render_string(text: str, scope: Mapping[str, Any], path: str) -> Any:
    if "{{" not in text and "{%" not in text:
        return text
    env = environment()
    try:
        expression = _single_expression(text)
        if expression is not None:
            result = env.compile_expression(expression, undefined_to_none=False)(**scope)
            if isinstance(result, Undefined):
                result._fail_with_undefined_error()
            return result
        rendered = env.from_string(text).render(**scope)
    except Exception as exc:  # a template may raise anything; it must fail the step, not the worker
        message = exc.message if isinstance(exc, TemplateError) else str(exc)
        raise TemplateRenderError(
            f"Template at {path} failed: {message or type(exc).__name__}",
            details={"path": path, "template": text[:200]},
        ) from None
    if len(rendered) > MAX_OUTPUT_CHARS:
        raise TemplateRenderError(f"Template at {path} rendered more than {MAX_OUTPUT_CHARS} chars")
    return rendered


def _single_expression(text: str) -> str | None:
    stripped = text.strip()
    if not (stripped.startswith("{{") and stripped.endswith("}}")):
        return None
    inner = stripped[2:-2]
    if "{{" in inner or "}}" in inner or "{%" in inner:
        return None
    parsed = environment().parse(stripped)
    body = parsed.body
    if len(body) == 1 and isinstance(body[0], nodes.Output) and len(body[0].nodes) == 1:
        return inner
    return None
