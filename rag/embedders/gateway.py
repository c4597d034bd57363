"""``openai``: embeddings from the tenant's own LLM providers, through the LLM gateway.

``model_id`` is an LLM model config slug or a model id, resolved for the tenant like any
gateway call (OpenAI, or any OpenAI-compatible ``base_url``); ``config`` may name ``provider``,
an LLM provider slug. Each batch is one :func:`automate_llm.services.embed` call, so it gets the
gateway's egress policy, retries and fallbacks, a budget hold before the request and a usage
record after it, charged to the tenant of the EmbeddingModel. Gateway errors keep their codes
(``budget_exceeded``, ``llm_not_configured``...) so a refused sync or query says why.

The index stores ``vector(384)``, so the model must return 384 numbers. OpenAI's
``text-embedding-3-*`` return 1536 or 3072 unless the request's ``dimensions`` asks for fewer
(they are trained to be shortened): the request carries the model's dimensions when
``config["request_dimensions"]`` is true, by default when ``model_id`` names a
``text-embedding-3`` model. Other models and servers may refuse the parameter, so they do not get
it unless asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from automate_core.tenancy.models import Tenant
from automate_llm import services as llm
from rag.embeddings import Embedder, EmbeddingContext
from rag.errors import EmbeddingError


class GatewayEmbedder(Embedder):
    name = "openai"
    # OpenAI takes up to 2048 inputs a request; smaller requests retry cheaply and keep each
    # budget hold close to what the batch costs.
    max_batch_size = 256
    per_tenant = True

    @classmethod
    def validate_config(cls, model_id: str, config: Mapping[str, Any]) -> list[str]:
        problems = []
        if not model_id.strip():
            problems.append("model_id must name an LLM model config slug or a model id")
        unknown = sorted(set(config) - {"provider", "request_dimensions"})
        if unknown:
            accepted = "provider and request_dimensions"
            problems.append(f"config accepts only {accepted} (unknown: {', '.join(unknown)})")
        if not isinstance(config.get("request_dimensions", False), bool):
            problems.append("config.request_dimensions must be true or false")
        provider = config.get("provider")
        if provider is not None and not (isinstance(provider, str) and provider.strip()):
            problems.append("config.provider must be an LLM provider slug")
        return problems

    @property
    def requests_dimensions(self) -> bool:
        default = "text-embedding-3" in self.model_id
        return bool(self.config.get("request_dimensions", default))

    def embed_documents(self, texts: Sequence[str], context: EmbeddingContext) -> list[list[float]]:
        problems = self.validate_config(self.model_id, self.config)
        if problems:
            raise EmbeddingError("; ".join(problems))
        tenant = (
            Tenant.objects.filter(pk=context.tenant_id).first()
            if context.tenant_id is not None
            else None
        )
        if tenant is None:
            raise EmbeddingError(
                "The openai embedding provider charges a tenant, and this call has none.",
                details={"tenant_id": str(context.tenant_id)},
            )
        response = llm.embed(
            tenant=tenant,
            texts=list(texts),
            model=self.model_id,
            provider=self.config.get("provider"),
            dimensions=self.dimensions if self.requests_dimensions else None,
            context=llm.CallContext(trace_id=context.trace_id or ""),
        )
        return response.vectors
