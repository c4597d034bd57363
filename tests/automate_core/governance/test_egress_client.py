"""The egress-guarded httpx clients against real servers on loopback addresses.

Loopback is refused by default, so each test that must reach its own server allows exactly that
address through ``EGRESS_ALLOW_PRIVATE``. Host names resolve through a FakeResolver; the system
resolver is patched to record (and, for rebinding, to lie about) any lookup the client makes.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator

import httpx
import pytest
import trustme

from automate_core.governance.egress import (
    EgressDenied,
    async_http_client,
    async_httpx2_client,
    http_client,
)
from automate_core.testing.fake_network import (
    FakeResolver,
    LoopbackServer,
    Route,
    configure_egress,
)

PARTNER = "api.partner.test"


@pytest.fixture
def system_lookups(monkeypatch) -> list[str]:
    """Names (not IP literals) that reached ``socket.getaddrinfo``; a pinned client makes none.

    ``rebind.partner.test`` answers 127.0.0.1 here, as an attacker's DNS would on a second look.
    """
    real_getaddrinfo = socket.getaddrinfo
    names: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            names.append(host)
            if host == "rebind.partner.test":
                host = "127.0.0.1"
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as running:
        yield running


@pytest.fixture
def allow_server(settings, server) -> None:
    configure_egress(settings, EGRESS_ALLOW_PRIVATE=["127.0.0.1"])


def test_allowed_request_reaches_the_checked_address_with_the_original_host_header(
    allow_server, server, system_lookups
) -> None:
    resolver = FakeResolver({PARTNER: ["127.0.0.1"]})

    with http_client(resolver=resolver, timeout=5) as client:
        response = client.get(f"http://{PARTNER}:{server.port}/hello")

    assert (response.status_code, response.text) == (200, "ok")
    assert [seen.path for seen in server.seen] == ["/hello"]
    assert server.seen[0].headers["Host"] == f"{PARTNER}:{server.port}"
    assert resolver.lookups == [PARTNER]
    assert system_lookups == []


def test_loopback_is_refused_before_any_connection(server, system_lookups) -> None:
    with http_client(timeout=5) as client, pytest.raises(EgressDenied, match="loopback"):
        client.get(f"http://127.0.0.1:{server.port}/")

    assert server.seen == []


def test_tenant_allowlist_applies_to_the_client(allow_server, server, tenant) -> None:
    tenant.egress_allowlist = ["*.partner.test"]
    resolver = FakeResolver({PARTNER: ["127.0.0.1"], "api.other.test": ["127.0.0.1"]})

    with http_client(tenant, resolver=resolver, timeout=5) as client:
        assert client.get(f"http://{PARTNER}:{server.port}/").status_code == 200
        with pytest.raises(EgressDenied, match="tenant's egress allowlist"):
            client.get(f"http://api.other.test:{server.port}/")

    assert len(server.seen) == 1


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://0xa9fea9fe/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://10.0.0.1.nip.io/",
    ],
)
def test_redirect_hop_to_a_refused_address_is_refused(allow_server, server, location: str) -> None:
    server.routes["/start"] = Route(status=302, headers={"Location": location})
    resolver = FakeResolver({"10.0.0.1.nip.io": ["10.0.0.1"]})

    client = http_client(resolver=resolver, follow_redirects=True, timeout=5)
    with client, pytest.raises(EgressDenied):
        client.get(f"http://127.0.0.1:{server.port}/start")

    assert [seen.path for seen in server.seen] == ["/start"]


def test_every_redirect_hop_is_checked_again(allow_server, server) -> None:
    server.routes["/start"] = Route(status=307, headers={"Location": "/final"})
    resolver = FakeResolver({PARTNER: ["127.0.0.1"]})

    with http_client(resolver=resolver, follow_redirects=True, timeout=5) as client:
        response = client.get(f"http://{PARTNER}:{server.port}/start")

    assert response.status_code == 200
    assert [seen.path for seen in server.seen] == ["/start", "/final"]
    assert resolver.lookups == [PARTNER, PARTNER]


def test_dns_rebinding_never_reaches_loopback(settings, system_lookups) -> None:
    # The victim listens on 127.0.0.1; the address the check approves is 127.0.0.2, same port.
    with LoopbackServer("127.0.0.1") as victim, LoopbackServer("127.0.0.2", victim.port) as good:
        configure_egress(settings, EGRESS_ALLOW_PRIVATE=["127.0.0.2"])
        resolver = FakeResolver()
        resolver.rebind("rebind.partner.test", ["127.0.0.2"], ["127.0.0.1"])
        url = f"http://rebind.partner.test:{good.port}/"

        with http_client(resolver=resolver, timeout=5) as client:
            assert client.get(url).status_code == 200
            with pytest.raises(EgressDenied, match="loopback"):
                client.get(url)

    assert len(good.seen) == 1
    assert victim.seen == []
    assert system_lookups == []


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server(ca: trustme.CA, hostname: str) -> LoopbackServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(hostname).configure_cert(context)
    return LoopbackServer(ssl_context=context)


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_tls_sni_and_certificate_use_the_original_hostname(settings, ca, system_lookups):
    configure_egress(settings, EGRESS_ALLOW_PRIVATE=["127.0.0.1"])
    resolver = FakeResolver({"secure.partner.test": ["127.0.0.1"]})

    client = http_client(resolver=resolver, verify=trusting(ca), timeout=5)
    with tls_server(ca, "secure.partner.test") as server, client:
        response = client.get(f"https://secure.partner.test:{server.port}/")

    assert response.status_code == 200
    assert server.sni_names == ["secure.partner.test"]
    assert server.seen[0].headers["Host"] == f"secure.partner.test:{server.port}"
    assert system_lookups == []


def test_tls_certificate_for_another_name_is_rejected(settings, ca) -> None:
    configure_egress(settings, EGRESS_ALLOW_PRIVATE=["127.0.0.1"])
    resolver = FakeResolver({"secure.partner.test": ["127.0.0.1"]})

    client = http_client(resolver=resolver, verify=trusting(ca), timeout=5)
    refused = pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED")
    with tls_server(ca, "other.partner.test") as server, client, refused:
        client.get(f"https://secure.partner.test:{server.port}/")

    assert server.seen == []


def test_environment_proxies_are_ignored(allow_server, server, monkeypatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")

    with http_client(timeout=5) as client:
        assert client.get(f"http://127.0.0.1:{server.port}/").status_code == 200


@pytest.mark.parametrize(
    "option",
    [
        {"proxy": "http://proxy.example.com:3128"},
        {"mounts": {"all://": httpx.HTTPTransport()}},
        {"transport": httpx.HTTPTransport()},
    ],
)
def test_options_that_would_bypass_the_guard_are_rejected(option) -> None:
    with pytest.raises(TypeError, match="bypass the egress policy"):
        http_client(**option)


@pytest.mark.anyio
async def test_async_client_pins_the_checked_address(allow_server, server, system_lookups):
    resolver = FakeResolver({PARTNER: ["127.0.0.1"]})

    async with async_http_client(resolver=resolver, timeout=5) as client:
        response = await client.get(f"http://{PARTNER}:{server.port}/hello")

    assert (response.status_code, response.text) == (200, "ok")
    assert server.seen[0].headers["Host"] == f"{PARTNER}:{server.port}"
    assert system_lookups == []


@pytest.mark.anyio
async def test_async_client_refuses_a_redirect_to_metadata(allow_server, server) -> None:
    server.routes["/start"] = Route(
        status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )

    async with async_http_client(follow_redirects=True, timeout=5) as client:
        with pytest.raises(EgressDenied, match="cloud metadata"):
            await client.get(f"http://127.0.0.1:{server.port}/start")

    assert [seen.path for seen in server.seen] == ["/start"]


@pytest.mark.anyio
async def test_async_httpx2_client_pins_the_checked_address(allow_server, server, system_lookups):
    resolver = FakeResolver({PARTNER: ["127.0.0.1"]})

    async with async_httpx2_client(resolver=resolver, timeout=5) as client:
        response = await client.get(f"http://{PARTNER}:{server.port}/hello")

    assert (response.status_code, response.text) == (200, "ok")
    assert server.seen[0].headers["Host"] == f"{PARTNER}:{server.port}"
    assert system_lookups == []


@pytest.mark.anyio
async def test_async_httpx2_client_resolves_host_names_off_the_event_loop(allow_server, server):
    fake = FakeResolver({PARTNER: ["127.0.0.1"]})
    lookups: list[int] = []

    def resolver(*args, **kwargs):
        lookups.append(threading.get_ident())  # a lookup blocks: never on the event loop
        return fake(*args, **kwargs)

    async with async_httpx2_client(resolver=resolver, timeout=5) as client:
        await client.get(f"http://{PARTNER}:{server.port}/hello")
        await client.get(f"http://127.0.0.1:{server.port}/hello")  # an IP literal: no lookup

    assert len(lookups) == 1
    assert lookups[0] != threading.get_ident()


@pytest.mark.anyio
async def test_async_httpx2_client_refuses_loopback_by_default(server) -> None:
    async with async_httpx2_client(timeout=5) as client:
        with pytest.raises(EgressDenied, match="loopback"):
            await client.get(f"http://127.0.0.1:{server.port}/")

    assert server.seen == []
