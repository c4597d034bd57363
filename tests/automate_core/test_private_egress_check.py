"""Opening private addresses to egress is announced by a system check at every start."""

from __future__ import annotations

from django.test import override_settings

from automate_core.checks import private_egress_opened


def test_no_warning_while_private_addresses_stay_closed():
    assert private_egress_opened() == []


def test_an_opened_private_address_is_named_in_a_warning():
    with override_settings(AUTOMATE={"EGRESS_ALLOW_PRIVATE": ["127.0.0.1"]}):
        (warning,) = private_egress_opened()
    assert warning.id == "automate.W002"
    assert "127.0.0.1" in warning.msg and "every tenant" in warning.msg
