"""What an MCP client of the platform may list and call, decided per caller (sync code).

A caller is an API key (its tenant, its resource scopes), or a client of a tenant's public
exposure (only the tools it published, nothing else). What a key sees:

* tools ``start_<workflow>``: one per automation with a live version, and per code-first
  workflow named in ``AUTOMATE_MCP["SERVER_CODE_WORKFLOWS"]``, that the key may start
  (scope ``workflow:<name>``); the input schema is the workflow's Context;
* ``get_execution``: status and result of a run the key may see (its workflow's scope, or
  ``executions:manage``);
* ``query_<endpoint>`` and ``answer_<endpoint>``: each active RAG endpoint of the tenant the
  key may use (``rag:<endpoint>``), through ``rag.services``;
* prompts ``<prompt>.<label>``: each label of the tenant's prompts (``prompts:read``), with
  the version's declared variables as arguments;
* resources ``automate://executions/{id}``: a run as JSON; ``documents://<endpoint>/<id>``:
  each document of an endpoint the key may use (``rag:<endpoint>``), as ``rag.services``
  lists it (only what the endpoint could cite), read as its text.

A call is looked up in the caller's own listing, so nothing unlisted is ever callable, and
another tenant's rows are never found (every query is ``for_tenant``).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import mcp_types

from automate_core.errors import InvalidInputError, NotFoundError
from automate_core.executions.models import Execution
from automate_core.tenancy.models import APIKey, Tenant
from automate_core.tracing import new_trace_id
from automate_core.workflows import engine, registry
from automate_core.workflows.models import Automation
from automate_llm import services as llm
from mcp_bridge.conf import mcp_settings
from mcp_bridge.models import PublicMCPExposure
from rag import services as rag

EXECUTION_URI = "automate://executions/{id}"
DOCUMENT_URI = "documents://{endpoint}/{id}"
#: Documents listed per endpoint by ``resources/list`` (each is readable by URI regardless).
DOCUMENTS_LISTED = 100
OPEN_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}


@dataclass(frozen=True)
class Caller:
    """Who is asking: a tenant, and the API key whose scopes bound what it sees."""

    tenant: Tenant
    key: APIKey | None = None
    #: For a public exposure: the only tool names it may list (None: any the key allows).
    published: frozenset[str] | None = None
    #: Who is rate limited: the key, or a public exposure's client address.
    identity: str = ""
    rate: str = ""

    def allows(self, resource: str) -> bool:
        return self.key is None or self.key.allows(resource)

    @property
    def actor(self) -> str:
        if self.key is not None:
            return f"api_key:{self.key.prefix}"
        return f"mcp.public:{self.identity}"

    @classmethod
    def of_key(cls, key: APIKey) -> Caller:
        return cls(
            tenant=key.tenant,
            key=key,
            identity=f"api_key:{key.pk}",
            rate=str(mcp_settings.SERVER_RATE_LIMIT),
        )

    @classmethod
    def of_exposure(cls, exposure: PublicMCPExposure, client: str) -> Caller:
        return cls(
            tenant=exposure.tenant,
            published=frozenset(exposure.tools or []),
            identity=f"{exposure.pk}:{client}",
            rate=exposure.rate_limit,
        )


@dataclass(frozen=True)
class Entry:
    tool: mcp_types.Tool
    run: Callable[[Caller, dict[str, Any]], Any] = field(repr=False)


class NotListed(NotFoundError):
    code = "mcp_not_listed"
    default_message = "No such tool, prompt or resource for this key."


# -- tools ---------------------------------------------------------------------------------------


def tools(caller: Caller) -> dict[str, Entry]:
    """Every tool ``caller`` may call, by name."""
    entries: dict[str, Entry] = {}
    for name, schema, description in _workflows(caller):
        entries[f"start_{name}"] = Entry(
            mcp_types.Tool(
                name=f"start_{name}",
                description=description or f"Start a run of the workflow {name!r}.",
                input_schema=schema,
            ),
            _starter(name),
        )
    if any(e.startswith("start_") for e in entries) or caller.allows("executions:manage"):
        entries["get_execution"] = Entry(
            mcp_types.Tool(
                name="get_execution",
                description="The status and result of a workflow run.",
                input_schema={
                    "type": "object",
                    "properties": {"execution_id": {"type": "string", "format": "uuid"}},
                    "required": ["execution_id"],
                },
            ),
            _get_execution,
        )
    for slug, name in _endpoints(caller):
        entries.update(_rag_entries(slug, name))
    if caller.published is not None:
        entries = {k: v for k, v in entries.items() if k in caller.published}
    return entries


def call(caller: Caller, name: str, arguments: Mapping[str, Any]) -> Any:
    """Run tool ``name`` for ``caller``; NotListed unless the caller's listing has it."""
    entry = tools(caller).get(name)
    if entry is None:
        raise NotListed(f"No tool {name!r} for this key")
    return entry.run(caller, dict(arguments))


