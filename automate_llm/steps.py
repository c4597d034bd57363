"""AI step types for JSON-graph workflows: ``llm.chat``, ``llm.prompt``, ``llm.structured`` and
``llm.agent`` (the agent lives in :mod:`automate_llm.agent`).

.. code-block:: json

    {"type": "llm.prompt", "prompt": "triage", "label": "production",
     "variables": {"ticket": "{{ event.payload.text }}"}, "next": "route"}

Every call is made with the step's idempotency key (stable across retries), attributed to the
run (execution, step, workflow budget scope, trace) and metered. The output carries the answer,
its ``usage`` with ``cost``, the ``LLMRequest`` id and, for prompts, the version used; the
run's ``usage`` adds up every AI step's.

Code-first workflows call the same functions through :func:`chat`, :func:`prompt` and
:func:`structured` inside a ``@step``: they pick up the running step for attribution.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from automate_core.tenancy.models import Tenant
from automate_core.workflows.steps import (
    Node,
    Problem,
    StepCall,
    StepResult,
    StepType,
    current_step_call,
    register_step_type,
    render_value,
    step_tenant,
)
from automate_llm import prompts, services
from automate_llm.errors import NoProviderConfigured
from automate_llm.metering import CallContext
from automate_llm.models import PromptVersion
from automate_llm.services import ChatResponse, StructuredResponse
from automate_llm.types import ChatMessage

#: Node fields passed to the call as they are (after rendering).
CALL_FIELDS = ("model", "provider", "max_tokens", "temperature", "params")
ROLES = ("system", "user", "assistant")


def ai_step_tenant(call: StepCall) -> Tenant:
    """The run's tenant, whose providers and budgets an AI step uses."""
    return step_tenant(
        call, missing=NoProviderConfigured("AI steps need a run that belongs to a tenant")
    )


def response_output(response: ChatResponse) -> dict[str, Any]:
    """What an AI step stores: the answer, usage and cost, and where the call is recorded."""
    result = response.result
    return {
        "text": result.text,
        "tool_calls": [c.model_dump(mode="json") for c in result.tool_calls],
        "finish_reason": result.finish_reason,
        "provider": response.provider,
        "model": response.model,
        "request_id": str(response.request_id) if response.request_id else None,
        "usage": response.usage.model_dump(mode="json"),
    }


# -- conversation --------------------------------------------------------------------------------


def conversation(
    node: Node, scope: Mapping[str, Any], tenant: Tenant
) -> tuple[list[ChatMessage], PromptVersion | None]:
    """The messages a node asks with: a prompt (slug + version or label + variables) rendered,
    or ``system`` / ``messages`` / ``user`` templates rendered over the step's scope."""
    if node.get("prompt"):
        version = prompts.resolve(
            tenant, node["prompt"], version=node.get("version"), label=node.get("label")
        )
        variables = render_value(node.get("variables") or {}, scope, "variables")
        return prompts.render(version, variables), version
    messages: list[ChatMessage] = []
    if node.get("system"):
        messages.append(
            ChatMessage(role="system", content=str(render_value(node["system"], scope, "system")))
        )
    for i, message in enumerate(node.get("messages") or []):
        content = render_value(message.get("content", ""), scope, f"messages[{i}].content")
        messages.append(ChatMessage(role=message["role"], content=str(content)))
    if node.get("user"):
        messages.append(
            ChatMessage(role="user", content=str(render_value(node["user"], scope, "user")))
        )
    return messages, None


def call_options(node: Node, scope: Mapping[str, Any], version: PromptVersion | None) -> dict:
    """Model and parameters: the node's, over the prompt version's defaults."""
    options: dict[str, Any] = {}
    if version is not None:
        if version.model:
            options["model"] = version.model
        options.update({k: v for k, v in (version.params or {}).items() if k in CALL_FIELDS})
    for field in CALL_FIELDS:
        if node.get(field) is not None:
            options[field] = render_value(node[field], scope, field)
    return options


def _prompt_output(version: PromptVersion | None) -> dict[str, Any]:
    if version is None:
        return {}
    return {"prompt": {"slug": version.prompt.slug, "version": version.version}}


# -- step types ----------------------------------------------------------------------------------


