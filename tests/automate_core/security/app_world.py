"""The product apps' part of the security world: one row of each model the data chat, Modal,
MCP bridge and widget admins show, with the same slugs and names in both tenants. Rows are
written directly (no MCP server, Modal cloud or model is reached), so the world stays cheap."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from automate_core.tenancy.models import Tenant
from automate_core.workflows.models import WorkflowVersion
from automate_datachat.models import (
    DataChatMessage,
    DataChatSession,
    Dataset,
    DatasetExample,
    DatasetTable,
)
from automate_modal.models import ModalArtifact, ModalEndpoint, ModalJob
from mcp_bridge.models import (
    MCPServer,
    MCPTool,
    MCPToolVersion,
    MCPWorkflowPin,
    PublicMCPExposure,
)
from mcp_bridge.pins import pin_of
from rag.models import RAGEndpoint
from widgets.models import ChatEmbed, WidgetConversation, WidgetMessage

TOOL = {"name": "add", "description": "Add two integers.", "inputSchema": {"type": "object"}}


def build_apps(
    tenant: Tenant, version: WorkflowVersion, rag_endpoint: RAGEndpoint
) -> dict[str, Any]:
    return {
        **_datachat(tenant),
        **_modal(tenant),
        **_mcp(tenant, version),
        **_widgets(tenant, rag_endpoint),
    }


def _datachat(tenant: Tenant) -> dict[str, Any]:
    slug = tenant.slug
    dataset = Dataset.objects.create(tenant=tenant, name="Shop")  # same slug everywhere
    table = DatasetTable.objects.create(
        dataset=dataset, alias="orders", relation="shop_orders", columns=["id", "total"]
    )
    example = DatasetExample.objects.create(
        tenant=tenant,
        dataset=dataset.slug,
        question=f"How many orders has {slug}?",
        sql="SELECT count(*) FROM orders",
    )
    session = DataChatSession.objects.create(
        tenant=tenant, dataset=dataset.slug, expires_at=timezone.now() + timedelta(days=1)
    )
    message = DataChatMessage.objects.create(
        session=session, role="user", content=f"question of {slug}"
    )
    return {
        "dataset": dataset,
        "dataset_table": table,
        "dataset_example": example,
        "datachat_session": session,
        "datachat_message": message,
    }


def _modal(tenant: Tenant) -> dict[str, Any]:
    slug = tenant.slug
    endpoint = ModalEndpoint.objects.create(
        tenant=tenant, name="Echo", function_name="automate_modal.demo.echo", backend="local"
    )
    job = ModalJob.objects.create(
        tenant=tenant,
        endpoint=endpoint,
        input={"text": f"input of {slug}"},
        idempotency_key=f"security-modal-{slug}",
    )
    artifact = ModalArtifact.objects.create(
        tenant=tenant, job=job, name="out.txt", url=f"https://files.example.com/{slug}/out.txt"
    )
    return {"modal_endpoint": endpoint, "modal_job": job, "modal_artifact": artifact}


def _mcp(tenant: Tenant, version: WorkflowVersion) -> dict[str, Any]:
    server = MCPServer.objects.create(tenant=tenant, name="Tools", url="https://mcp.example.com")
    pin = pin_of(TOOL)
    tool = MCPTool.objects.create(
        tenant=tenant,
        server=server,
        name=TOOL["name"],
        description=TOOL["description"],
        input_schema=TOOL["inputSchema"],
        live_pin=pin,
    )
    tool_version = MCPToolVersion.objects.create(
        tenant=tenant,
        tool=tool,
        number=1,
        definition=TOOL,
        pin=pin,
        approved_by="system:auto_approve",
        approved_at=timezone.now(),
    )
    workflow_pin = MCPWorkflowPin.objects.create(
        tenant=tenant,
        workflow_version=version,
        server=server.slug,
        tool_name=tool.name,
        tool_version=tool_version,
        pin=pin,
    )
    exposure = PublicMCPExposure.objects.create(tenant=tenant, tools=["query_docs"])
    return {
        "mcp_server": server,
        "mcp_tool": tool,
        "mcp_tool_version": tool_version,
        "mcp_workflow_pin": workflow_pin,
        "public_mcp_exposure": exposure,
    }


def _widgets(tenant: Tenant, rag_endpoint: RAGEndpoint) -> dict[str, Any]:
    slug = tenant.slug
    embed = ChatEmbed.objects.create(
        tenant=tenant,
        name="Help",
        rag_endpoint=rag_endpoint,
        allowed_origins=[f"https://{slug}.example.com"],
    )
    conversation = WidgetConversation.objects.create(
        tenant=tenant, embed=embed, origin=f"https://{slug}.example.com", end_user="visitor-1"
    )
    message = WidgetMessage.objects.create(
        tenant=tenant,
        embed=embed,
        conversation=conversation,
        role="user",
        text=f"question of {slug}",
    )
    return {"chat_embed": embed, "widget_conversation": conversation, "widget_message": message}
