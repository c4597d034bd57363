"""The egress policy's URL check: SSRF refusals, allowlists, settings and DNS rebinding."""

from __future__ import annotations

import functools
import ipaddress
from pathlib import Path

import httpx
import pytest

from automate_core.errors import AutomateError
from automate_core.governance.egress import (
    CheckedURL,
    EgressDenied,
    check_url,
    host_matches,
    validate_host_pattern,
)
from automate_core.testing.fake_network import (
    PUBLIC_ADDRESS,
    FakeResolver,
    configure_egress,
)

PAYLOADS_FILE = Path(__file__).with_name("ssrf_payloads.txt")

#: What the DNS names in ssrf_payloads.txt answer. Names not listed answer PUBLIC_ADDRESS.
SSRF_ZONE: dict[str, list[str] | None] = {
    "localtest.me": ["127.0.0.1"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "customer1.app.localhost.my.company.127.0.0.1.nip.io": ["127.0.0.1"],
    "spoofed.burpcollaborator.net": ["127.0.0.1"],
    "localh.st": ["127.0.0.1"],
    "ip6-localhost": ["::1"],
    "ip6-loopback": ["::1"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "zero.example.com": ["0.0.0.0"],  # noqa: S104 (an answer, not a bind address)
    "169.254.169.254.nip.io": ["169.254.169.254"],
    "metadata.nicob.net": ["169.254.169.254"],
    "nat64.example.com": ["64:ff9b::a9fe:a9fe"],
    "internal.example.com": ["10.0.0.5"],
    "db.internal": ["172.20.0.3"],
    "10.0.0.1.nip.io": ["10.0.0.1"],
    "router.example.net": ["192.168.1.1"],
    "cgnat.example.com": ["100.64.1.1"],
    "ula.example.com": ["fd12:3456:789a::1"],
    "linklocal6.example.com": ["fe80::1"],
    "sixtofour.example.com": ["2002:a00:1::1"],
    "teredo.example.com": ["2001:0:4136:e378:8000:63bf:f5ff:fffe"],
    "mixed.example.com": [PUBLIC_ADDRESS, "10.0.0.7"],
    "mixed6.example.com": ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", "fd00::5"],
    "nxdomain.example.com": None,
    "does-not-exist.invalid": None,
    "empty.example.com": [],
}


def load_payloads() -> list[str]:
    lines = PAYLOADS_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


PAYLOADS = load_payloads()


@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver(SSRF_ZONE)


@pytest.fixture
def egress_settings(settings):
    """Set AUTOMATE egress keys for one test: ``egress_settings(EGRESS_SCHEMES=[...])``."""

    return functools.partial(configure_egress, settings)


@pytest.mark.parametrize("url", PAYLOADS)
def test_ssrf_payload_is_refused(url: str, resolver: FakeResolver) -> None:
    with pytest.raises(EgressDenied) as refused:
        check_url(url, resolver=resolver)
    assert refused.value.reason


def test_payload_list_holds_at_least_100_distinct_urls() -> None:
    assert len(PAYLOADS) >= 100
    assert len(set(PAYLOADS)) == len(PAYLOADS)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/",
        "https://api.openai.com/v1/chat/completions?stream=true",
        "http://example.com:8080/path@with-at#frag@ment",
        "https://93.184.215.14/",
        "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/",
        "https://münchen.de/",
        "https://EXAMPLE.com./",
    ],
)
def test_public_urls_pass_with_the_same_fake_dns(url: str, resolver: FakeResolver) -> None:
    checked = check_url(url, resolver=resolver)
    assert checked.addresses
    assert checked.scheme in ("http", "https")


def test_check_returns_every_resolved_address_once_in_resolver_order() -> None:
    v6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
    resolver = FakeResolver({"example.com": [PUBLIC_ADDRESS, v6, PUBLIC_ADDRESS]})

    checked = check_url("https://Example.COM:8443/x", resolver=resolver)

    assert checked == CheckedURL(
        url="https://Example.COM:8443/x",
        scheme="https",
        host="example.com",
        port=8443,
        addresses=(ipaddress.ip_address(PUBLIC_ADDRESS), ipaddress.ip_address(v6)),
    )
    assert resolver.lookups == ["example.com"]


def test_ip_literal_is_checked_without_a_lookup(resolver: FakeResolver) -> None:
    checked = check_url("http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8080/", resolver=resolver)

    assert checked.is_ip_literal
    assert checked.host == "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
    assert resolver.lookups == []