def _workflows(caller: Caller) -> list[tuple[str, dict[str, Any], str]]:
    found: list[tuple[str, dict[str, Any], str]] = []
    live = Automation.objects.for_tenant(caller.tenant).filter(versions__is_live=True)
    for automation in live.order_by("slug"):
        if caller.allows(f"workflow:{automation.slug}"):
            found.append((automation.slug, OPEN_OBJECT, automation.description))
    for name in mcp_settings.SERVER_CODE_WORKFLOWS or []:
        compiled = registry.get(name)
        if compiled is not None and caller.allows(f"workflow:{name}"):
            model = compiled.context_model
            schema = model.model_json_schema() if model is not None else OPEN_OBJECT
            found.append((name, schema, (model.__doc__ or "") if model is not None else ""))
    return found


#: Keyword names of ``engine.start`` that a run's context cannot use as start arguments.
RESERVED = frozenset(inspect.signature(engine.start).parameters) - {"kwargs"}


def _starter(name: str) -> Callable[[Caller, dict[str, Any]], Any]:
    def start(caller: Caller, arguments: dict[str, Any]) -> Any:
        taken = sorted(RESERVED & set(arguments))
        if taken:
            raise InvalidInputError(f"These names cannot be start arguments: {', '.join(taken)}")
        run = engine.start(name, tenant=caller.tenant, trace_id=new_trace_id(), **arguments)
        return _execution_json(run)

    return start


def _get_execution(caller: Caller, arguments: dict[str, Any]) -> Any:
    return _execution_json(_execution(caller, str(arguments.get("execution_id", ""))))


def _execution(caller: Caller, key: str) -> Execution:
    run = None
    if _is_uuid(key):
        run = Execution.objects.filter(tenant=caller.tenant, pk=key).first()
    if run is None or not (
        caller.allows(f"workflow:{run.workflow_name}") or caller.allows("executions:manage")
    ):
        raise NotListed("No such execution for this key")
    return run


def _execution_json(run: Execution) -> dict[str, Any]:
    return {
        "execution_id": str(run.pk),
        "workflow": run.workflow_name,
        "status": run.status,
        "result": run.result,
        "error": run.error or None,
        "uri": EXECUTION_URI.format(id=run.pk),
    }


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _endpoints(caller: Caller) -> list[tuple[str, str]]:
    # rag.services has no listing of its own; its model is reached through it, read-only.
    rows = rag.RAGEndpoint.objects.for_tenant(caller.tenant).filter(is_active=True)
    return [
        (slug, name)
        for slug, name in rows.order_by("slug").values_list("slug", "name")
        if caller.allows(f"rag:{slug}")
    ]


QUESTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "minLength": 1},
        "top_k": {"type": "integer", "minimum": 1},
    },
    "required": ["query"],
}