def _chat_step(node: Node, call: StepCall) -> StepResult:
    tenant = ai_step_tenant(call)
    scope = call.scope()
    messages, version = conversation(node, scope, tenant)
    context = CallContext.for_step(call)
    if version is not None:
        context = dataclasses.replace(context, prompt_version=version)
    response = services.chat(
        tenant=tenant, messages=messages, context=context, **call_options(node, scope, version)
    )
    return StepResult(output={**response_output(response), **_prompt_output(version)})


def _structured_step(node: Node, call: StepCall) -> StepResult:
    tenant = ai_step_tenant(call)
    scope = call.scope()
    messages, version = conversation(node, scope, tenant)
    context = CallContext.for_step(call)
    if version is not None:
        context = dataclasses.replace(context, prompt_version=version)
    options = call_options(node, scope, version)
    options.pop("params", None)
    response = services.structured(
        tenant=tenant,
        messages=messages,
        schema=node["schema"],
        context=context,
        params=render_value(node.get("params") or {}, scope, "params"),
        **options,
    )
    return StepResult(
        output={
            **response_output(response),
            **_prompt_output(version),
            "value": response.value,
            "repaired": response.repaired,
        }
    )


def validate_conversation(node: Node, path: str) -> list[Problem]:
    """The checks every AI node shares: where its messages come from, and its call fields."""
    problems: list[Problem] = []
    if node.get("prompt"):
        if not isinstance(node["prompt"], str):
            problems.append((f"{path}.prompt", "must be a prompt slug"))
        if node.get("version") is not None and node.get("label") is not None:
            problems.append((f"{path}.label", "name a version or a label, not both"))
        if not isinstance(node.get("variables") or {}, Mapping):
            problems.append((f"{path}.variables", "must be an object"))
        return problems
    messages = node.get("messages") or []
    if not isinstance(messages, list):
        return [(f"{path}.messages", "must be a list of {role, content}")]
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or message.get("role") not in ROLES:
            problems.append(
                (f"{path}.messages[{i}]", f"needs a role ({', '.join(ROLES)}) and content")
            )
    if not (node.get("system") or node.get("user") or messages):
        problems.append((path, "needs a prompt, or system / messages / user"))
    return problems


def _validate_prompt(node: Node, path: str) -> list[Problem]:
    if not node.get("prompt"):
        return [(f"{path}.prompt", "is required")]
    return validate_conversation(node, path)


def _validate_structured(node: Node, path: str) -> list[Problem]:
    problems = validate_conversation(node, path)
    schema = node.get("schema")
    if not isinstance(schema, Mapping) or not schema:
        problems.append((f"{path}.schema", "must be a JSON schema object"))
    return problems


# -- code-first ----------------------------------------------------------------------------------


def _running_step() -> tuple[StepCall, Tenant]:
    call = current_step_call()
    return call, ai_step_tenant(call)


def chat(messages: Sequence[ChatMessage | Mapping[str, Any]], **options: Any) -> ChatResponse:
    """``services.chat`` from inside a code-first ``@step``, attributed to the running step."""
    call, tenant = _running_step()
    return services.chat(
        tenant=tenant, messages=messages, context=CallContext.for_step(call), **options
    )


def structured(
    messages: Sequence[ChatMessage | Mapping[str, Any]], schema: Any, **options: Any
) -> StructuredResponse:
    """``services.structured`` from inside a code-first ``@step`` (``schema``: a JSON schema or
    a pydantic model class)."""
    call, tenant = _running_step()
    return services.structured(
        tenant=tenant,
        messages=messages,
        schema=schema,
        context=CallContext.for_step(call),
        **options,
    )


def prompt(
    slug: str,
    variables: Mapping[str, Any] | None = None,
    *,
    version: int | None = None,
    label: str | None = None,
    **options: Any,
) -> ChatResponse:
    """Render prompt ``slug`` (a version or a label; ``production`` by default) and ask it."""
    call, tenant = _running_step()
    found = prompts.resolve(tenant, slug, version=version, label=label)
    context = dataclasses.replace(CallContext.for_step(call), prompt_version=found)
    return services.chat(
        tenant=tenant,
        messages=prompts.render(found, variables or {}),
        context=context,
        **{**call_options({}, {}, found), **options},
    )


register_step_type("llm.chat", StepType(_chat_step, validate_conversation))
register_step_type("llm.prompt", StepType(_chat_step, _validate_prompt))
register_step_type("llm.structured", StepType(_structured_step, _validate_structured))