def test_internationalized_host_is_checked_in_its_ascii_form(resolver: FakeResolver) -> None:
    assert check_url("https://münchen.de/", resolver=resolver).host == "xn--mnchen-3ya.de"
    assert resolver.lookups == ["xn--mnchen-3ya.de"]


def test_one_private_answer_among_public_ones_refuses_the_host() -> None:
    resolver = FakeResolver({"api.example.com": [PUBLIC_ADDRESS, "10.1.2.3"]})

    with pytest.raises(EgressDenied, match=r"10\.1\.2\.3.*private network"):
        check_url("https://api.example.com/", resolver=resolver)


def test_refusal_is_a_403_automate_error_with_code_egress_denied(resolver) -> None:
    with pytest.raises(EgressDenied) as refused:
        check_url("http://169.254.169.254/latest/meta-data/", resolver=resolver)

    error = refused.value
    assert isinstance(error, AutomateError)
    assert (error.status_code, error.code) == (403, "egress_denied")
    assert "cloud metadata" in error.reason
    assert error.message == f"Egress denied: {error.reason}"
    assert error.details == {"reason": error.reason, "host": "169.254.169.254"}


def test_refusal_never_echoes_credentials_or_query(resolver: FakeResolver) -> None:
    for url in ("https://bob:hunter2@example.com/", "http://127.0.0.1/?api_key=hunter2"):
        with pytest.raises(EgressDenied) as refused:
            check_url(url, resolver=resolver)
        assert "hunter2" not in str(refused.value)
        assert "hunter2" not in repr(refused.value.details)


@pytest.mark.parametrize(
    "url", ["http://exa\tmple.com/", "http://example.com/\n", "http://example.com/a b", "\x00"]
)
def test_whitespace_and_control_characters_are_refused(url: str, resolver) -> None:
    with pytest.raises(EgressDenied, match="whitespace or control"):
        check_url(url, resolver=resolver)


# --- settings --------------------------------------------------------------------------------


def test_scheme_allowlist_comes_from_settings(egress_settings, resolver) -> None:
    egress_settings(EGRESS_SCHEMES=["https"])

    check_url("https://example.com/", resolver=resolver)
    with pytest.raises(EgressDenied, match="scheme 'http' is not allowed"):
        check_url("http://example.com/", resolver=resolver)


def test_port_allowlist_replaces_the_bad_port_list(egress_settings, resolver) -> None:
    egress_settings(EGRESS_PORTS=[443, 22])

    check_url("https://example.com/", resolver=resolver)
    check_url("https://example.com:22/", resolver=resolver)
    with pytest.raises(EgressDenied, match="port 8443 is not in"):
        check_url("https://example.com:8443/", resolver=resolver)


def test_allow_private_exempts_listed_networks_only(egress_settings) -> None:
    egress_settings(EGRESS_ALLOW_PRIVATE=["10.20.0.0/16"])
    resolver = FakeResolver({"svc.internal": ["10.20.1.5"], "other.internal": ["10.30.1.5"]})

    assert check_url("http://svc.internal:8080/", resolver=resolver).addresses
    with pytest.raises(EgressDenied, match="private network"):
        check_url("http://other.internal:8080/", resolver=resolver)


def test_allow_private_host_pattern_exempts_that_host(egress_settings) -> None:
    egress_settings(EGRESS_ALLOW_PRIVATE=["*.svc.cluster.local"])
    resolver = FakeResolver({"api.svc.cluster.local": ["10.96.0.10"], "evil.example": ["10.0.0.1"]})

    check_url("http://api.svc.cluster.local/", resolver=resolver)
    with pytest.raises(EgressDenied):
        check_url("http://evil.example/", resolver=resolver)


def test_allow_private_never_exempts_cloud_metadata(egress_settings, resolver) -> None:
    egress_settings(EGRESS_ALLOW_PRIVATE=["0.0.0.0/0", "::/0", "169.254.169.254"])

    for url in (
        "http://169.254.169.254/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/",
        "http://0.0.0.0/",
    ):
        with pytest.raises(EgressDenied):
            check_url(url, resolver=resolver)


def test_allow_private_can_exempt_localhost_by_name(egress_settings) -> None:
    egress_settings(EGRESS_ALLOW_PRIVATE=["localhost", "127.0.0.0/8"])

    check_url("http://localhost:8000/", resolver=FakeResolver({"localhost": ["127.0.0.1"]}))