def _rag_entries(slug: str, name: str) -> dict[str, Entry]:
    def query(caller: Caller, arguments: dict[str, Any]) -> Any:
        endpoint = rag.get_endpoint(caller.tenant, slug)
        return rag.query(endpoint, arguments.get("query", ""), top_k=arguments.get("top_k"))

    def answer(caller: Caller, arguments: dict[str, Any]) -> Any:
        endpoint = rag.get_endpoint(caller.tenant, slug)
        context = llm.CallContext(
            api_key_id=caller.key.pk if caller.key is not None else None,
            trace_id=new_trace_id(),
            idempotency_key=f"mcp-rag-answer:{uuid.uuid4().hex}",
        )
        question = arguments.get("query", "")
        return rag.answer(endpoint, question, top_k=arguments.get("top_k"), context=context)

    return {
        f"query_{slug}": Entry(
            mcp_types.Tool(
                name=f"query_{slug}",
                description=f"Search {name}: the passages that best match the query.",
                input_schema=QUESTION_SCHEMA,
            ),
            lambda caller, arguments: query(caller, arguments).to_json(),
        ),
        f"answer_{slug}": Entry(
            mcp_types.Tool(
                name=f"answer_{slug}",
                description=f"Answer a question from {name}, citing its passages.",
                input_schema=QUESTION_SCHEMA,
            ),
            lambda caller, arguments: answer(caller, arguments).to_json(),
        ),
    }


# -- prompts -------------------------------------------------------------------------------------


def prompts(caller: Caller) -> dict[str, llm.LabelledPrompt]:
    """The tenant's labelled prompts by MCP name (``<prompt>.<label>``), for ``prompts:read``."""
    if caller.published is not None or not caller.allows("prompts:read"):
        return {}
    return {f"{p.slug}.{p.label}": p for p in llm.labelled_prompts(caller.tenant)}


def prompt_json(name: str, prompt: llm.LabelledPrompt) -> mcp_types.Prompt:
    properties = prompt.variables.get("properties") or {}
    return mcp_types.Prompt(
        name=name,
        description=prompt.description or f"{prompt.slug} v{prompt.version} ({prompt.label})",
        arguments=[
            mcp_types.PromptArgument(
                name=variable,
                description=(spec or {}).get("description"),
                required=variable in prompt.required,
            )
            for variable, spec in properties.items()
        ],
    )


def render(caller: Caller, name: str, arguments: Mapping[str, Any]) -> list[Any]:
    prompt = prompts(caller).get(name)
    if prompt is None:
        raise NotListed(f"No prompt {name!r} for this key")
    return llm.render_prompt(caller.tenant, prompt.slug, prompt.label, arguments)


# -- resources -----------------------------------------------------------------------------------


def documents(caller: Caller) -> list[mcp_types.Resource]:
    """The documents of each endpoint the key may use (none for a public exposure)."""
    if caller.published is not None:
        return []
    found: list[mcp_types.Resource] = []
    for slug, _name in _endpoints(caller):
        endpoint = rag.get_endpoint(caller.tenant, slug)
        for document in rag.list_endpoint_documents(endpoint, limit=DOCUMENTS_LISTED):
            found.append(
                mcp_types.Resource(
                    uri=DOCUMENT_URI.format(endpoint=slug, id=document.id),
                    name=document.title or document.external_id,
                    description=f"{document.external_id} ({document.source})",
                    mime_type=document.content_type or "text/plain",
                )
            )
    return found


def read(caller: Caller, uri: str) -> tuple[str, Any]:
    """Resource ``uri`` as (MIME type, value): an execution's JSON, or a document's text."""
    executions = EXECUTION_URI.split("{", 1)[0]
    documents_prefix = DOCUMENT_URI.split("{", 1)[0]
    if caller.published is None and uri.startswith(executions):
        return "application/json", _execution_json(_execution(caller, uri[len(executions) :]))
    if caller.published is None and uri.startswith(documents_prefix):
        slug, _, document_id = uri[len(documents_prefix) :].partition("/")
        if caller.allows(f"rag:{slug}"):
            endpoint = rag.get_endpoint(caller.tenant, slug)
            document = rag.get_endpoint_document(endpoint, document_id)
            return document.content_type or "text/plain", document.text
    raise NotListed(f"No resource {uri!r} for this key")
