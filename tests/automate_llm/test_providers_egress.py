"""Every provider request passes the egress policy of its tenant, with the connection pinned
to the address the policy approved, for both SDKs (they use httpx2, not httpx)."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from automate_core.governance.egress import EgressDenied, httpx2_client
from automate_core.testing.fake_network import FakeResolver, configure_egress
from automate_llm.types import ChatMessage, ChatOptions

HELLO = [ChatMessage(role="user", content="Hi")]
OPTIONS = ChatOptions(model="m", max_tokens=5)


@pytest.fixture
def loopback_row(tenant, wire, wire_secret):
    """A provider on the wire server, made without ``allow_loopback``."""
    from automate_llm.models import LLMProvider

    wire.api_key = wire_secret
    return LLMProvider.objects.create(
        tenant=tenant,
        name="Loopback",
        provider_type=wire.provider_type,
        config={"api_key": {"$secret": "WIRE_API_KEY"}, "base_url": wire.base_url},
    )


def test_a_loopback_base_url_is_refused_under_the_default_policy(loopback_row, wire) -> None:
    with pytest.raises(EgressDenied, match="loopback"):
        loopback_row.get_client().chat(HELLO, OPTIONS)

    assert wire.requests == []


def test_a_loopback_base_url_is_refused_while_streaming_too(loopback_row, wire) -> None:
    with pytest.raises(EgressDenied, match="loopback"):
        list(loopback_row.get_client().stream(HELLO, OPTIONS))

    assert wire.requests == []


def test_allowing_the_private_address_lets_the_call_through(loopback_row, wire, settings) -> None:
    configure_egress(settings, EGRESS_ALLOW_PRIVATE=["127.0.0.1"])

    result = loopback_row.get_client().chat(HELLO, OPTIONS)

    assert result.text == "Hello from the wire."
    assert len(wire.requests) == 1


def test_a_tenant_allowlist_that_omits_the_host_refuses_it(loopback_row, wire, settings) -> None:
    configure_egress(settings, EGRESS_ALLOW_PRIVATE=["127.0.0.1"])
    loopback_row.tenant.egress_allowlist = ["api.openai.com", "api.anthropic.com"]
    loopback_row.tenant.save()

    with pytest.raises(EgressDenied, match="not in the tenant's egress allowlist"):
        loopback_row.get_client().chat(HELLO, OPTIONS)

    assert wire.requests == []


@pytest.mark.parametrize(
    "base_url", ["http://169.254.169.254/v1", "http://metadata.google.internal/v1"]
)
def test_a_metadata_endpoint_is_refused_even_when_private_ranges_are_allowed(
    loopback_row, wire, settings, base_url
) -> None:
    configure_egress(settings, EGRESS_ALLOW_PRIVATE=["169.254.0.0/16", "127.0.0.1"])
    loopback_row.config["base_url"] = base_url
    loopback_row.save()

    with pytest.raises(EgressDenied, match="metadata"):
        loopback_row.get_client().chat(HELLO, OPTIONS)


def test_the_httpx2_client_connects_to_the_checked_address_not_a_fresh_lookup(
    wire, settings, monkeypatch
) -> None:
    """DNS rebinding: the name resolves to an allowed address once, and the connection goes
    there, with the original Host header, even if the system resolver would now lie."""
    configure_egress(settings, EGRESS_ALLOW_PRIVATE=["127.0.0.1"])
    lookups: list[str] = []
    real = socket.getaddrinfo

    def lying_getaddrinfo(host, *args, **kwargs):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            lookups.append(host)
            host = "169.254.169.254"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lying_getaddrinfo)
    resolver = FakeResolver({"llm.partner.test": ["127.0.0.1"]})
    url = wire.base_url.replace("127.0.0.1", "llm.partner.test")

    with httpx2_client(resolver=resolver, timeout=5) as client:
        response = client.post(f"{url.rstrip('/')}/v1/unknown", json={})

    assert response.status_code == 404  # the wire server answered: it was reached
    assert wire.last.headers["host"] == f"llm.partner.test:{wire.port}"
    assert resolver.lookups == ["llm.partner.test"]
    assert lookups == []


def test_options_that_would_bypass_the_guard_are_refused() -> None:
    with pytest.raises(TypeError, match="would bypass the egress policy"):
        httpx2_client(proxy="http://proxy.example.com:3128")
