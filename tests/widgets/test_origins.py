"""The allowed-origins matcher: scheme, host and port must all match; wildcards are subdomains
on a label boundary; anything that is not a plain origin matches nothing."""

from __future__ import annotations

import pytest

from widgets.origins import InvalidOriginPattern, OriginPattern, normalize_origin, origin_allowed

ALLOWED = ["https://shop.example.com", "https://*.example.org", "http://localhost:8000"]


@pytest.mark.parametrize(
    "origin",
    [
        "https://shop.example.com",
        "https://shop.example.com:443",
        "https://SHOP.Example.com",
        "https://a.example.org",
        "https://a.b.example.org",
        "http://localhost:8000",
    ],
)
def test_allowed_origins_match(origin):
    assert origin_allowed(origin, ALLOWED)


@pytest.mark.parametrize(
    "origin",
    [
        "http://shop.example.com",  # scheme
        "https://shop.example.com:8443",  # port
        "https://evilexample.com",
        "https://shopexample.com",
        "https://shop.example.com.evil.io",
        "https://example.org",  # a wildcard is for subdomains only
        "https://evilexample.org",
        "https://a.example.org.evil.io",
        "http://a.example.org",
        "http://localhost",
        "http://localhost:8001",
        "http://127.0.0.1:8000",
        "null",
        "",
        None,
        "https://shop.example.com/",
        "https://shop.example.com/path",
        "https://user@shop.example.com",
        "https://shop.example.com.",
        " https://shop.example.com",
        "https://shop.example.com?x=1",
        "javascript://shop.example.com",
    ],
)
def test_other_origins_do_not_match(origin):
    assert not origin_allowed(origin, ALLOWED)


def test_a_unicode_look_alike_is_another_host():
    look_alike = "https://shop.ex\u0430mple.com"  # a Cyrillic "a"
    assert not origin_allowed(look_alike, ALLOWED)


def test_an_internationalized_host_matches_its_punycode():
    assert origin_allowed("https://bücher.example", ["https://xn--bcher-kva.example"])


@pytest.mark.parametrize(
    "pattern",
    [
        "example.com",
        "https://*.com",
        "https://*",
        "https://ex*.com",
        "ftp://a.com",
        "https://*.1.2.3.4",
    ],
)
def test_malformed_patterns_are_refused(pattern):
    with pytest.raises(InvalidOriginPattern):
        OriginPattern.parse(pattern)


def test_a_malformed_pattern_allows_nothing():
    assert not origin_allowed("https://a.com", ["a.com", "*"])


def test_origins_normalize_to_the_browser_form():
    assert normalize_origin("HTTPS://Shop.Example.com:443") == "https://shop.example.com"
    assert normalize_origin("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert normalize_origin("https://a.com/x") is None