# --- host allowlists -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "pattern", "matches"),
    [
        ("api.stripe.com", "*.stripe.com", True),
        ("a.b.stripe.com", "*.stripe.com", True),
        ("stripe.com", "*.stripe.com", False),
        ("evilstripe.com", "*.stripe.com", False),
        ("stripe.com.evil.com", "*.stripe.com", False),
        ("api.openai.com", "API.OpenAI.com.", True),
        ("api.openai.com", "openai.com", False),
        ("xn--mnchen-3ya.de", "münchen.de", True),
        ("2001:db8::1", "[2001:DB8:0::1]", True),
        ("api.stripe.com", "api.*.com", False),
        ("api.stripe.com", "*", False),
    ],
)
def test_host_patterns(host: str, pattern: str, matches: bool) -> None:
    assert host_matches(host, pattern) is matches


@pytest.mark.parametrize("pattern", ["", "*", "api.*.com", "*.*.com", "http://x.com", "127.1"])
def test_invalid_host_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(ValueError):
        validate_host_pattern(pattern)


def test_tenant_wildcard_allowlist_covers_subdomains_not_the_apex(tenant, resolver) -> None:
    tenant.egress_allowlist = ["*.stripe.com", "api.openai.com"]

    check_url("https://api.stripe.com/v1/charges", tenant, resolver=resolver)
    check_url("https://files.eu.stripe.com/", tenant, resolver=resolver)
    check_url("https://api.openai.com/v1/models", tenant, resolver=resolver)
    for url in ("https://stripe.com/", "https://evilstripe.com/", "https://example.com/"):
        with pytest.raises(EgressDenied, match="tenant's egress allowlist"):
            check_url(url, tenant, resolver=resolver)


def test_one_tenants_allowlist_does_not_apply_to_another(tenant, other_tenant, resolver) -> None:
    tenant.egress_allowlist = ["*.stripe.com"]
    other_tenant.egress_allowlist = ["api.openai.com"]
    tenant.save()
    other_tenant.save()
    tenant.refresh_from_db()
    other_tenant.refresh_from_db()

    check_url("https://api.stripe.com/", tenant, resolver=resolver)
    check_url("https://api.openai.com/", other_tenant, resolver=resolver)
    with pytest.raises(EgressDenied):
        check_url("https://api.openai.com/", tenant, resolver=resolver)
    with pytest.raises(EgressDenied):
        check_url("https://api.stripe.com/", other_tenant, resolver=resolver)


def test_empty_tenant_allowlist_allows_any_public_host_but_no_private_one(tenant, resolver):
    tenant.egress_allowlist = []

    check_url("https://anything.example.org/", tenant, resolver=resolver)
    with pytest.raises(EgressDenied):
        check_url("http://10.0.0.1.nip.io/", tenant, resolver=resolver)


def test_allowlisted_host_is_still_refused_when_it_resolves_private(tenant) -> None:
    tenant.egress_allowlist = ["*.stripe.com"]
    resolver = FakeResolver({"api.stripe.com": ["127.0.0.1"]})

    with pytest.raises(EgressDenied, match="loopback"):
        check_url("https://api.stripe.com/", tenant, resolver=resolver)


def test_global_allowlist_is_a_ceiling_tenants_cannot_widen(
    egress_settings, tenant, resolver
) -> None:
    egress_settings(EGRESS_ALLOWLIST=["*.stripe.com", "api.openai.com"])
    tenant.egress_allowlist = ["api.stripe.com", "example.com"]

    check_url("https://api.stripe.com/", tenant, resolver=resolver)
    check_url("https://api.openai.com/", resolver=resolver)
    with pytest.raises(EgressDenied, match="EGRESS_ALLOWLIST"):
        check_url("https://example.com/", tenant, resolver=resolver)
    with pytest.raises(EgressDenied, match="tenant's egress allowlist"):
        check_url("https://api.openai.com/", tenant, resolver=resolver)


# --- DNS rebinding -----------------------------------------------------------------------------


def test_each_check_resolves_once_and_a_rebound_answer_is_refused() -> None:
    resolver = FakeResolver()
    resolver.rebind("rebind.example.com", [PUBLIC_ADDRESS], ["127.0.0.1"])

    first = check_url("http://rebind.example.com/", resolver=resolver)
    assert first.addresses == (ipaddress.ip_address(PUBLIC_ADDRESS),)
    with pytest.raises(EgressDenied, match="loopback"):
        check_url("http://rebind.example.com/", resolver=resolver)
    assert resolver.lookups == ["rebind.example.com", "rebind.example.com"]


def test_httpx_urls_are_checked_like_strings(resolver: FakeResolver) -> None:
    assert check_url(httpx.URL("https://münchen.de/"), resolver=resolver).host == (
        "xn--mnchen-3ya.de"
    )
    with pytest.raises(EgressDenied, match="ambiguous numeric host"):
        check_url(httpx.URL("http://127.1/"), resolver=resolver)
