"""The platform as an MCP server at ``/mcp``: the SDK's client against the mounted ASGI app,
served by uvicorn on loopback (streamable HTTP, the real protocol)."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest
from django.core.asgi import get_asgi_application
from django.db import connections
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from automate_core.governance.models import AuditLog
from automate_core.tenancy.models import APIKey
from automate_core.testing.live_server import serve_asgi
from automate_core.workflows.models import Automation
from automate_llm import prompts
from mcp_bridge.exposure.asgi import MCPMount
from rag import services as rag
from rag.models import EmbeddingModel, KnowledgeSource, RAGEndpoint

pytestmark = pytest.mark.django_db(transaction=True)

GREET = {
    "start": "hi",
    "steps": {"hi": {"type": "complete", "result": {"hello": "{{ context.person }}"}}},
}


def _session(url: str, key: str | None, work: Any, *, path: str = "/mcp", **options: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}

    async def run() -> Any:
        async with (
            httpx2.AsyncClient(headers=headers, timeout=20) as http,
            Client(streamable_http_client(f"{url}{path}", http_client=http), **options) as client,
        ):
            return await work(client)

    return anyio.run(run)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _tool_names(url: str, key: str) -> set[str]:
    async def names(client: Client) -> set[str]:
        return {tool.name for tool in (await client.list_tools()).tools}

    return _session(url, key, names)


def _key(tenant, *scopes: str) -> str:
    return APIKey.issue(tenant=tenant, name="mcp", scopes=list(scopes))[1]


def _automation(tenant, slug: str = "greet") -> None:
    Automation.objects.create(tenant=tenant, name=slug, slug=slug).new_version(GREET).publish()


def _endpoint(tenant, slug: str) -> RAGEndpoint:
    model = EmbeddingModel.objects.create(tenant=tenant, name=f"{slug} model")
    return RAGEndpoint.objects.create(tenant=tenant, name=slug, slug=slug, embedding_model=model)


def _document(endpoint: RAGEndpoint, name: str, text: str) -> str:
    """Push a document into a new source of ``endpoint``; its MCP resource URI."""
    source = KnowledgeSource.objects.create(tenant=endpoint.tenant, name=name, type="api")
    endpoint.sources.add(source)
    document, _ = rag.push_document(
        source, external_id=name, data=text.encode(), content_type="text/markdown"
    )
    return f"documents://{endpoint.slug}/{document.pk}"


def test_an_unscoped_key_lists_its_tenants_workflows_and_endpoints(site, tenant):
    _automation(tenant)
    _endpoint(tenant, "docs")

    names = _tool_names(site, _key(tenant))

    assert names == {"start_greet", "get_execution", "query_docs", "answer_docs"}


def test_a_key_without_the_scope_sees_no_tools(site, tenant):
    _automation(tenant)
    _endpoint(tenant, "docs")

    assert _tool_names(site, _key(tenant, "llm:usage")) == set()


def test_a_key_sees_only_what_its_scopes_name(site, tenant):
    _automation(tenant)
    _endpoint(tenant, "docs")
    _endpoint(tenant, "internal")

    assert _tool_names(site, _key(tenant, "rag:docs")) == {"query_docs", "answer_docs"}


def test_a_key_lists_and_reads_the_documents_of_its_endpoints_only(site, tenant):
    docs = _document(_endpoint(tenant, "docs"), "refunds.md", "# Refunds\n\nFive days.")
    internal = _document(_endpoint(tenant, "internal"), "salaries.md", "# Salaries")

    async def list_and_read(client: Client) -> tuple[set[str], str]:
        listed = {str(r.uri) for r in (await client.list_resources()).resources}
        read = await client.read_resource(docs)
        return listed, read.contents[0].text

    listed, text = _session(site, _key(tenant, "rag:docs"), list_and_read)

    assert listed == {docs}
    assert "Five days." in text
    with pytest.raises(BaseException) as refused:
        _session(site, _key(tenant, "rag:docs"), lambda client: client.read_resource(internal))
    assert "No resource" in str(_leaves(refused.value))


def test_another_tenants_endpoints_are_never_listed(site, tenant, other_tenant):
    _endpoint(other_tenant, "secret-docs")
    _automation(other_tenant, "their-flow")

    assert _tool_names(site, _key(tenant)) == {"get_execution"}


def test_a_tool_starts_the_workflow_and_get_execution_reads_it(site, tenant):
    _automation(tenant)
    key = _key(tenant, "workflow:greet")

    async def start_and_read(client: Client) -> tuple[Any, Any]:
        started = await client.call_tool("start_greet", {"person": "Ada"})
        run_id = started.structured_content["execution_id"]
        read = await client.call_tool("get_execution", {"execution_id": run_id})
        return started, read

    started, read = _session(site, key, start_and_read)

    assert not started.is_error
    assert read.structured_content["workflow"] == "greet"
    assert AuditLog.objects.filter(action="mcp.server.call", target="mcp:start_greet").exists()


def test_log_messages_reach_a_client_at_or_above_the_level_it_set(site, tenant):
    _automation(tenant)
    received: list[tuple[str, Any]] = []

    async def collect(params: Any) -> None:
        received.append((params.level, params.data))

    async def calls(client: Client) -> None:
        await client.set_logging_level("warning")
        await client.call_tool("start_greet", {"person": "Ada"})  # info: below the level
        await client.call_tool("start_greet", {"person": "Ada", "trace_id": "mine"})  # refused

    _session(site, _key(tenant), calls, mode="legacy", logging_callback=collect)

    assert [(level, data["error"]) for level, data in received] == [("error", "invalid_input")]


def test_an_unlisted_tool_is_refused(site, tenant, other_tenant):
    _automation(other_tenant, "their-flow")

    async def call(client: Client) -> Any:
        return await client.call_tool("start_their-flow", {})

    with pytest.raises(BaseException) as raised:
        _session(site, _key(tenant), call)

    assert "No tool 'start_their-flow'" in str(_leaves(raised.value))


def test_labelled_prompts_are_listed_with_their_variables_and_rendered(site, tenant):
    prompt = prompts.create_prompt(tenant, name="Summarize")
    version = prompts.create_version(
        prompt,
        user_template="Summarize {{ text }}",
        variables={"type": "object", "properties": {"text": {"type": "string"}}},
    )
    prompts.publish(version, label="production")

    async def use(client: Client) -> Any:
        listed = (await client.list_prompts()).prompts
        got = await client.get_prompt("summarize.production", {"text": "the report"})
        return listed, got

    listed, got = _session(site, _key(tenant, "prompts:read"), use)

    assert [(p.name, [a.name for a in p.arguments or []]) for p in listed] == [
        ("summarize.production", ["text"])
    ]
    assert got.messages[0].content.text == "Summarize the report"


def test_a_request_without_a_key_is_a_401_naming_the_resource_metadata(site):
    response = httpx2.post(f"{site}/mcp", json={}, headers={"Accept": "application/json"})

    assert response.status_code == 401
    assert "oauth-protected-resource" in response.headers["www-authenticate"]


def test_a_foreign_origin_is_refused(site, tenant):
    key = _key(tenant)
    response = httpx2.post(
        f"{site}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"Authorization": f"Bearer {key}", "Origin": "http://evil.example"},
    )

    assert response.status_code == 403


def test_django_still_serves_everything_else(site):
    assert httpx2.get(f"{site}/healthz").status_code == 200


def test_mcp_works_when_the_server_runs_without_lifespan(monkeypatch, tenant):
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    _endpoint(tenant, "docs")

    with serve_asgi(MCPMount(get_asgi_application())) as url:  # lifespan off
        names = _tool_names(url, _key(tenant, "rag:docs"))

    assert names == {"query_docs", "answer_docs"}
